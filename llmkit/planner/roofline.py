"""How long one engine iteration takes on one GPU of a PP stage: a roofline per kind of work, the kinds summed.

An inflight-batching iteration runs `decode` sequences one token each and `prefill` prompt tokens (chunks of the
prompts being read) through the stage's layers. Kernels run one after another, so the time is a sum over kinds:
- GEMMs: per linear, max(FLOPs at the format's dense peak, its weights read once from HBM). A MoE reads only the
  experts the iteration's tokens route to (expected distinct experts of T tokens, top-k of E each);
- attention: decode steps read their sequences' K/V (memory); prefill chunks compute causal attention (FLOPs);
- elementwise work (norms, residual adds, RoPE, activation quantization) streams each token's hidden vector;
- TP: two all-reduces per layer of the tokens' hidden states over NVLink (ring: 2(tp-1)/tp of the message);
- the runtime's own time per iteration and per sequence (scheduling, sampling, responses).
Peaks are the GPU's datasheet figures (llmkit/gpus.py); what real kernels reach of them is in the constants below.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from llmkit.planner.memory import UNQUANTIZED_BYTES, kv_heads_per_rank, layers_per_stage
from llmkit.planner.request import PlanRequest

GEMM_EFFICIENCY = 0.7
"""Share of the dense tensor peak that TensorRT-LLM's quantized GEMMs sustain on large shapes. cuBLASLt/CUTLASS FP8
GEMMs reach ~70-75% of the H100's 1979 TFLOPS at the sizes of these models (thousands of tokens by thousands of
channels) before the clock drops under the power cap; the FP4 kernels of Blackwell reach a similar share."""

GEMM_OVERLAP = 1.0
MOE_GEMM_SHARE = 1.0
FP4_GEMM_EFFICIENCY = 0.7

BANDWIDTH_EFFICIENCY = 0.85
"""Share of the HBM datasheet bandwidth a streaming read reaches (weights, KV blocks, activations): STREAM-like
copies measure ~85-90% on HBM3/HBM3e; paged-KV reads in 32-token blocks lose a little more."""

ATTENTION_EFFICIENCY = 0.5
"""Share of the 16-bit tensor peak that the context (prefill) FMHA kernels sustain, causal masking included:
FlashAttention-class kernels reach 50-60% of BF16 peak on Hopper at head_dim 128; Blackwell's kernels are similar."""

ELEMENTWISE_BYTES_PER_HIDDEN = 16
"""Bytes each token moves per hidden element per layer outside GEMMs and attention: two RMSNorms (read fp16, write
fp8/fp16), two residual adds (read two, write one), RoPE on Q/K, quantizing GEMM inputs; fused kernels cut it,
so ~8 fp16 reads or writes of the hidden vector."""

ALLREDUCE_EFFICIENCY = 0.8
"""Share of the NVLink per-direction bandwidth an all-reduce sustains: NCCL's measured bus bandwidth on 8x H100
NVSwitch is ~360 GB/s of 450 (NVLS aside); TensorRT-LLM's own all-reduce kernels are similar on large messages."""

ALLREDUCE_LATENCY_S = 10e-6
"""Fixed cost of one all-reduce (launch, barrier flags, NVSwitch hops): TensorRT-LLM's one-shot/two-shot kernels take
~5-15 us on small messages at TP 4-8."""

ITERATION_OVERHEAD_S = 2e-3
"""The executor's time per iteration outside the GPU's work: scheduling, KV block bookkeeping, launching the engine,
copying tokens back (TensorRT-LLM's C++ executor spends ~1-3 ms per step with hundreds of requests)."""

SEQUENCE_OVERHEAD_S = 2e-6
"""The executor's time per request in an iteration (sampling setup, stop checks, streaming the token out)."""


@dataclass(frozen=True)
class IterationTime:
    """Seconds of one iteration of one PP stage, by kind of work."""

    gemm: float
    attention: float
    elementwise: float
    allreduce: float
    overhead: float

    @property
    def total(self) -> float:
        return self.gemm + self.attention + self.elementwise + self.allreduce + self.overhead

    def to_json(self) -> dict:
        return {**asdict(self), "total": self.total}


def distinct_experts(tokens: float, experts: int, top_k: int) -> float:
    """Expected experts that at least one of `tokens` tokens routes to, each token picking top_k of `experts`
    (uniform routing: an expert is missed by a token with probability 1 - k/E)."""
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def _gemm(request: PlanRequest, tokens: float, parameters: float, bits: float | None = None, scale: float = 1.0) -> float:
    """One linear of `parameters` weights (on this GPU) over `tokens` tokens: compute or weight read, the larger."""
    gpu = request.gpu
    if bits is None:  # a quantized linear, its GEMMs split between the recipe's formats
        compute = sum(share * 2 * tokens * parameters / (gpu.flops(fmt) * (FP4_GEMM_EFFICIENCY if fmt == "fp4" else GEMM_EFFICIENCY) * scale)
                      for fmt, share in request.mix)
        bits = request.weight_bits
    else:
        compute = 2 * tokens * parameters / (gpu.bf16_flops * GEMM_EFFICIENCY)
    read = parameters * bits / 8 / (gpu.memory_bandwidth * BANDWIDTH_EFFICIENCY)
    return max(compute, read) + (1 - GEMM_OVERLAP) * min(compute, read)


def _allreduce(request: PlanRequest, tokens: float) -> float:
    tp = request.tp
    if tp == 1:
        return 0.0
    message = tokens * request.shape.hidden_size * UNQUANTIZED_BYTES
    return ALLREDUCE_LATENCY_S + 2 * (tp - 1) / tp * message / (request.gpu.nvlink_bandwidth * ALLREDUCE_EFFICIENCY)


def pp_hop(request: PlanRequest, tokens: float) -> float:
    """Sending the tokens' hidden states to the next PP stage."""
    message = tokens * request.shape.hidden_size * UNQUANTIZED_BYTES
    return ALLREDUCE_LATENCY_S + message / (request.gpu.nvlink_bandwidth * ALLREDUCE_EFFICIENCY)


def iteration(request: PlanRequest, decode: float, prefill: float, last_stage: bool = True) -> IterationTime:
    """One iteration of one stage: `decode` sequences at their average context, `prefill` prompt tokens."""
    shape, gpu, tp = request.shape, request.gpu, request.tp
    layers = layers_per_stage(shape, request.pp)
    tokens = decode + prefill
    bandwidth = gpu.memory_bandwidth * BANDWIDTH_EFFICIENCY
    heads = shape.num_heads / tp
    kv_heads = kv_heads_per_rank(shape, tp)

    attention_weights = shape.hidden_size * shape.head_dim * (2 * heads + 2 * kv_heads)
    expert = shape.expert_parameters / tp
    if shape.is_moe:
        touched = distinct_experts(tokens, shape.num_experts, shape.experts_per_token)
        per_expert = tokens * shape.experts_per_token / touched if touched else 0.0
        mlp = touched * _gemm(request, per_expert, expert, scale=MOE_GEMM_SHARE)
    else:
        mlp = _gemm(request, tokens, expert)
    gemm = layers * (_gemm(request, tokens, attention_weights) + mlp)
    if last_stage:  # lm_head, 16-bit, for the decoding sequences and the prompts finishing this iteration
        logits = decode + prefill / request.input_len
        gemm += _gemm(request, logits, shape.vocab_size * shape.hidden_size / tp, bits=8 * UNQUANTIZED_BYTES)

    context = request.input_len + request.output_len / 2  # a decoding sequence's average length
    kv_read = decode * context * 2 * kv_heads * shape.head_dim * request.kv_bytes / bandwidth
    causal = request.input_len / 2  # a prompt token attends to the tokens before it
    prefill_flops = 4 * heads * shape.head_dim * causal * prefill
    attention = layers * (kv_read + prefill_flops / (gpu.bf16_flops * ATTENTION_EFFICIENCY))

    elementwise = layers * tokens * shape.hidden_size * ELEMENTWISE_BYTES_PER_HIDDEN / bandwidth
    allreduce = layers * 2 * _allreduce(request, tokens)
    requests = decode + prefill / request.input_len
    overhead = ITERATION_OVERHEAD_S + SEQUENCE_OVERHEAD_S * requests
    return IterationTime(gemm, attention, elementwise, allreduce, overhead)
