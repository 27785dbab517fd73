"""The test doubles of the engine toolchain (tests/fakes): trtllm-build's flags, hard errors, silent overrides, output
layout and parallel build; nvidia-smi's CSV and XML; TensorRT-LLM's package metadata. Each runs as a subprocess, found
on PATH the way the build stage finds the real tools."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from fakes import BIN as FAKE_BIN
from fakes import fake_toolchain_env

H100 = "NVIDIA H100 80GB HBM3|9.0|81559"
A100 = "NVIDIA A100-SXM4-80GB|8.0|81920"
B200 = "NVIDIA B200|10.0|183359"
B300 = "NVIDIA B300 SXM6 AC|10.3|275040"
RTX_PRO = "NVIDIA RTX PRO 6000 Blackwell Server Edition|12.0|97887"
LLAMA, MIXTRAL = "LlamaForCausalLM", "MixtralForCausalLM"


def checkpoint(root: Path, arch: str = LLAMA, tp: int = 1, pp: int = 1, quant_algo: str | None = None,
               kv: str | None = None, **extra) -> Path:
    """A TensorRT-LLM checkpoint by hand: config.json and one small rank<r>.safetensors per rank (nothing quantized)."""
    ckpt = root / f"ckpt-{arch}-tp{tp}pp{pp}-{quant_algo}-{kv}"
    ckpt.mkdir(parents=True, exist_ok=True)
    config = {"architecture": arch, "dtype": "bfloat16", "hidden_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "vocab_size": 128, "max_position_embeddings": 4096,
              "mapping": {"world_size": tp * pp, "tp_size": tp, "pp_size": pp},
              "quantization": {"quant_algo": quant_algo, "kv_cache_quant_algo": kv}, **extra}
    (ckpt / "config.json").write_text(json.dumps(config))
    for rank in range(tp * pp):
        save_file({"weight": np.full((32, 64), rank + 1, dtype=np.float32)}, str(ckpt / f"rank{rank}.safetensors"))
    return ckpt


def run(cwd: Path, *command: str, gpus: str = f"8x {H100}", **env) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**fake_toolchain_env(gpus), **env})


def build(tmp_path: Path, ckpt: Path, *flags: str, gpus: str = f"8x {H100}", **env) -> subprocess.CompletedProcess:
    return run(tmp_path, "trtllm-build", "--checkpoint_dir", str(ckpt), "--output_dir", str(tmp_path / "engine"),
               *flags, gpus=gpus, **env)


def built(tmp_path: Path, ckpt: Path, *flags: str, gpus: str = f"8x {H100}") -> dict:
    """The build_config of a build that must succeed."""
    result = build(tmp_path, ckpt, *flags, gpus=gpus)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "engine" / "config.json").read_text())["build_config"]


# --- flags -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--gemm_plugin", "fp4"], "argument --gemm_plugin: invalid choice: 'fp4'"),
    (["--strongly_typed"], "unrecognized arguments: --strongly_typed"),
    (["--tp_size", "2"], "unrecognized arguments: --tp_size"),
    (["--pp_size", "2"], "unrecognized arguments: --pp_size"),
    (["--auto_parallel", "2"], "unrecognized arguments: --auto_parallel"),
    (["--kv_cache_type", "blocked"], "argument --kv_cache_type: invalid parse_enum value: 'blocked'"),
    (["--context_fmha", "true"], "argument --context_fmha: invalid choice: 'true'"),
    (["--gemm_swiglu_plugin", "bfloat16"], "argument --gemm_swiglu_plugin: invalid choice"),
    (["--gemm_allreduce_plugin", "auto"], "argument --gemm_allreduce_plugin: invalid choice"),
    (["--max_batch_size", "many"], "argument --max_batch_size: invalid int value"),
])
def test_a_bad_flag_is_argparses_usage_error(tmp_path, flags, message):
    result = run(tmp_path, "trtllm-build", *flags)
    assert result.returncode == 2 and message in result.stderr


def test_defaults_and_the_accepted_words(tmp_path):
    config = built(tmp_path, checkpoint(tmp_path), "--gemm_plugin", "nvfp4", "--kv_cache_type", "Paged")
    assert {k: config[k] for k in ("max_batch_size", "max_input_len", "max_seq_len", "max_beam_width",
                                   "max_num_tokens", "opt_num_tokens", "kv_cache_type", "strongly_typed")} == {
        "max_batch_size": 2048, "max_input_len": 1024, "max_seq_len": 4096, "max_beam_width": 1,
        "max_num_tokens": 8192, "opt_num_tokens": 2048, "kv_cache_type": "PAGED", "strongly_typed": True}
    plugins = config["plugin_config"]
    assert plugins["gemm_plugin"] == "nvfp4" and plugins["gpt_attention_plugin"] == "auto"
    assert plugins["dtype"] == "bfloat16" and plugins["tokens_per_block"] == 32
    assert plugins["context_fmha"] and plugins["remove_input_padding"] and plugins["use_fused_mlp"]
    assert not (plugins["multiple_profiles"] or plugins["reduce_fusion"] or plugins["user_buffer"])
    assert plugins["gemm_swiglu_plugin"] is None and plugins["gemm_allreduce_plugin"] is None
    help_text = run(tmp_path, "trtllm-build", "--help").stdout
    assert "--use_paged_context_fmha {enable,disable}" in help_text and "--max_decoder_seq_len" in help_text


# --- hard errors -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, quant, gpu, flags, error", [
    (LLAMA, None, H100, ["--multiple_profiles", "enable", "--opt_num_tokens", "512"],
     "RuntimeError: multiple_profiles is enabled, while opt_num_tokens is set."),
    (LLAMA, None, H100, ["--pp_reduce_scatter", "enable"],
     "AssertionError: PP reduce scatter is only supported in the mixtral model."),
    (LLAMA, "FP8", B200, ["--gemm_swiglu_plugin", "fp8"],
     "NotImplementedError: gemm_swiglu_plugin=fp8 is not supported on SM 100."),
    (LLAMA, "FP8", B200, ["--low_latency_gemm_plugin", "fp8"],
     "NotImplementedError: low_latency_gemm_plugin=fp8 is not supported on SM 100."),
    (LLAMA, "FP8", B200, ["--low_latency_gemm_swiglu_plugin", "fp8"],
     "NotImplementedError: low_latency_gemm_swiglu_plugin=fp8 is not supported on SM 100."),
    (LLAMA, None, B200, ["--fp8_rowwise_gemm_plugin", "auto"],
     "NotImplementedError: fp8_rowwise_gemm_plugin=auto is not supported on SM 100."),
    (LLAMA, "FP8", H100, ["--gemm_swiglu_plugin", "fp8", "--use_fused_mlp", "disable"],
     "RuntimeError: GemmSwiGLU plugin requires --use_fused_mlp flag"),
    (LLAMA, "W8A16", B200, [], "RuntimeError: INT8/INT4 quantization is not supported on SM>=100."),
    (LLAMA, "W4A16_AWQ", B300, [], "RuntimeError: INT8/INT4 quantization is not supported on SM>=100."),
    (LLAMA, ("FP8", "INT8"), B200, [], "RuntimeError: INT8/INT4 quantization is not supported on SM>=100."),
    (LLAMA, "W8A8_SQ_PER_CHANNEL", B200, [], "RuntimeError: SmoothQuant is not supported on SM>=100."),
    (LLAMA, None, H100, ["--kv_cache_type", "continuous", "--paged_kv_cache", "enable"], "AssertionError"),
    ("Qwen2ForCausalLM", None, H100, [], "AssertionError: Unsupported model architecture: Qwen2ForCausalLM"),
])
def test_hard_errors(tmp_path, arch, quant, gpu, flags, error):
    quant_algo, kv = quant if isinstance(quant, tuple) else (quant, None)
    result = build(tmp_path, checkpoint(tmp_path, arch, quant_algo=quant_algo, kv=kv), *flags, gpus=gpu)
    assert result.returncode != 0 and error in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "engine" / "rank0.engine").exists()


def test_what_fails_on_one_architecture_builds_on_another(tmp_path):
    swiglu = ["--gemm_swiglu_plugin", "fp8", "--low_latency_gemm_plugin", "fp8"]
    assert built(tmp_path, checkpoint(tmp_path, quant_algo="FP8"), *swiglu)["plugin_config"]["gemm_swiglu_plugin"]
    assert built(tmp_path, checkpoint(tmp_path, quant_algo="FP8"), *swiglu, gpus=B300)  # SM 103: only SM 100 refuses
    weight_only = built(tmp_path, checkpoint(tmp_path, quant_algo="W8A16", kv="INT8"), gpus=RTX_PRO)  # SM 120
    assert weight_only["plugin_config"]["weight_only_quant_matmul_plugin"] == "bfloat16"
    mixtral = built(tmp_path, checkpoint(tmp_path, MIXTRAL, pp=2), "--pp_reduce_scatter", "enable")
    assert mixtral["plugin_config"]["pp_reduce_scatter"] is True


def test_a_missing_rank_file_fails(tmp_path):
    ckpt = checkpoint(tmp_path, tp=2)
    (ckpt / "rank1.safetensors").unlink()
    result = build(tmp_path, ckpt)
    assert result.returncode != 0 and "rank1.safetensors" in result.stderr


# --- silent overrides ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, tp, reduce_fusion", [(LLAMA, 1, False), (LLAMA, 2, True), (MIXTRAL, 2, False)])
def test_reduce_fusion_only_with_tp_on_llama_and_user_buffer_only_with_it(tmp_path, arch, tp, reduce_fusion):
    plugins = built(tmp_path, checkpoint(tmp_path, arch, tp=tp), "--reduce_fusion", "enable",
                    "--user_buffer", "enable")["plugin_config"]
    assert plugins["reduce_fusion"] is reduce_fusion and plugins["user_buffer"] is reduce_fusion


@pytest.mark.parametrize("arch, tp, quant, flags, kept", [
    (LLAMA, 1, "NVFP4", [], True), (LLAMA, 1, "FP8", [], False), (MIXTRAL, 1, "NVFP4", [], False),
    (LLAMA, 2, "NVFP4", ["--reduce_fusion", "enable"], False), (LLAMA, 2, "NVFP4", [], True),
])
def test_norm_quant_fusion_only_for_llama_nvfp4_without_reduce_fusion(tmp_path, arch, tp, quant, flags, kept):
    config = built(tmp_path, checkpoint(tmp_path, arch, tp=tp, quant_algo=quant), "--norm_quant_fusion", "enable",
                   *flags, gpus=f"4x {B200}")
    assert config["plugin_config"]["norm_quant_fusion"] is kept


@pytest.mark.parametrize("quant, kv, gpu, flags, fp8_fmha, paged_fmha", [
    (None, None, H100, [], False, True),
    ("FP8", "FP8", H100, [], True, True),
    ("FP8", None, H100, [], False, True),  # paged FP8 context FMHA needs an FP8 KV cache
    ("FP8", "FP8", A100, [], False, False),  # SM 80 < 89
    ("MIXED_PRECISION", "FP8", H100, [], False, False),  # AutoQuant: both off, as NVIDIA's mixtral configs say
    ("NVFP4", "FP8", B200, [], True, True),
    ("W4A8_AWQ", "FP8", H100, [], True, True),
    ("FP8", "FP8", H100, ["--use_fp8_context_fmha", "disable"], True, True),  # FP8 KV switches it back on
    ("FP8", "FP8", H100, ["--context_fmha", "disable"], False, False),
    ("FP8", "INT8", H100, [], False, False),
])
def test_fp8_and_paged_context_fmha(tmp_path, quant, kv, gpu, flags, fp8_fmha, paged_fmha):
    plugins = built(tmp_path, checkpoint(tmp_path, quant_algo=quant, kv=kv), *flags, gpus=gpu)["plugin_config"]
    assert (plugins["use_fp8_context_fmha"], plugins["use_paged_context_fmha"]) == (fp8_fmha, paged_fmha)


@pytest.mark.parametrize("flags, gemm_plugin", [([], "nvfp4"), (["--gemm_plugin", "auto"], "nvfp4"),
                                                (["--gemm_plugin", "disable"], None)])
def test_nvfp4_forces_the_nvfp4_gemm_plugin_unless_disabled(tmp_path, flags, gemm_plugin):
    config = built(tmp_path, checkpoint(tmp_path, quant_algo="NVFP4"), *flags, gpus=B200)
    assert config["plugin_config"]["gemm_plugin"] == gemm_plugin


def test_lengths_and_token_counts_are_clipped(tmp_path):
    ckpt = checkpoint(tmp_path)
    clipped = built(tmp_path, ckpt, "--max_input_len", "5000", "--max_batch_size", "2", "--max_num_tokens", "20000")
    assert (clipped["max_seq_len"], clipped["max_input_len"]) == (4096, 4096)
    assert (clipped["max_num_tokens"], clipped["opt_num_tokens"]) == (8192, 2)  # max_seq_len * max_batch_size
    profiles = built(tmp_path, ckpt, "--max_seq_len", "512", "--multiple_profiles", "enable")
    assert (profiles["max_input_len"], profiles["max_seq_len"], profiles["opt_num_tokens"]) == (512, 512, None)
    assert built(tmp_path, ckpt, "--max_num_tokens", "16")["max_num_tokens"] == 32  # at least tokens_per_block
    assert built(tmp_path, ckpt, "--max_num_tokens", "65536")["max_num_tokens"] == 65536  # > 16384 only warns
    linear = checkpoint(tmp_path / "rope", rotary_scaling={"type": "linear", "factor": 2.0})
    assert built(tmp_path, linear)["max_seq_len"] == 8192
    llama3 = checkpoint(tmp_path / "llama3", rotary_scaling={"rope_type": "llama3", "factor": 8.0})
    assert built(tmp_path, llama3)["max_seq_len"] == 4096


def test_kv_cache_paged_state_and_nccl(tmp_path):
    single = built(tmp_path, checkpoint(tmp_path), "--kv_cache_type", "disabled", "--nccl_plugin", "float16")
    assert single["kv_cache_type"] == "DISABLED" and single["plugin_config"]["paged_kv_cache"] is False
    assert single["plugin_config"]["paged_state"] is False and single["plugin_config"]["nccl_plugin"] is None
    tp2 = built(tmp_path, checkpoint(tmp_path, tp=2), "--paged_kv_cache", "disable")
    assert tp2["kv_cache_type"] == "CONTINUOUS" and tp2["plugin_config"]["nccl_plugin"] == "bfloat16"


# --- output ----------------------------------------------------------------------------------------------------------

def test_engine_directory_layout(tmp_path):
    ckpt = checkpoint(tmp_path, tp=2, pp=2, quant_algo="FP8", kv="FP8")
    assert built(tmp_path, ckpt)
    engine = tmp_path / "engine"
    assert sorted(p.name for p in engine.iterdir()) == ["config.json"] + [f"rank{r}.engine" for r in range(4)]
    config = json.loads((engine / "config.json").read_text())
    assert config["version"] == "1.2.1" and set(config) == {"version", "pretrained_config", "build_config"}
    assert config["pretrained_config"]["mapping"] == {"world_size": 4, "tp_size": 2, "pp_size": 2}
    assert config["pretrained_config"]["quantization"] == {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}
    assert "plugin_config" in config["build_config"]
    assert (tmp_path / "model.cache").is_file()  # the timing cache: relative to the working directory
    for rank in range(4):
        weights = (ckpt / f"rank{rank}.safetensors").stat().st_size
        assert weights <= (engine / f"rank{rank}.engine").stat().st_size <= weights + 64
    first = [(engine / f"rank{r}.engine").read_bytes() for r in range(4)]
    assert len(set(first)) == 4
    assert built(tmp_path, ckpt) and [(engine / f"rank{r}.engine").read_bytes() for r in range(4)] == first
    (tmp_path / "caches").mkdir()
    assert built(tmp_path, ckpt, "--max_batch_size", "64", "--output_timing_cache", "caches/t.cache")
    assert (engine / "rank0.engine").read_bytes() != first[0] and (tmp_path / "caches" / "t.cache").is_file()


def test_mixed_precision_writes_quant_cfg(tmp_path):
    layers = {"transformer.layers.0.mlp.fc": {"quant_algo": "FP8"}}
    ckpt = checkpoint(tmp_path, MIXTRAL, quant_algo="MIXED_PRECISION", kv="FP8")
    config_path = ckpt / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization"]["quantized_layers"] = layers
    config_path.write_text(json.dumps(config))
    assert built(tmp_path, ckpt)
    quant_cfg = json.loads((tmp_path / "engine" / "quant_cfg.json").read_text())
    assert quant_cfg["version"] == "1.2.1" and quant_cfg["quantized_layers"] == layers
    engine_config = json.loads((tmp_path / "engine" / "config.json").read_text())
    assert "quantized_layers" not in engine_config["pretrained_config"]["quantization"]


# --- GPUs and parallel build -----------------------------------------------------------------------------------------

def built_on(stdout: str) -> list[str]:
    return [line.split("built ")[1] for line in stdout.splitlines() if "(test double) built" in line]


def test_workers_build_rank_r_on_gpu_r_mod_n(tmp_path):
    ckpt = checkpoint(tmp_path, tp=4)
    one = build(tmp_path, ckpt, gpus=f"2x {H100}")
    assert built_on(one.stdout) == [f"rank{r}.engine on GPU 0" for r in range(4)]
    capped = build(tmp_path, ckpt, "--workers", "8", gpus=f"2x {H100}")  # workers = min(GPUs, --workers)
    assert built_on(capped.stdout) == [f"rank{r}.engine on GPU {r % 2}" for r in range(4)]


def test_no_gpu_no_build(tmp_path):
    result = build(tmp_path, checkpoint(tmp_path), gpus="")
    assert result.returncode == 1 and "RuntimeError: No CUDA GPUs are available" in result.stderr
    assert not (tmp_path / "engine" / "rank0.engine").exists()
    hidden = build(tmp_path, checkpoint(tmp_path), gpus=H100, CUDA_VISIBLE_DEVICES="")
    assert hidden.returncode == 1
    # The SM comes from visible GPU 0.
    visible = build(tmp_path, checkpoint(tmp_path, quant_algo="W8A16"), gpus=f"{H100};{B200}", CUDA_VISIBLE_DEVICES="1")
    assert "INT8/INT4 quantization is not supported" in visible.stderr


def test_the_shims_need_the_test_interpreter(tmp_path):
    env = fake_toolchain_env(H100)
    del env["LLMKIT_FAKE_PYTHON"]
    result = subprocess.run(["trtllm-build", "--help"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "LLMKIT_FAKE_PYTHON" in result.stderr


MPIRUN = [str(Path(sys.executable).parent / "mpirun") if (Path(sys.executable).parent / "mpirun").exists()
          else (shutil.which("mpirun") or "mpirun"), "--allow-run-as-root", "--oversubscribe"]


def mpirun(tmp_path: Path, n: int, ckpt: Path, gpus: str) -> subprocess.CompletedProcess:
    env = fake_toolchain_env(gpus)
    keys = ("PATH", "PYTHONPATH", "LLMKIT_FAKE_GPUS", "LLMKIT_FAKE_PYTHON")
    exported = [item for key in keys for item in ("-x", key)]
    command = [*MPIRUN, *exported, "-np", str(n), str(FAKE_BIN / "trtllm-build"), "--checkpoint_dir", str(ckpt),
               "--output_dir", str(tmp_path / "engine")]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.mpi
def test_mpirun_splits_the_ranks_between_processes(tmp_path):
    result = mpirun(tmp_path, 2, checkpoint(tmp_path, tp=4), f"2x {H100}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(built_on(result.stdout)) == [f"rank{r}.engine on GPU {r % 2} by MPI rank {r % 2}" for r in range(4)]
    assert json.loads((tmp_path / "engine" / "config.json").read_text())["pretrained_config"]["mapping"]["tp_size"] == 4
    # One GPU per node, two processes on it: the second has no device of its own.
    result = mpirun(tmp_path, 2, checkpoint(tmp_path, tp=2), H100)
    assert result.returncode != 0 and "invalid device ordinal" in result.stderr


# --- nvidia-smi and the package metadata -----------------------------------------------------------------------------

def test_nvidia_smi_csv_in_any_field_order(tmp_path):
    gpus = f"2x {H100};{B200}"
    result = run(tmp_path, "nvidia-smi", "--query-gpu=memory.total,compute_cap,name,index",
                 "--format=csv,noheader,nounits", gpus=gpus)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "81559, 9.0, NVIDIA H100 80GB HBM3, 0", "81559, 9.0, NVIDIA H100 80GB HBM3, 1", "183359, 10.0, NVIDIA B200, 2"]
    header = run(tmp_path, "nvidia-smi", "--query-gpu=index,memory.total,driver_version,uuid", "--format=csv",
                 gpus=gpus, LLMKIT_FAKE_DRIVER="590.44.01").stdout.splitlines()
    assert header[0] == "index, memory.total [MiB], driver_version, uuid"
    assert header[1].startswith("0, 81559 MiB, 590.44.01, GPU-") and len(set(header[1:])) == 3
    bad = run(tmp_path, "nvidia-smi", "--query-gpu=index,sm", "--format=csv", gpus=gpus)
    assert bad.returncode == 2 and 'Field "sm" is not a valid field to query.' in bad.stderr


def test_nvidia_smi_xml_and_no_devices(tmp_path):
    result = run(tmp_path, "nvidia-smi", "-q", "-x", gpus=f"8x {H100}", LLMKIT_FAKE_CUDA="12.8")
    root = ET.fromstring(result.stdout)  # the declaration and DOCTYPE included, as the real report has them
    assert root.findtext("cuda_version") == "12.8" and root.findtext("driver_version")
    assert root.findtext("attached_gpus") == "8" and len(root.findall("gpu")) == 8
    assert {gpu.findtext("product_name") for gpu in root.findall("gpu")} == {"NVIDIA H100 80GB HBM3"}
    none = run(tmp_path, "nvidia-smi", "--query-gpu=name", "--format=csv", gpus="")
    assert none.returncode == 6 and "No devices were found" in none.stdout


def test_installed_versions_without_a_package(tmp_path):
    code = "import importlib.metadata as m; print(*map(m.version, ('tensorrt_llm', 'tensorrt-llm', 'tensorrt')))"
    result = run(tmp_path, sys.executable, "-c", code, gpus="")
    assert result.stdout.split() == ["1.2.1", "1.2.1", "10.14.1"]
    assert run(tmp_path, sys.executable, "-c", "import tensorrt_llm", gpus="").returncode != 0
