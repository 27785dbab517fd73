"""Test double of TensorRT-LLM 1.2.1's `trtllm-build`: only tests put it on PATH (tests/fakes/bin); it builds nothing.

It mimics the command's flags (choices, defaults, argparse errors), its hard errors, the settings it overrides without
failing, its parallel build (`--workers`, `mpirun`) and its output directory, so that what it writes shows what the
real tool would have built. Behaviour was read from NVIDIA/TensorRT-LLM (the 1.2 line; no file could be read at the
v1.2.1 tag): tensorrt_llm/commands/build.py at 65f1d1536e18aea3380e6e270e00895a709333eb, tensorrt_llm/plugin/plugin.py
at c20322ffd3dc0740ca530c9fad989b22e64f6e06 (the pydantic PluginConfig), and late-2025 copies of tensorrt_llm/builder.py
(build(), _init_max_seq_len, Engine.save), tensorrt_llm/_common.py (check_max_num_tokens) and quantization/mode.py.
The code is this project's own.

The GPU comes from the fake nvidia-smi's LLMKIT_FAKE_GPUS (filtered by CUDA_VISIBLE_DEVICES, as torch would); the SM
of visible GPU 0 decides the per-architecture rules. Errors end the run with one line, `<ExceptionType>: <message>`,
on stderr and exit status 1 (the real tool prints a traceback ending in that line). Not accepted (argparse rejects
them as unknown): --build_config, --model_cls_file/--model_cls_name, the LoRA and speculative-decoding flags.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import sys
from pathlib import Path

from nvidia_smi import FakeGpu, fake_gpus

VERSION = "1.2.1"
MODEL_MAP = ("LlamaForCausalLM", "MixtralForCausalLM")  # the part of the real MODEL_MAP the kit needs
LLAMA, MIXTRAL = MODEL_MAP
DTYPES = ["auto", "float16", "float32", "bfloat16", "int32", "disable"]
BOOL = ["enable", "disable"]
# PluginConfig's fields in declaration order: (name, default, what the command line takes; None = not a flag).
PLUGIN_FIELDS = [
    ("dtype", "float16", None), ("bert_attention_plugin", "auto", DTYPES), ("gpt_attention_plugin", "auto", DTYPES),
    ("gemm_plugin", None, DTYPES[:-1] + ["fp8", "nvfp4", "disable"]), ("gemm_swiglu_plugin", None, ["fp8", "disable"]),
    ("fp8_rowwise_gemm_plugin", None, DTYPES), ("qserve_gemm_plugin", None, None), ("identity_plugin", None, None),
    ("nccl_plugin", "auto", DTYPES), ("lora_plugin", None, DTYPES), ("dora_plugin", False, BOOL),
    ("weight_only_groupwise_quant_matmul_plugin", None, None), ("weight_only_quant_matmul_plugin", None, None),
    ("smooth_quant_plugins", True, None), ("smooth_quant_gemm_plugin", None, None),
    ("layernorm_quantization_plugin", None, None), ("rmsnorm_quantization_plugin", None, None),
    ("quantize_per_token_plugin", False, None), ("quantize_tensor_plugin", False, None),
    ("moe_plugin", "auto", DTYPES), ("mamba_conv1d_plugin", "auto", DTYPES),
    ("low_latency_gemm_plugin", None, ["fp8", "disable"]), ("low_latency_gemm_swiglu_plugin", None, ["fp8", "disable"]),
    ("gemm_allreduce_plugin", None, ["float16", "bfloat16", "disable"]), ("context_fmha", True, BOOL),
    ("bert_context_fmha_fp32_acc", False, BOOL), ("paged_kv_cache", None, None), ("remove_input_padding", True, BOOL),
    ("norm_quant_fusion", False, BOOL), ("reduce_fusion", False, BOOL), ("user_buffer", False, BOOL),
    ("tokens_per_block", 32, int), ("use_paged_context_fmha", True, BOOL), ("use_fp8_context_fmha", True, BOOL),
    ("fuse_fp4_quant", False, BOOL), ("multiple_profiles", False, BOOL), ("paged_state", True, BOOL),
    ("streamingllm", False, BOOL), ("manage_weights", False, None), ("use_fused_mlp", True, BOOL),
    ("pp_reduce_scatter", False, BOOL),
]
SM100_UNSUPPORTED = ("gemm_swiglu_plugin", "fp8_rowwise_gemm_plugin", "low_latency_gemm_plugin",
                     "low_latency_gemm_swiglu_plugin", "bert_context_fmha_fp32_acc")
INT8_WEIGHT_ONLY = {"W8A16", "W8A16_GPTQ"}
INT4_WEIGHT_ONLY = {"W4A16", "W4A16_AWQ", "W4A16_GPTQ", "W4A8_AWQ"}  # W4A8_AWQ's quant mode is int4 weight-only
PER_GROUP = {"W4A16_AWQ", "W4A16_GPTQ", "W8A16_GPTQ", "W4A8_AWQ"}
SMOOTH_QUANT = {"W8A8_SQ_PER_CHANNEL", "W8A8_SQ_PER_TENSOR_PLUGIN", "W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN",
                "W8A8_SQ_PER_CHANNEL_PER_TENSOR_PLUGIN", "W8A8_SQ_PER_TENSOR_PER_TOKEN_PLUGIN"}


def parse_enum(value: str) -> str:  # KVCacheType.from_string: case-insensitive
    if value.upper() not in ("CONTINUOUS", "PAGED", "DISABLED"):
        raise ValueError(f"Invalid KV cache type: {value.upper()}")
    return value.upper()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trtllm-build", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--checkpoint_dir", type=str, default=None)
    add("--model_config", type=str, default=None)
    add("--output_dir", type=str, default="engine_outputs")
    for name, default in (("max_batch_size", 2048), ("max_input_len", 1024), ("max_beam_width", 1),
                          ("max_num_tokens", 8192), ("max_encoder_input_len", 1024), ("workers", 1)):
        add(f"--{name}", type=int, default=default)
    add("--max_seq_len", "--max_decoder_seq_len", dest="max_seq_len", type=int, default=None)
    add("--opt_num_tokens", type=int, default=None)
    add("--max_prompt_embedding_table_size", "--max_multimodal_len", type=int, default=0)
    add("--kv_cache_type", default=argparse.SUPPRESS, type=parse_enum)
    add("--paged_kv_cache", type=str, default=argparse.SUPPRESS)
    add("--input_timing_cache", type=str, default=None)
    add("--output_timing_cache", type=str, default="model.cache")
    add("--profiling_verbosity", type=str, default="layer_names_only", choices=["layer_names_only", "detailed", "none"])
    for flag in ("strip_plan", "weight_sparsity", "weight_streaming", "fast_build", "enable_debug_output", "dry_run",
                 "monitor_memory", "gather_context_logits", "gather_generation_logits", "gather_all_token_logits"):
        add(f"--{flag}", default=False, action="store_true")
    add("--log_level", type=str, default="info",
        choices=["internal_error", "error", "warning", "info", "verbose", "debug", "trace"])
    add("--visualize_network", type=str, default=None)
    add("--logits_dtype", type=str, default=None, choices=["float16", "float32"])
    plugins = p.add_argument_group("Plugin config arguments")
    for name, default, takes in PLUGIN_FIELDS:
        if takes is BOOL:
            plugins.add_argument(f"--{name}", type=str, default="enable" if default else "disable", choices=BOOL)
        elif isinstance(takes, list):
            fallback = default if name == "gemm_plugin" else (default or "disable")
            plugins.add_argument(f"--{name}", type=str, default=fallback, choices=takes)
        elif takes is not None:
            plugins.add_argument(f"--{name}", type=takes, default=default)
    return p


def as_bool(name: str, value: str) -> bool:  # pydantic's lax bool parsing, plus the enable/disable words
    words = {"enable": True, "true": True, "1": True, "yes": True, "on": True,
             "disable": False, "false": False, "0": False, "no": False, "off": False}
    if str(value).lower() not in words:
        raise ValueError(f"1 validation error for PluginConfig\n{name}: Input should be a valid boolean")
    return words[str(value).lower()]


def plugin_config(args: argparse.Namespace) -> tuple[dict, bool]:
    """PluginConfig.from_arguments: the flags' words as values; also whether gemm_plugin was explicitly disabled."""
    config = {}
    for name, default, _ in PLUGIN_FIELDS:
        value = getattr(args, name, default)
        if isinstance(default, bool):
            value = as_bool(name, value) if isinstance(value, str) else value
        elif name == "paged_kv_cache" and value is not None:
            value = as_bool(name, value)
        elif value == "disable":
            value = None
        config[name] = value
    if args.fast_build:
        config["manage_weights"] = True
    return config, args.gemm_plugin == "disable"


def visible_gpus() -> list[FakeGpu]:
    gpus, visible = fake_gpus(), os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    return [gpus[int(i)] for i in visible.split(",") if i.strip().isdigit() and int(i) < len(gpus)]


def sm_version(gpus: list[FakeGpu]) -> int:  # _utils.get_sm_version: device 0's properties
    if not gpus:
        raise RuntimeError("No CUDA GPUs are available")
    return gpus[0].sm


def num_tokens(args, max_seq_len: int, max_input_len: int, plugin: dict) -> tuple[int, int | None]:
    """check_max_num_tokens, as _common.py has it."""
    max_num, opt, batch = args.max_num_tokens, args.opt_num_tokens, args.max_batch_size
    if not plugin["remove_input_padding"]:
        if max_num is not None or opt is not None:
            max_num = batch * max_seq_len
    else:
        max_num = batch * max_seq_len if max_num is None else max_num
        if opt is None and not plugin["multiple_profiles"]:
            opt = min(batch * args.max_beam_width, max_num)
    max_num = min(max_num, max_seq_len * batch)  # above 16384 only warns
    if max_num < max_input_len and not plugin["context_fmha"]:
        max_num = max_input_len
    elif max_num < plugin["tokens_per_block"] and plugin["context_fmha"]:
        max_num = plugin["tokens_per_block"]
    return max_num, (min(opt, max_num) if opt is not None else None)


def effective_build_config(args, plugin: dict, gemm_disabled: bool, config: dict, sm: int) -> dict:
    """What builder.build() makes of the flags for this checkpoint on this GPU: its overrides and its errors."""
    p, arch, mapping = dict(plugin), config["architecture"], config["mapping"]
    algo, kv_algo = config["quantization"].get("quant_algo"), config["quantization"].get("kv_cache_quant_algo")
    fp8_kv, int8_kv = kv_algo == "FP8", kv_algo == "INT8"
    p["dtype"] = config["dtype"]
    kv_type = getattr(args, "kv_cache_type", None)  # BuildConfig.update_kv_cache_type
    if kv_type is not None:
        if p["paged_kv_cache"] is not None and p["paged_kv_cache"] != (kv_type == "PAGED"):
            raise AssertionError("")
        p["paged_kv_cache"] = kv_type == "PAGED"
    elif p["paged_kv_cache"] is not None:
        kv_type = "PAGED" if p["paged_kv_cache"] else "CONTINUOUS"
    else:
        kv_type, p["paged_kv_cache"] = "PAGED", True
    p["paged_state"] = False  # only Mamba/RecurrentGemma keep paged_state

    max_seq_len = args.max_seq_len  # _init_max_seq_len
    if max_seq_len is None:
        scaling = config.get("rotary_scaling") or {}
        kind = scaling.get("type", scaling.get("rope_type"))
        factor = scaling.get("factor", 1.0) if scaling and kind not in ("su", "longrope", "llama3") else 1
        deduced = config.get("max_position_embeddings") or 2048
        max_seq_len = int(math.ceil(deduced * factor) if factor != 1 else deduced)
    max_input_len = min(args.max_input_len, max_seq_len)
    max_num_tokens, opt_num_tokens = num_tokens(args, max_seq_len, max_input_len, p)

    if p["reduce_fusion"] and (mapping["tp_size"] == 1 or arch not in (LLAMA, "Gemma2ForCausalLM",
                                                                       "MedusaForCausalLM")):
        p["reduce_fusion"] = False
    if p["user_buffer"] and not p["reduce_fusion"]:
        p["user_buffer"] = False
    if p["norm_quant_fusion"] and (p["reduce_fusion"] or arch != LLAMA or algo != "NVFP4"):
        p["norm_quant_fusion"] = False
    if not p["context_fmha"]:
        p["use_fp8_context_fmha"] = p["use_paged_context_fmha"] = False
    elif algo not in ("FP8", "W4A8_AWQ", "NVFP4") or sm < 89:
        p["use_fp8_context_fmha"] = False
        if p["use_paged_context_fmha"] and fp8_kv:
            p["use_paged_context_fmha"] = False
    elif p["use_paged_context_fmha"]:
        p["use_fp8_context_fmha"] = fp8_kv  # FP8 paged context FMHA needs, and is switched on by, an FP8 KV cache
    if p["use_paged_context_fmha"] and int8_kv:
        p["use_paged_context_fmha"] = False

    if 100 <= sm < 120:
        if algo in INT8_WEIGHT_ONLY | INT4_WEIGHT_ONLY or int8_kv:
            raise RuntimeError("INT8/INT4 quantization is not supported on SM>=100.")
        if algo in SMOOTH_QUANT:
            raise RuntimeError("SmoothQuant is not supported on SM>=100.")
        if algo == "FP8_PER_CHANNEL_PER_TOKEN":
            raise RuntimeError("Per-channel or per-token scaling is not supported on SM>=100.")
    if (p["gemm_swiglu_plugin"] or p["low_latency_gemm_swiglu_plugin"]) and not p["use_fused_mlp"]:
        raise RuntimeError("GemmSwiGLU plugin requires --use_fused_mlp flag")
    if algo == "NVFP4" and not gemm_disabled:
        p["gemm_plugin"] = "nvfp4"
    if algo in INT8_WEIGHT_ONLY | INT4_WEIGHT_ONLY:
        p["weight_only_groupwise_quant_matmul_plugin" if algo in PER_GROUP else "weight_only_quant_matmul_plugin"] = \
            config["dtype"]
    p["nccl_plugin"] = config["dtype"] if mapping["world_size"] > 1 else None

    return {
        "max_input_len": max_input_len, "max_seq_len": max_seq_len, "opt_batch_size": 8,
        "max_batch_size": args.max_batch_size, "max_beam_width": args.max_beam_width,
        "max_num_tokens": max_num_tokens, "opt_num_tokens": opt_num_tokens,
        "max_prompt_embedding_table_size": args.max_prompt_embedding_table_size, "kv_cache_type": kv_type,
        "gather_context_logits": args.gather_context_logits, "gather_generation_logits": args.gather_generation_logits,
        "strongly_typed": True, "force_num_profiles": os.environ.get("BUILDER_FORCE_NUM_PROFILES"),
        "profiling_verbosity": args.profiling_verbosity, "enable_debug_output": args.enable_debug_output,
        "max_draft_len": 0, "speculative_decoding_mode": 1, "use_refit": False,
        "input_timing_cache": args.input_timing_cache, "output_timing_cache": args.output_timing_cache,
        "lora_config": {"lora_dir": [], "lora_ckpt_source": "hf", "max_lora_rank": 64, "lora_target_modules": [],
                        "trtllm_modules_to_hf_modules": {}},
        "weight_sparsity": args.weight_sparsity, "weight_streaming": args.weight_streaming, "plugin_config": p,
        "use_strip_plan": args.strip_plan, "max_encoder_input_len": args.max_encoder_input_len,
        "monitor_memory": args.monitor_memory, "use_mrope": False,
    }


def read_rank_file(path: Path) -> bytes:
    assert path.is_file(), f"{path} does not exist"
    data = path.read_bytes()
    try:
        (length,) = struct.unpack("<Q", data[:8])
        if not isinstance(json.loads(data[8:8 + length]), dict):
            raise ValueError("header is not a JSON object")
    except (struct.error, ValueError) as error:
        raise RuntimeError(f"Error while deserializing header of {path}: {error}") from None
    return data


class Build:
    """One trtllm-build run: the parsed flags, the checkpoint and the GPUs it sees."""

    def __init__(self, args, plugin: dict, gemm_disabled: bool, config: dict, ckpt_dir: str | None, gpus):
        self.args, self.plugin, self.gemm_disabled, self.config = args, plugin, gemm_disabled, config
        self.ckpt_dir, self.gpus, self.out = ckpt_dir, gpus, Path(args.output_dir)

    def rank(self, rank: int, gpu: int, mpi_rank: int | None = None) -> None:
        """build_and_save: one engine rank on one GPU; the engine rank 0 also writes config.json and the cache."""
        if gpu >= len(self.gpus):
            raise RuntimeError("CUDA error: invalid device ordinal")
        arch = self.config["architecture"]
        assert not self.plugin["streamingllm"], "StreamingLLM is no longer supported because attention sink " \
            "cannot work with the non-cyclic kv cache kernel & runtime changes."
        assert not self.plugin["pp_reduce_scatter"] or arch == MIXTRAL, \
            "PP reduce scatter is only supported in the mixtral model."
        assert rank < self.config["mapping"]["world_size"]
        assert arch in MODEL_MAP, f"Unsupported model architecture: {arch}"
        weights = read_rank_file(Path(self.ckpt_dir) / f"rank{rank}.safetensors") if self.ckpt_dir else b""
        build = effective_build_config(self.args, self.plugin, self.gemm_disabled, self.config, self.gpus[0].sm)
        if rank == 0 and build["output_timing_cache"]:
            cache = b"LLMKIT-FAKE-TRT-TIMING-CACHE\n" + self.gpus[0].name.encode()
            Path(build["output_timing_cache"]).write_bytes(cache)
        self.out.mkdir(parents=True, exist_ok=True)
        if rank == 0:
            self.save_config(build)
        if not self.args.dry_run:
            seed = hashlib.sha256(weights).digest() + json.dumps([rank, build], sort_keys=True).encode()
            body = hashlib.shake_256(seed).digest(max(len(weights), 1024))
            (self.out / f"rank{rank}.engine").write_bytes(b"LLMKIT-FAKE-TRT-ENGINE\n" + body)
        where = "" if mpi_rank is None else f" by MPI rank {mpi_rank}"
        print(f"[TRT-LLM] [I] (test double) built rank{rank}.engine on GPU {gpu}{where}", flush=True)

    def save_config(self, build: dict) -> None:
        pretrained = json.loads(json.dumps(self.config))
        if pretrained["quantization"].get("quant_algo") == "MIXED_PRECISION":
            quant = {"version": VERSION, **pretrained["quantization"]}
            pretrained["quantization"].pop("quantized_layers", None)
            (self.out / "quant_cfg.json").write_text(json.dumps(quant, indent=4))
        engine = {"version": VERSION, "pretrained_config": pretrained, "build_config": build}
        (self.out / "config.json").write_text(json.dumps(engine, indent=4))


def mpi_world():
    """COMM_WORLD when launched by an MPI launcher with more than one rank, else None (no MPI start-up cost)."""
    if not any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE")):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def parallel_build(build: Build, workers: int) -> None:
    world_size, comm = build.config["mapping"]["world_size"], mpi_world()
    if comm is None and workers == 1:
        for rank in range(world_size):
            build.rank(rank, 0)
    elif comm is None:  # a spawn-context process pool of `workers` processes: rank r on GPU r % workers
        if workers < 1:
            raise ValueError("max_workers must be greater than 0")
        failed = []
        for rank in range(world_size):
            try:
                build.rank(rank, rank % workers)
            except Exception as error:  # noqa: BLE001 - the pool reports every failed rank, then fails
                print(describe(error), file=sys.stderr, flush=True)
                failed.append(rank)
        assert not failed, "Engine building failed, please check error log."
    else:  # MPI rank i builds the engine ranks r with r % size == i, on its node-local GPU
        from mpi4py import MPI

        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        failed = False
        for rank in range(comm.Get_rank(), world_size, comm.Get_size()):
            try:
                build.rank(rank, local.Get_rank() % local.Get_size(), comm.Get_rank())
            except Exception as error:  # noqa: BLE001
                print(describe(error), file=sys.stderr, flush=True)
                failed = True
        comm.Barrier()
        if failed:
            print("Engine building failed, please check error log.", flush=True)
            comm.Abort(1)


def run(args: argparse.Namespace) -> None:
    if args.gather_all_token_logits:
        args.gather_context_logits = args.gather_generation_logits = True
    os.makedirs(args.output_dir, exist_ok=True)
    gpus = visible_gpus()
    workers = min(len(gpus), args.workers)
    plugin, gemm_disabled = plugin_config(args)
    sm = sm_version(gpus)  # PluginConfig.validate(): needs a GPU
    if sm == 100:
        for name in SM100_UNSUPPORTED:
            if plugin[name] not in (None, False):
                raise NotImplementedError(f"{name}={plugin[name]} is not supported on SM {sm}.")
    source = args.checkpoint_dir if args.checkpoint_dir is not None else args.model_config
    if source is None:
        raise AttributeError("'NoneType' object has no attribute 'lower'")
    ckpt_dir = None if source.lower().endswith(".json") else source
    config = json.loads(Path(source if ckpt_dir is None else os.path.join(source, "config.json")).read_text())
    mapping = config.setdefault("mapping", {})
    mapping.setdefault("tp_size", 1)
    mapping.setdefault("pp_size", 1)
    ranks = mapping["tp_size"] * mapping["pp_size"] * mapping.get("cp_size", 1)
    if mapping.setdefault("world_size", ranks) != ranks:  # Mapping's own check
        raise ValueError(f"world_size must equal to pp_size * tp_size * cp_size, but got {mapping['world_size']} != "
                         f"{mapping['pp_size']} * {mapping['tp_size']} * {mapping.get('cp_size', 1)}")
    quant = config.setdefault("quantization", {})
    quant.setdefault("quant_algo", None)
    quant.setdefault("kv_cache_quant_algo", None)
    if args.multiple_profiles == "enable" and args.opt_num_tokens is not None:
        raise RuntimeError("multiple_profiles is enabled, while opt_num_tokens is set. "
                           "They are not supposed to be working in the same time for now.")
    parallel_build(Build(args, plugin, gemm_disabled, config, ckpt_dir, gpus), workers)
    print("[TRT-LLM] [I] Total time of building all engines: 00:00:00", flush=True)


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args)
    except Exception as error:  # noqa: BLE001 - the real tool dies of the exception; the double says it in one line
        print(describe(error), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
