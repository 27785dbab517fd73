"""The typed `trtllm-build` settings (TensorRT-LLM 1.2.1), in TensorRT-LLM's own value syntax.

Each field is one `trtllm-build --<field>` flag with the choices the tool accepts (its `plugin/plugin.py` and
`commands/build.py`): feature flags take the words `enable`/`disable`, plugins take a dtype or `disable`, the GEMM
plugin also `fp8`/`nvfp4` (never `fp4`). None leaves the flag to the layer below: a user's `build.flags.*` wins over
the system entry's `build_flags`, which wins over the system's, which wins over TensorRT-LLM's own default.

Not here because they are not flags of 1.2.1: `--strongly_typed` (always on), `--tp_size`/`--pp_size` (TP and PP
come from the checkpoint's mapping), `--auto_parallel`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional


class Toggle(str, Enum):
    enable = "enable"
    disable = "disable"


class PluginDtype(str, Enum):
    auto = "auto"
    float16 = "float16"
    float32 = "float32"
    bfloat16 = "bfloat16"
    int32 = "int32"
    disable = "disable"


class GemmPlugin(str, Enum):
    auto = "auto"
    float16 = "float16"
    float32 = "float32"
    bfloat16 = "bfloat16"
    int32 = "int32"
    fp8 = "fp8"
    nvfp4 = "nvfp4"
    disable = "disable"


class Fp8Plugin(str, Enum):
    fp8 = "fp8"
    disable = "disable"


class AllReducePlugin(str, Enum):
    float16 = "float16"
    bfloat16 = "bfloat16"
    disable = "disable"


class KVCacheType(str, Enum):
    continuous = "continuous"
    paged = "paged"
    disabled = "disabled"


@dataclass
class BuildFlags:
    """`trtllm-build` flags; None: not passed (the layer below, or TensorRT-LLM's default)."""

    # Sizes. max_input_len and max_seq_len default to the benchmark's (the longest prompt; it plus max_new_tokens).
    max_batch_size: Optional[int] = None
    max_input_len: Optional[int] = None
    max_seq_len: Optional[int] = None
    max_num_tokens: Optional[int] = None
    opt_num_tokens: Optional[int] = None
    max_beam_width: Optional[int] = None
    kv_cache_type: Optional[KVCacheType] = None
    tokens_per_block: Optional[int] = None
    # Features.
    context_fmha: Optional[Toggle] = None
    remove_input_padding: Optional[Toggle] = None
    use_paged_context_fmha: Optional[Toggle] = None
    use_fp8_context_fmha: Optional[Toggle] = None
    use_fused_mlp: Optional[Toggle] = None
    multiple_profiles: Optional[Toggle] = None
    reduce_fusion: Optional[Toggle] = None
    user_buffer: Optional[Toggle] = None
    norm_quant_fusion: Optional[Toggle] = None
    pp_reduce_scatter: Optional[Toggle] = None
    # Plugins.
    gpt_attention_plugin: Optional[PluginDtype] = None
    moe_plugin: Optional[PluginDtype] = None
    nccl_plugin: Optional[PluginDtype] = None
    gemm_plugin: Optional[GemmPlugin] = None
    gemm_swiglu_plugin: Optional[Fp8Plugin] = None
    low_latency_gemm_plugin: Optional[Fp8Plugin] = None
    gemm_allreduce_plugin: Optional[AllReducePlugin] = None


@dataclass
class BuildConfig:
    """The engine build stage (`llmkit build`)."""

    # A TensorRT-LLM checkpoint directory to build from; None uses (or first makes) the `llmkit quantize` artifact
    # of this config's precision x system.tp x system.pp.
    checkpoint: Optional[str] = None
    # Print the plan (preflight, key, command lines, expected sizes) and build nothing; needs no GPU.
    dry_run: bool = False
    # Rebuild even when an engine with the same key exists (the old one is kept beside it).
    force: bool = False
    # trtllm-build --workers (parallel rank builds on one node); None: tp x pp, at most the visible GPUs.
    workers: Optional[int] = None
    # Seconds rank 0 of an `mpirun -n K llmkit build` waits for the other ranks' shares.
    rank_timeout_s: float = 7200.0
    flags: BuildFlags = field(default_factory=BuildFlags)
