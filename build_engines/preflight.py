"""The build preflight, before any GPU time: what trtllm-build 1.2.x would refuse (refused here, one sentence each),
what it would silently change (said aloud as warnings), and whether the engine's limits serve the benchmark and the
runtime settings the system asks for. Rules: shared/TRTLLM.md section 2, read from TensorRT-LLM's build.py and
plugin.py of the 1.2 line.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmkit.benchmarks import Benchmark
from llmkit.config.build import BuildFlags, Fp8Plugin, GemmPlugin, Toggle
from llmkit.config.schema import TunedSettings
from llmkit.errors import UserError

# trtllm-build's model map, as far as the kit's checkpoints go.
ARCHITECTURES = ("LlamaForCausalLM", "MixtralForCausalLM")
FP8_CONTEXT_FMHA_ALGOS = ("FP8", "W4A8_AWQ", "NVFP4")
# Quantizations SM100-SM119 (Blackwell) cannot build: INT8/INT4 weights (W4A8_AWQ counts), SmoothQuant, FP8 row-wise.
NOT_ON_BLACKWELL = ("W8A16", "W4A16", "W4A8_AWQ", "W8A8_SQ", "FP8_PER_CHANNEL_PER_TOKEN")
MAX_NUM_TOKENS_WARNING = 16384


@dataclass(frozen=True)
class CheckpointFacts:
    """What the preflight needs from the TensorRT-LLM checkpoint's config.json (or, in a dry run without one, from
    the recipe that would make it)."""

    architecture: str
    quant_algo: str | None  # FP8, NVFP4, MIXED_PRECISION (AutoQuant), W4A8_AWQ, W8A8_SQ_PER_CHANNEL, ...; None: none
    kv_cache_quant_algo: str | None
    tp: int
    pp: int

    @property
    def is_mixtral(self) -> bool:
        return self.architecture == "MixtralForCausalLM"


def _on(value) -> bool:
    return value is Toggle.enable


def refusals(flags: BuildFlags, facts: CheckpointFacts, sm: int) -> list[str]:
    """What trtllm-build 1.2.x rejects (and what a GPU of this SM cannot build), one sentence each with the fix."""
    found = []
    if facts.architecture not in ARCHITECTURES:
        found.append(f"trtllm-build has no model for {facts.architecture}; the kit builds {', '.join(ARCHITECTURES)}")
    if _on(flags.multiple_profiles) and flags.opt_num_tokens is not None:
        found.append("trtllm-build refuses multiple_profiles=enable together with opt_num_tokens; drop "
                     "build.flags.opt_num_tokens or set build.flags.multiple_profiles=disable")
    if _on(flags.pp_reduce_scatter) and not facts.is_mixtral:
        found.append(f"trtllm-build allows pp_reduce_scatter only for Mixtral, not {facts.architecture}; set "
                     "build.flags.pp_reduce_scatter=disable")
    if flags.gemm_swiglu_plugin is Fp8Plugin.fp8 and not _on(flags.use_fused_mlp):
        found.append("gemm_swiglu_plugin=fp8 needs use_fused_mlp=enable; enable it or set "
                     "build.flags.gemm_swiglu_plugin=disable")
    blackwell = 100 <= sm < 120
    if sm == 100:
        for name in ("gemm_swiglu_plugin", "low_latency_gemm_plugin"):
            if getattr(flags, name) is Fp8Plugin.fp8:
                found.append(f"trtllm-build refuses {name}=fp8 on SM100 (B200, GB200); set build.flags.{name}=disable")
    if blackwell and facts.quant_algo and facts.quant_algo.startswith(NOT_ON_BLACKWELL):
        found.append(f"trtllm-build cannot build {facts.quant_algo} (INT8/INT4 weights, SmoothQuant or FP8 row-wise) "
                     f"for SM{sm} (Blackwell); use precision=nvfp4 or fp8")
    if blackwell and facts.kv_cache_quant_algo == "INT8":
        found.append(f"trtllm-build cannot build an INT8 KV cache for SM{sm}; use an FP8 KV cache")
    if flags.gemm_plugin is GemmPlugin.nvfp4 and facts.quant_algo not in ("NVFP4", "MIXED_PRECISION"):
        found.append(f"gemm_plugin=nvfp4 needs an NVFP4 checkpoint, not {facts.quant_algo or 'an unquantized one'}; "
                     "drop build.flags.gemm_plugin or choose precision=nvfp4")
    if facts.quant_algo == "NVFP4" and sm < 100:
        found.append(f"an NVFP4 engine needs FP4 tensor cores (SM100 and later), not SM{sm}; choose precision=fp8 "
                     "on this system, or a Blackwell system")
    if facts.quant_algo in ("FP8", "W4A8_AWQ") and sm < 89:
        found.append(f"an {facts.quant_algo} engine needs FP8 tensor cores (SM89 and later), not SM{sm}")
    return found


def silent_overrides(flags: BuildFlags, facts: CheckpointFacts, sm: int) -> list[str]:
    """What trtllm-build 1.2.x would change without saying so, said aloud."""
    said = []
    reduce_fusion = _on(flags.reduce_fusion) and facts.tp > 1 and not facts.is_mixtral
    if _on(flags.reduce_fusion) and not reduce_fusion:
        why = "never on Mixtral" if facts.is_mixtral else "only with tp > 1"
        said.append(f"trtllm-build turns reduce_fusion off ({why})")
    if _on(flags.user_buffer) and not reduce_fusion:
        said.append("trtllm-build turns user_buffer off (it needs reduce_fusion)")
    if _on(flags.norm_quant_fusion) and (facts.is_mixtral or facts.quant_algo != "NVFP4" or reduce_fusion):
        said.append("trtllm-build turns norm_quant_fusion off (only Llama at NVFP4 without reduce_fusion)")
    said += _context_fmha(flags, facts, sm)
    if facts.quant_algo == "NVFP4" and flags.gemm_plugin not in (GemmPlugin.nvfp4, GemmPlugin.disable):
        said.append("trtllm-build sets gemm_plugin=nvfp4 for an NVFP4 checkpoint")
    if flags.max_input_len and flags.max_seq_len and flags.max_input_len > flags.max_seq_len:
        said.append(f"trtllm-build clips max_input_len {flags.max_input_len} to max_seq_len {flags.max_seq_len}")
    if (flags.max_num_tokens or 0) > MAX_NUM_TOKENS_WARNING:
        said.append(f"max_num_tokens {flags.max_num_tokens} is above {MAX_NUM_TOKENS_WARNING}; TensorRT-LLM only warns, "
                    "but the activation workspace grows with it")
    return said


def _context_fmha(flags: BuildFlags, facts: CheckpointFacts, sm: int) -> list[str]:
    """build.py 1.2: with an FP8-capable quant_algo on SM89+ and paged context FMHA, FP8 context FMHA follows the KV
    cache (on with an FP8 one, off without); otherwise it is off, and paged context FMHA goes too with a quantized
    KV cache."""
    said = []
    asked = _on(flags.use_fp8_context_fmha)
    paged = _on(flags.use_paged_context_fmha) and _on(flags.context_fmha)
    if _on(flags.use_paged_context_fmha) and not _on(flags.context_fmha):
        said.append("trtllm-build turns use_paged_context_fmha off (context_fmha is disabled)")
    if facts.quant_algo in FP8_CONTEXT_FMHA_ALGOS and sm >= 89:
        if paged:
            follows = facts.kv_cache_quant_algo == "FP8"
            if follows != asked:
                said.append(f"trtllm-build turns use_fp8_context_fmha {'on' if follows else 'off'}: with paged context "
                            f"FMHA it follows the KV cache ({facts.kv_cache_quant_algo or 'not quantized'}); state "
                            f"build.flags.use_fp8_context_fmha={'enable' if follows else 'disable'}")
        return said
    if asked:
        said.append(f"trtllm-build turns use_fp8_context_fmha off (quant_algo {facts.quant_algo} on SM{sm}: only FP8, "
                    "W4A8_AWQ and NVFP4 on SM89+ keep it); state build.flags.use_fp8_context_fmha=disable")
    if paged and facts.kv_cache_quant_algo in ("FP8", "INT8"):
        said.append(f"with a {facts.kv_cache_quant_algo} KV cache and no FP8 context FMHA, trtllm-build turns "
                    "use_paged_context_fmha off (NVIDIA's mixtral configs disable both); state "
                    "build.flags.use_paged_context_fmha=disable")
    return said


def limit_problems(flags: BuildFlags, benchmark: Benchmark, entry: TunedSettings | None,
                   system_name: str) -> list[str]:
    """The engine's limits against the dataset's longest request and the runtime settings the system asks for."""
    found = []
    longest = benchmark.lengths.input_max
    if flags.max_input_len < longest:
        found.append(f"max_input_len {flags.max_input_len} is below {benchmark.name}'s longest prompt ({longest} tokens);"
                     f" set build.flags.max_input_len={benchmark.max_input_len}")
    need = longest + benchmark.max_new_tokens
    if flags.max_seq_len is not None and flags.max_seq_len < need:
        found.append(f"max_seq_len {flags.max_seq_len} cannot hold {benchmark.name}'s longest prompt plus "
                     f"{benchmark.max_new_tokens} new tokens ({need}); set build.flags.max_seq_len={benchmark.max_seq_len}")
    if entry is not None:
        for what, runtime, build in (("batch", entry.runtime_batch, flags.max_batch_size),
                                     ("tokens per iteration", entry.runtime_tokens, flags.max_num_tokens)):
            key = "max_batch_size" if what == "batch" else "max_num_tokens"
            if build < runtime:
                found.append(f"build.flags.{key}={build} is below the runtime {what} system={system_name} asks for "
                             f"({runtime}); raise it to at least {runtime}")
    return found


def check(flags: BuildFlags, facts: CheckpointFacts, sm: int, benchmark: Benchmark, entry: TunedSettings | None,
          system_name: str) -> list[str]:
    """Raise the first refusal (UserError); return the warnings."""
    problems = refusals(flags, facts, sm) + limit_problems(flags, benchmark, entry, system_name)
    if problems:
        raise UserError(problems[0])
    return silent_overrides(flags, facts, sm)
