"""The `trtllm-build` command line, built from the typed flags; and the values the tool uses for flags not passed.

The command passes every flag that some layer set (the user's, the system entry's, the system's, the kit's
benchmark-sized defaults) and leaves the rest to TensorRT-LLM, whose defaults (TRTLLM_DEFAULTS) the preflight uses
to judge the effective build.
"""
from __future__ import annotations

import shlex
from dataclasses import fields, replace
from enum import Enum
from pathlib import Path

from llmkit.benchmarks import Benchmark
from llmkit.config.build import BuildFlags, GemmPlugin, KVCacheType, PluginDtype, Toggle
from llmkit.config.systems import merged_flags

# trtllm-build 1.2's defaults for the flags of BuildFlags (commands/build.py, plugin/plugin.py; TRTLLM.md section 2).
# max_seq_len has none: TensorRT-LLM takes the checkpoint's max_position_embeddings.
TRTLLM_DEFAULTS = BuildFlags(
    max_batch_size=2048, max_input_len=1024, max_num_tokens=8192, max_beam_width=1, kv_cache_type=KVCacheType.paged,
    tokens_per_block=32, context_fmha=Toggle.enable, remove_input_padding=Toggle.enable,
    use_paged_context_fmha=Toggle.enable, use_fp8_context_fmha=Toggle.enable, use_fused_mlp=Toggle.enable,
    multiple_profiles=Toggle.disable, reduce_fusion=Toggle.disable, user_buffer=Toggle.disable,
    norm_quant_fusion=Toggle.disable, pp_reduce_scatter=Toggle.disable, gpt_attention_plugin=PluginDtype.auto,
    moe_plugin=PluginDtype.auto, nccl_plugin=PluginDtype.auto, gemm_plugin=GemmPlugin.disable,
)


def sized_for(benchmark: Benchmark) -> BuildFlags:
    """The kit's own defaults: an engine that takes the benchmark's longest prompt and its longest answer."""
    return BuildFlags(max_input_len=benchmark.max_input_len, max_seq_len=benchmark.max_seq_len)


def requested(benchmark: Benchmark, layers: BuildFlags) -> BuildFlags:
    """The flags the command passes: the configured layers over the benchmark-sized defaults."""
    return merged_flags(sized_for(benchmark), layers)


def effective(flags: BuildFlags) -> BuildFlags:
    """What trtllm-build uses before its own silent overrides: the passed flags over its defaults."""
    return merged_flags(TRTLLM_DEFAULTS, flags)


def as_dict(flags: BuildFlags) -> dict[str, object]:
    """The set flags as plain values (enum members as TensorRT-LLM's words), in the schema's order."""
    out: dict[str, object] = {}
    for spec in fields(BuildFlags):
        value = getattr(flags, spec.name)
        if value is not None:
            out[spec.name] = value.value if isinstance(value, Enum) else value
    return out


def command(flags: BuildFlags, checkpoint: Path, output: Path, workers: int, timing_cache: Path) -> list[str]:
    """`trtllm-build` with every set flag; TP and PP come from the checkpoint, never from a flag."""
    argv = ["trtllm-build", "--checkpoint_dir", str(checkpoint), "--output_dir", str(output),
            "--workers", str(workers), "--output_timing_cache", str(timing_cache)]
    for name, value in as_dict(flags).items():
        argv += [f"--{name}", str(value)]
    return argv


def shown(argv: list[str]) -> str:
    return shlex.join(argv)


def without_sizes(flags: BuildFlags) -> BuildFlags:
    return replace(flags, max_batch_size=None, max_num_tokens=None)
