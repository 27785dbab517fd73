"""`llmkit build`: engines from tiny-model checkpoints, built by the test double of trtllm-build (tests/fakes) on a
fake GPU node, so the key, manifest, reuse, multi-rank split, dry run and every refusal run for real."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import BIN, run_cli
from fakes import fake_toolchain_env
from build_engines.checkpoint import resolve
from build_engines.engine import EngineNeeds, check_engine
from build_engines import stage
from build_engines.stage import build
from llmkit.config.load import load
from llmkit.errors import UserError
from quantize.stage import quantize

H100 = "8x NVIDIA H100 80GB HBM3|9.0|81559"
B200 = "8x NVIDIA B200|10.0|183359"
SMALL = ["calibration.num_samples=4", "calibration.max_length=32", "calibration.batch_size=2",
         "quantize.gate_samples=2", "quantize.min_greedy_agreement=0"]
MIXTRAL = ["system=h100x8", "benchmark=mixtral-8x7b", "model=tiny-mixtral", "precision=bf16"]
# h200x8's llama3.1-405b Offline entry: FP8, tp 4 x pp 2 (the tiny Llama's 4 heads and 2 layers allow it).
LLAMA = ["system=h200x8", "benchmark=llama3.1-405b", "model=tiny-llama3"]
MPIRUN = [str(BIN / "mpirun") if (BIN / "mpirun").exists() else (shutil.which("mpirun") or "mpirun"),
          "--allow-run-as-root", "--oversubscribe"]


def _args(artifacts: Path, root: Path, *extra: str) -> list[str]:
    models = artifacts / "models"
    model = "tiny-llama3" if "model=tiny-llama3" in extra else "tiny-mixtral"
    return [f"artifacts_root={root}", f"model.path={models / model}", *SMALL, *extra]


def _engines(root: Path) -> list[Path]:
    return sorted(p for p in (root / "engines").iterdir()) if (root / "engines").is_dir() else []


@pytest.fixture
def fake_node(monkeypatch):
    """This process (and its children) on a node with 8 H100s, TensorRT-LLM 1.2.1 and the trtllm-build double."""
    for key, value in fake_toolchain_env(H100).items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "fakes" / "site"))


def test_build_writes_a_keyed_engine_with_its_manifest_and_reuses_it(artifacts, tmp_path):
    root = tmp_path / "art"
    env = fake_toolchain_env(H100)
    first = run_cli("llmkit", "build", *_args(artifacts, root, *MIXTRAL), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    [engine] = _engines(root)
    manifest = json.loads((engine / "manifest.json").read_text())
    assert manifest["kind"] == "engines" and manifest["key"] == engine.name
    inputs = manifest["inputs"]
    assert inputs["sm"] == 90 and inputs["trtllm_version"] == "1.2.1" and inputs["tensorrt_version"] == "10.14.1"
    assert inputs["cuda_version"] == "13.1" and inputs["checkpoint"] == manifest["checkpoint_path"].rsplit("/", 1)[1]
    # The published H100 settings, in trtllm-build's own words; TP and PP come from the checkpoint.
    assert inputs["flags"]["max_batch_size"] == 896 and inputs["flags"]["use_fp8_context_fmha"] == "disable"
    command = manifest["command"]
    assert command.startswith("trtllm-build --checkpoint_dir ") and "--multiple_profiles enable" in command
    assert "--tp_size" not in command and "--strongly_typed" not in command
    assert manifest["toolchain"]["gpu_name"] == "NVIDIA H100 80GB HBM3"
    [rank] = manifest["ranks"]
    assert rank["file"] == "rank0.engine" and rank["bytes"] == (engine / "rank0.engine").stat().st_size
    assert len(rank["sha256"]) == 64 and manifest["build_config"]["max_seq_len"] == 3072
    config = json.loads((engine / "config.json").read_text())
    assert config["version"] == "1.2.1" and config["pretrained_config"]["mapping"]["world_size"] == 1
    assert not list(engine.glob(".timing")) and not list((root / "engines").glob(".*staging*"))

    again = run_cli("llmkit", "build", *_args(artifacts, root, *MIXTRAL), env=env)
    assert again.returncode == 0 and "reusing engines artifact" in again.stderr
    assert _engines(root) == [engine]
    forced = run_cli("llmkit", "build", *_args(artifacts, root, *MIXTRAL, "build.force=true"), env=env)
    assert forced.returncode == 0, forced.stderr[-2000:]
    names = [p.name for p in _engines(root)]
    assert engine.name in names and any(n.startswith(f"{engine.name}.replaced-") for n in names)


@pytest.mark.mpi
def test_mpirun_ranks_build_their_share_and_only_rank_0_writes_the_manifest(artifacts, tmp_path):
    root = tmp_path / "art"
    env = fake_toolchain_env(H100)
    extra = [item for key in ("PATH", "PYTHONPATH", "LLMKIT_FAKE_GPUS", "LLMKIT_FAKE_PYTHON", "LLMKIT_FAKE_CUDA")
             for item in ("-x", key)]
    # The ranks never quantize at once: the checkpoint is made first, by one process.
    early = run_cli(*MPIRUN, *extra, "-np", "2", sys.executable, "-m", "build_engines",
                    *_args(artifacts, root, *LLAMA), env=env, timeout=300)
    assert early.returncode != 0 and "2 MPI ranks must not quantize at once" in early.stderr
    made = run_cli("llmkit", "quantize", *_args(artifacts, root, *LLAMA), env=env)
    assert made.returncode == 0, made.stderr[-3000:]
    result = run_cli(*MPIRUN, *extra, "-np", "2", sys.executable, "-m", "build_engines",
                     *_args(artifacts, root, *LLAMA), env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    [engine] = _engines(root)
    manifest = json.loads((engine / "manifest.json").read_text())
    assert manifest["mpi_ranks"] == 2 and len(manifest["ranks"]) == 8
    assert manifest["mapping"]["tp_size"] == 4 and manifest["mapping"]["pp_size"] == 2
    for rank in range(8):
        assert f"built rank{rank}.engine on GPU" in result.stdout and f"by MPI rank {rank % 2}" in result.stdout
    assert "--workers 1" in manifest["command"]
    assert not list(engine.glob(".rank*")) and not list((root / "engines").glob(".*staging*"))


def test_mpi_ranks_take_only_the_checkpoint_quantize_made_of_this_very_model(artifacts, tmp_path, fake_node):
    root = tmp_path / "art"
    made = quantize(load(_args(artifacts, root, *MIXTRAL), serving=False))
    assert resolve(load(_args(artifacts, root, *MIXTRAL), serving=False), dry_run=False, ranks=2).path == made
    # Another checkpoint under the same model name, benchmark, recipe and topology: not the artifact made above.
    other = [f"artifacts_root={root}", f"model.path={tmp_path / 'other'}", "model.seed=1", *SMALL, *MIXTRAL]
    with pytest.raises(UserError, match="run llmkit quantize with the same overrides in one process first"):
        resolve(load(other, serving=False), dry_run=False, ranks=2)


def test_a_rank_that_crashes_leaves_a_whole_failure_marker_so_rank_0_stops_at_once(tmp_path, monkeypatch):
    def crash(argv, output):
        raise RuntimeError("out of host memory")

    monkeypatch.setattr(stage, "_run_trtllm_build", crash)
    with pytest.raises(RuntimeError):
        stage._build_rank(["trtllm-build"], tmp_path, 1)
    assert [p.name for p in tmp_path.iterdir()] == [stage.RANK_MARKER.format(rank=1)]  # no temporary file left
    with pytest.raises(UserError, match="rank 1's trtllm-build failed .RuntimeError: out of host memory"):
        stage._wait_for_ranks(tmp_path, 2, timeout_s=1)


def test_one_process_builds_every_rank_with_workers_tp_x_pp(artifacts, tmp_path, fake_node):
    root = tmp_path / "art"
    path = build(load(_args(artifacts, root, *LLAMA), serving=False))
    manifest = json.loads((path / "manifest.json").read_text())
    assert "--workers 8" in manifest["command"] and len(manifest["ranks"]) == 8
    assert "gemm_allreduce_plugin" in manifest["inputs"]["flags"]


def test_dry_run_prints_the_plan_without_a_gpu_and_writes_nothing(artifacts, tmp_path):
    root = tmp_path / "art"
    result = run_cli("llmkit", "build", *_args(artifacts, root, *LLAMA, "build.dry_run=true"))
    assert result.returncode == 0, result.stderr[-2000:]
    out = " ".join(result.stdout.split())
    assert "the pinned release, not probed" in out and "trtllm-build --checkpoint_dir" in out
    assert "not made yet" in out and "8 rank files" in out
    assert not (root / "engines").exists() and not (root / "checkpoints").exists()


def test_a_sweep_reports_the_refused_combination_and_goes_on(artifacts, tmp_path):
    root = tmp_path / "art"
    result = run_cli("llmkit", "build", "-m", "system=h100x8,b200x8", "precision=fp8,nvfp4",
                     *_args(artifacts, root, *LLAMA[1:], "build.dry_run=true", "system.tp=4", "system.pp=2",
                            f"runs_root={tmp_path / 'runs'}"))
    assert result.returncode == 2, result.stderr[-3000:]
    # b200x8's 405b Offline entry runs 2 instances: tp 4 x pp 2 x 2 is more GPUs than it has (refused by the config's
    # checks); on h100x8, fp8 is planned and nvfp4 refused by the build preflight. Every combination is tried.
    assert result.stdout.count("llmkit build plan (dry run)") == 1
    assert "3 combination(s) of the sweep were refused" in result.stderr
    refused = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    nvfp4 = [line for line in refused if "system=h100x8" in line and "precision=nvfp4" in line]
    assert nvfp4 and nvfp4[0].endswith("an NVFP4 engine needs FP4 tensor cores (SM100 and later), not SM90; choose "
                                       "precision=fp8 on this system, or a Blackwell system")
    assert sum("system=b200x8" in line and "need 16 GPUs but system=b200x8 has 8" in line for line in refused) == 2


@pytest.mark.parametrize("extra, expected", [
    (["build.flags.max_batchsize=8"], "unknown config key 'build.flags.max_batchsize' (did you mean 'max_batch_size'?)"),
    (["build.flags.gemm_plugin=fp4"], "build.flags.gemm_plugin"),
    (["system=h100x9"], "'h100x9' is not a system config (did you mean 'h100x8'?)"),
    (["system=cpu"], "system=cpu has no GPU model"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(artifacts, tmp_path, extra, expected):
    root = tmp_path / "art"
    result = run_cli("llmkit", "build", *_args(artifacts, root, *MIXTRAL, *extra), env=fake_toolchain_env(H100))
    assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (root / "engines").exists()


@pytest.mark.parametrize("extra, expected", [
    (["build.flags.multiple_profiles=enable", "build.flags.opt_num_tokens=64"],
     "refuses multiple_profiles=enable together with opt_num_tokens"),
    (["build.flags.pp_reduce_scatter=enable"], "allows pp_reduce_scatter only for Mixtral"),
    (["build.flags.gemm_swiglu_plugin=fp8", "build.flags.use_fused_mlp=disable"], "gemm_swiglu_plugin=fp8 needs "),
    (["build.flags.max_input_len=100"], "max_input_len 100 is below llama3.1-405b's longest prompt"),
    (["build.flags.max_seq_len=20000"], "max_seq_len 20000 cannot hold"),
    (["build.flags.max_batch_size=16"], "build.flags.max_batch_size=16 is below the runtime batch"),
    (["precision=nvfp4"], "an NVFP4 engine needs FP4 tensor cores (SM100 and later), not SM90"),
])
def test_the_preflight_refuses_what_trtllm_build_rejects(artifacts, tmp_path, fake_node, extra, expected):
    root = tmp_path / "art"
    with pytest.raises(UserError, match=None) as error:
        build(load(_args(artifacts, root, *LLAMA, "build.dry_run=true", *extra), serving=False))
    assert expected in str(error.value)
    assert not (root / "engines").exists()


def test_blackwell_refusals_and_silent_overrides_said_aloud(artifacts, tmp_path, caplog):
    root = tmp_path / "art"
    base = _args(artifacts, root, "system=b200x8", "benchmark=llama3.1-405b", "model=tiny-llama3",
                 "build.dry_run=true")
    with pytest.raises(UserError, match="refuses low_latency_gemm_plugin=fp8 on SM100"):
        build(load([*base, "build.flags.low_latency_gemm_plugin=fp8"], serving=False))
    with pytest.raises(UserError, match="cannot build W8A8_SQ_PER_CHANNEL"):
        build(load([*base, "precision=int8_sq"], serving=False))
    build(load([*base, "build.flags.reduce_fusion=enable", "system.tp=1", "system.pp=1", "system.dp=8",
                "build.flags.user_buffer=enable"], serving=False))
    said = caplog.text
    assert "turns reduce_fusion off (only with tp > 1)" in said and "turns user_buffer off" in said


def test_a_checkpoint_of_another_topology_or_a_broken_one_is_refused(artifacts, tmp_path, fake_node):
    root = tmp_path / "art"
    checkpoint = build  # noqa: F841  (the name below is the quantize artifact)
    from quantize.stage import quantize

    made = quantize(load(_args(artifacts, root, *MIXTRAL), serving=False))
    with pytest.raises(UserError, match=r"is sharded tp 1 x pp 1 but system=h100x8 runs tp 2 x pp 1"):
        build(load(_args(artifacts, root, *MIXTRAL, f"build.checkpoint={made}", "system.tp=2", "system.dp=4"),
                   serving=False))
    with pytest.raises(UserError, match="is not a directory"):
        build(load(_args(artifacts, root, *MIXTRAL, f"build.checkpoint={tmp_path / 'nope'}"), serving=False))
    broken = tmp_path / "broken"
    shutil.copytree(made, broken)
    (broken / "rank0.safetensors").unlink()
    with pytest.raises(UserError, match="lacks rank0.safetensors"):
        build(load(_args(artifacts, root, *MIXTRAL, f"build.checkpoint={broken}"), serving=False))
    assert not (root / "engines").exists()


def test_a_real_build_without_the_toolchain_or_the_gpu_stops_with_one_sentence(artifacts, tmp_path):
    root = tmp_path / "art"
    bare = run_cli("llmkit", "build", *_args(artifacts, root, *MIXTRAL))
    assert bare.returncode == 2 and "needs TensorRT-LLM 1.2.1 and trtllm-build is not on PATH" in bare.stderr
    no_gpu = run_cli("llmkit", "build", *_args(artifacts, root, *MIXTRAL), env=fake_toolchain_env(""))
    assert no_gpu.returncode == 2 and "nvidia-smi finds none (No devices were found)" in no_gpu.stderr
    other = run_cli("llmkit", "build", *_args(artifacts, root, *MIXTRAL), env=fake_toolchain_env(B200))
    assert other.returncode == 2 and "is built for H100-SXM-80GB (SM90) but this node has NVIDIA B200" in other.stderr
    assert not (root / "engines").exists()


def test_405b_fp8_on_four_h100s_is_refused_with_a_topology_that_fits(tmp_path):
    result = run_cli("llmkit", "build", "system=h100x8", "benchmark=llama3.1-405b", "model=checkpoint",
                     f"model.path={tmp_path / 'Llama-3.1-405B-Instruct'}", "system.tp=4", "build.dry_run=true",
                     f"artifacts_root={tmp_path / 'art'}")
    assert result.returncode == 2
    assert "llama3.1-405b at fp8 needs" in result.stderr and "on tp 4 x pp 1 of H100-SXM-80GB" in result.stderr


def test_check_engine_refuses_what_a_run_cannot_load(artifacts, tmp_path, fake_node):
    root = tmp_path / "art"
    engine = build(load(_args(artifacts, root, *MIXTRAL), serving=False))
    needs = EngineNeeds(sm=90, trtllm_version="1.2.1", tensorrt_version="10.14.1", tp=1, pp=1, max_seq_len=3072,
                        max_batch_size=896, max_num_tokens=8192)
    assert check_engine(engine, needs)["key"] == engine.name
    from dataclasses import replace

    for changed, expected in [
        (dict(sm=100), "was built for SM90 (NVIDIA H100 80GB HBM3) but this GPU is SM100"),
        (dict(trtllm_version="1.3.0"), "was built with TensorRT-LLM 1.2.1 but this runtime has 1.3.0"),
        (dict(tensorrt_version="10.15.0"), "was built with TensorRT 10.14.1"),
        (dict(tp=2), "is sharded tp 1 x pp 1 but the system runs tp 2 x pp 1"),
        (dict(max_seq_len=4096), "takes sequences of at most 3072 tokens but the run needs 4096"),
        (dict(max_batch_size=1024), "was built for batches of 896 but the run asks for 1024"),
        (dict(max_num_tokens=9000), "was built for 8192 tokens per iteration"),
    ]:
        with pytest.raises(UserError, match=None) as error:
            check_engine(engine, replace(needs, **changed))
        assert expected in str(error.value)
    data = bytearray((engine / "rank0.engine").read_bytes())
    data[-1] ^= 0xFF
    (engine / "rank0.engine").write_bytes(bytes(data))
    with pytest.raises(UserError, match="differs from the file the build wrote"):
        check_engine(engine, needs)
    (engine / "rank0.engine").unlink()
    with pytest.raises(UserError, match="has lost rank0.engine"):
        check_engine(engine, needs)


def test_a_run_on_a_topology_that_cannot_hold_the_model_is_refused_before_it_starts(quick, tmp_path):
    import shutil as files

    from llmkit.benchmarks import LLAMA3_1_405B

    checkpoint = tmp_path / "Llama-3.1-405B-Instruct"
    checkpoint.mkdir()
    shape = LLAMA3_1_405B.shape
    (checkpoint / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "vocab_size": shape.vocab_size, "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size, "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads, "num_key_value_heads": shape.num_kv_heads, "head_dim": shape.head_dim}))
    (checkpoint / "model.safetensors").write_bytes(b"")  # the weights are never read: the preflight comes first
    files.copy(Path(quick[0].split("=", 1)[1]) / "models" / "tiny-llama3" / "tokenizer.json", checkpoint)
    result = run_cli("llmkit", "run", *quick, "system=h100x8", "benchmark=llama3.1-405b", "model=checkpoint",
                     f"model.path={checkpoint}", "backend=replay", "system.tp=4", "system.dp=1",
                     f"output_dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "needs" in result.stderr and "on tp 4 x pp 1 of H100-SXM-80GB" in result.stderr
    assert not (tmp_path / "run").exists()
