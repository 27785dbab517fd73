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

# The efficiency constants: one value each for every GPU, model and setting (no per-run factor). They were set
# within the ranges stated below so that the published runs (tests/unit/test_planner.py, from shared/MLPERF.md
# section 6) come out within 0.8-1.25; the values are rounded.

GEMM_EFFICIENCY = 0.75
"""Share of the dense tensor peak that large BF16/FP8/INT8 GEMMs sustain (compute-bound shapes: thousands of tokens
by thousands of channels). cuBLASLt/CUTLASS FP8 GEMMs measure ~1.4-1.5 PFLOPS of the H100's 1.98 (70-75%) before
the 700 W cap lowers the clock; Hopper and Blackwell alike."""

FP4_GEMM_EFFICIENCY = 0.45
"""Share of the dense FP4 peak that NVFP4 GEMMs sustain. Every 16 elements carry an FP8 block scale the kernel
applies, and the activations are quantized to FP4 with their scales on the fly; TensorRT-LLM's NVFP4 kernels reach
~4-4.5 of the B200's 9 dense PFLOPS at serving shapes, i.e. ~1.2x its FP8 GEMMs rather than the datasheet's 2x."""

MOE_GEMM_FACTOR = 0.6
"""What the expert GEMMs of a mixture of experts reach relative to a dense GEMM of the same format: TensorRT-LLM's
MoE plugin runs grouped GEMMs of E experts with ~T x k / E rows each (uneven: routing is not uniform, tiles of the
less loaded experts run part empty) and permutes, activates and un-permutes the tokens around them."""

BANDWIDTH_EFFICIENCY = 0.75
"""Share of the HBM datasheet bandwidth the memory-bound kernels of a pass reach on average: streaming weight reads
reach ~85-90% (STREAM-like), paged-KV gathers in 32-token blocks and the many small elementwise kernels well less."""

ATTENTION_EFFICIENCY = 0.55
"""Share of the 16-bit tensor peak the context (prefill) FMHA sustains, causal masking included: FlashAttention-class
kernels reach 50-60% of BF16 peak at head_dim 128 on Hopper (FlashAttention-3: ~600 of 989 TFLOPS); Blackwell's
are similar. FP8 context FMHA, where a build enables it, is not credited."""

ELEMENTWISE_BYTES_PER_HIDDEN = 16
"""Bytes each token moves per hidden element per layer outside GEMMs and attention: two RMSNorms (read fp16, write
the quantized GEMM input), two residual adds (read two, write one), RoPE on Q/K; ~8 fp16 reads or writes of the
hidden vector once fused."""

ALLREDUCE_EFFICIENCY = 0.8
"""Share of the per-direction NVLink bandwidth a ring all-reduce sustains: NCCL's measured bus bandwidth on an
8x H100 NVSwitch node is ~360 GB/s of 450; TensorRT-LLM's own all-reduce kernels are similar on large messages."""

ALLREDUCE_LATENCY_S = 10e-6
"""Fixed cost of one all-reduce or PP send (launch, barrier flags, NVSwitch hops): TensorRT-LLM's one-shot and
two-shot kernels take ~5-15 us on small messages at TP 4-8."""

ITERATION_OVERHEAD_S = 4e-3
"""The executor's time per pass outside the GPU's kernels: scheduling, KV block allocation, enqueueing the engine
(no CUDA graphs at these batch sizes), copying sampled tokens back. TensorRT-LLM's C++ executor takes ~3-5 ms per
step with hundreds of active requests, and does not overlap it with the GPU's work."""

SEQUENCE_OVERHEAD_S = 5e-6
"""The executor's time per active request and pass: the decoder's per-request setup, stop checks, KV block
bookkeeping and the response it queues; with thousands of requests (Mixtral on Blackwell) it is tens of ms."""


def gemm_efficiency(compute: str) -> float:
    return FP4_GEMM_EFFICIENCY if compute == "fp4" else GEMM_EFFICIENCY


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


def _gemm(request: PlanRequest, tokens: float, parameters: float, bits: float | None = None,
          scale: float = 1.0) -> float:
    """One linear of `parameters` weights (on this GPU) over `tokens` tokens: compute or weight read, the larger.
    `bits` None: a quantized linear, its GEMMs split between the recipe's formats; else 16-bit (lm_head).
    `scale`: the share of the formats' efficiency it reaches (MOE_GEMM_FACTOR for experts)."""
    gpu = request.gpu
    if bits is None:
        compute = sum(share * 2 * tokens * parameters / (gpu.flops(fmt) * gemm_efficiency(fmt) * scale)
                      for fmt, share in request.mix)
        bits = request.weight_bits
    else:
        compute = 2 * tokens * parameters / (gpu.bf16_flops * GEMM_EFFICIENCY)
    read = parameters * bits / 8 / (gpu.memory_bandwidth * BANDWIDTH_EFFICIENCY)
    return max(compute, read)


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


def iteration(request: PlanRequest, decode: float, prefill: float) -> IterationTime:
    """One pass of one PP stage (the last, the slowest: it adds lm_head): `decode` sequences at their average
    context, `prefill` prompt tokens."""
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
        mlp = touched * _gemm(request, per_expert, expert, scale=MOE_GEMM_FACTOR)
    else:
        mlp = _gemm(request, tokens, expert)
    gemm = layers * (_gemm(request, tokens, attention_weights) + mlp)
    # lm_head, 16-bit, for the decoding sequences and the prompts finishing this pass.
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
