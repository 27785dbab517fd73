"""What the planner is asked: one serving instance of tp x pp GPUs, its precision, its limits and the dataset's lengths.

`request_for` fills one from the kit's facts (a Benchmark, a GpuSpec, a PrecisionConfig); `precision_terms` is the
piece that turns a quantization recipe into what the planner charges: bits per stored weight, the tensor-core
formats its GEMMs run in and the KV cache's bytes per element.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmkit.benchmarks import Benchmark, Scenario
from llmkit.config.precisions import AutoquantConfig
from llmkit.config.schema import KVCacheFormat, PrecisionConfig, PrecisionName
from llmkit.errors import UserError
from llmkit.gpus import COMPUTE_FORMATS, GpuSpec
from llmkit.models.dims import ModelShape
from llmkit.models.shape import weight_bits

TOKENS_PER_BLOCK = 32  # the published engines' paged-KV block (TRTLLM.md section 5)

# Per recipe: the tensor-core format its GEMMs run in, and the bits modelopt's AutoQuantize counts for it (its
# effective-bits budget counts a format's element bits without scales: NVFP4 and INT4 are 4, FP8 and INT8 are 8).
RECIPE_COMPUTE = {PrecisionName.bf16: "bf16", PrecisionName.fp8: "fp8", PrecisionName.int8_sq: "int8",
                  PrecisionName.w4a8_awq: "fp8", PrecisionName.nvfp4: "fp4"}
RECIPE_BITS = {PrecisionName.bf16: 16.0, PrecisionName.fp8: 8.0, PrecisionName.int8_sq: 8.0,
               PrecisionName.w4a8_awq: 4.0, PrecisionName.nvfp4: 4.0}
COMPUTE_BITS = {"fp4": 4, "fp8": 8, "int8": 8, "bf16": 16}  # orders the formats, fastest first


@dataclass(frozen=True)
class PrecisionTerms:
    weight_bits: float  # per stored linear weight, scales included
    compute: str  # the fastest format the GEMMs run in
    compute_mix: tuple[tuple[str, float], ...]  # (format, fraction of the linear weights), fractions summing to 1
    kv_bytes: float  # per KV element


def autoquant_mix(search: list[PrecisionName], effective_bits: float | None) -> tuple[tuple[PrecisionName, float], ...]:
    """The formats an AutoQuantize budget buys: the two neighbours of `effective_bits` among the searched formats and
    "unquantized" (16 bits), mixed so the mean bits meet the budget. The search may spread layers otherwise; this
    is the mix with the fewest formats that meets it, what the planner assumes without the search's result."""
    bits = effective_bits if effective_bits is not None else 16.0
    ladder = sorted({(RECIPE_BITS[f], f) for f in search} | {(16.0, PrecisionName.bf16)}, key=lambda x: x[0])
    if bits <= ladder[0][0]:
        return ((ladder[0][1], 1.0),)
    for (low_bits, low), (high_bits, high) in zip(ladder, ladder[1:]):
        if bits <= high_bits:
            low_share = (high_bits - bits) / (high_bits - low_bits)
            return tuple((f, share) for f, share in ((low, low_share), (high, 1.0 - low_share)) if share > 0)
    return ((PrecisionName.bf16, 1.0),)


def precision_terms(precision: PrecisionConfig) -> PrecisionTerms:
    """What a recipe costs: fp8 -> FP8 GEMMs; nvfp4 -> FP4; w4a8_awq -> FP8 (INT4 weights, FP8 activations);
    int8_sq -> INT8; bf16 -> BF16; autoquant -> its budget's mix (autoquant_mix), the fastest format named. The KV
    cache takes 1 byte per element when the recipe's kv_cache is fp8, else 2."""
    if isinstance(precision, AutoquantConfig):
        mix = autoquant_mix(list(precision.search_formats), precision.effective_bits)
    else:
        mix = ((precision.name, 1.0),)
    compute_mix = tuple((RECIPE_COMPUTE[f], share) for f, share in mix)
    fastest = min(compute_mix, key=lambda item: COMPUTE_BITS[item[0]])[0]
    kv_bytes = 1.0 if precision.kv_cache is KVCacheFormat.fp8 else 2.0
    return PrecisionTerms(weight_bits(precision), fastest, compute_mix, kv_bytes)


@dataclass(frozen=True)
class PlanRequest:
    """One serving instance of tp x pp GPUs (of `instances` in the system) and the workload it serves.

    Lengths are in tokens: `input_len`/`output_len` the dataset's means, `max_input_len`/`max_seq_len` the longest
    request the engine takes. `max_batch_size`/`max_num_tokens` are the runtime's (None: the planner picks them);
    `engine_max_num_tokens` sizes the engine's activations (None: max_num_tokens). `kv_fraction` is TensorRT-LLM's
    free_gpu_memory_fraction: the share of what is free after the engine loaded that the KV cache takes.
    """

    model: str
    shape: ModelShape
    gpu: GpuSpec
    weight_bits: float
    compute: str
    kv_bytes: float
    tp: int
    pp: int
    instances: int
    kv_fraction: float
    input_len: float
    output_len: float
    max_input_len: int
    max_seq_len: int
    max_batch_size: int | None = None
    max_num_tokens: int | None = None
    ttft_limit_ms: float | None = None
    tpot_limit_ms: float | None = None
    scenario: str = "Offline"
    precision: str = ""  # a label for messages ("fp8", "autoquant")
    compute_mix: tuple[tuple[str, float], ...] = ()  # () : every GEMM in `compute`
    input_p99: float | None = None  # the prompt the TTFT estimate waits for (None: max_input_len)
    engine_max_num_tokens: int | None = None
    gpus_per_node: int = 8
    tokens_per_block: int = TOKENS_PER_BLOCK

    def __post_init__(self):
        for name in ("tp", "pp", "instances", "max_input_len", "max_seq_len", "gpus_per_node", "tokens_per_block"):
            if getattr(self, name) < 1:
                raise UserError(f"planner: {name}={getattr(self, name)} must be at least 1")
        for name in ("max_batch_size", "max_num_tokens", "engine_max_num_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"planner: {name}={value} must be at least 1 (or unset, for the planner to pick it)")
        if not 0 < self.kv_fraction <= 1:
            raise UserError(f"planner: kv_fraction={self.kv_fraction} must lie in (0, 1]")
        if self.input_len <= 0 or self.output_len <= 0 or self.weight_bits <= 0 or self.kv_bytes <= 0:
            raise UserError("planner: input_len, output_len, weight_bits and kv_bytes must be positive")
        for fmt, _ in self.mix:
            if fmt not in COMPUTE_FORMATS:
                raise UserError(f"planner: unknown compute format '{fmt}'; known: {', '.join(COMPUTE_FORMATS)}")
            self.gpu.flops(fmt)  # the GPU must have it
        if abs(sum(share for _, share in self.mix) - 1.0) > 1e-6:
            raise UserError(f"planner: compute_mix {self.compute_mix} must sum to 1")

    @property
    def mix(self) -> tuple[tuple[str, float], ...]:
        return self.compute_mix or ((self.compute, 1.0),)

    @property
    def gpus(self) -> int:
        """GPUs of one instance."""
        return self.tp * self.pp

    @property
    def label(self) -> str:
        return f"{self.model} at {self.precision or self.compute}"


def request_for(benchmark: Benchmark, gpu: GpuSpec, precision: PrecisionConfig, scenario: Scenario, *, tp: int = 1,
                pp: int = 1, instances: int = 1, kv_fraction: float = 0.9, max_batch_size: int | None = None,
                max_num_tokens: int | None = None, engine_max_num_tokens: int | None = None,
                gpus_per_node: int = 8, precision_label: str | None = None) -> PlanRequest:
    """The request for serving `benchmark` in `scenario` on `gpu`: its shape, lengths and latency limits."""
    terms = precision_terms(precision)
    limits = benchmark.latency_limits.get(scenario)
    lengths = benchmark.lengths
    return PlanRequest(
        model=benchmark.name, shape=benchmark.shape, gpu=gpu, weight_bits=terms.weight_bits, compute=terms.compute,
        kv_bytes=terms.kv_bytes, tp=tp, pp=pp, instances=instances, kv_fraction=kv_fraction,
        input_len=lengths.input_mean, output_len=lengths.output_mean, max_input_len=benchmark.max_input_len,
        max_seq_len=benchmark.max_seq_len, max_batch_size=max_batch_size, max_num_tokens=max_num_tokens,
        ttft_limit_ms=limits.ttft_ms if limits else None, tpot_limit_ms=limits.tpot_ms if limits else None,
        scenario=scenario.value, precision=precision_label or precision.name.value, compute_mix=terms.compute_mix,
        input_p99=lengths.input_p99, engine_max_num_tokens=engine_max_num_tokens, gpus_per_node=gpus_per_node,
    )
