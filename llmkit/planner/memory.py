"""What one GPU of a serving instance holds: its share of the weights, the engine's activations, the runtime, and the
KV cache TensorRT-LLM gives the rest; whether a topology fits at all, and the smallest one that does.

Where TensorRT-LLM puts the weights: every layer's linear weights are split over the TP ranks (attention by heads,
the MLP and each expert by FFN width; a MoE GPU holds every expert's slice), whole layers over the PP stages; KV
heads are replicated when tp exceeds them. The embedding lives on the first PP stage and lm_head on the last, both
split by TP and kept in 16 bits (recipes exclude lm_head). The worst GPU is an end stage.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from llmkit.errors import UserError
from llmkit.models.dims import ModelShape
from llmkit.models.shape import check_topology
from llmkit.planner.request import PlanRequest

GIB = 2**30
UNQUANTIZED_BYTES = 2  # fp16/bf16: embeddings, lm_head, norms, the MoE router
ACTIVATION_BYTES = 2  # the engine's activations are fp16/bf16
# The CUDA context, cuBLAS/NCCL workspaces, TensorRT-LLM's per-request runtime buffers and the all-reduce workspace:
# ~0.5 GiB of context, ~1 GiB of NCCL and custom all-reduce buffers at TP 8, the rest decoder state. TensorRT-LLM
# measures free memory after these, so they come off before kv_fraction applies.
RUNTIME_BYTES = 3 * GIB
# Live fp16 vectors of hidden size per token in an engine's activation buffers (residual, normed input, attention
# output, QKV, the MoE's permuted copies): TensorRT's allocator reuses buffers, so a handful, not every tensor.
ACTIVATION_HIDDEN_VECTORS = 8


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per GPU (the worst GPU of the instance) and the KV cache it leaves."""

    capacity: float
    weights: float
    activations: float
    runtime: float
    kv_cache: float  # what the KV cache takes: kv_fraction of the free memory
    unused: float  # the free memory kv_fraction leaves
    kv_bytes_per_token: float  # per GPU: its stage's layers, its KV heads
    kv_tokens: int  # the cache's capacity, whole blocks

    @property
    def fits(self) -> bool:
        return self.capacity - self.weights - self.activations - self.runtime > 0

    def to_json(self) -> dict:
        return {**asdict(self), "fits": self.fits}


def kv_heads_per_rank(shape: ModelShape, tp: int) -> int:
    """KV heads on one TP rank: split when tp divides them, else each rank keeps a copy of one."""
    return max(1, shape.num_kv_heads // tp)


def layers_per_stage(shape: ModelShape, pp: int) -> int:
    return math.ceil(shape.num_layers / pp)


def linear_parameters_per_layer(shape: ModelShape, tp: int) -> float:
    """One layer's linear weights on one TP rank (all experts of a MoE)."""
    attention = shape.hidden_size * shape.head_dim * (2 * shape.num_heads / tp + 2 * kv_heads_per_rank(shape, tp))
    experts = max(1, shape.num_experts)
    return attention + experts * shape.expert_parameters / tp


def weight_bytes(request: PlanRequest) -> float:
    """The weights on the worst GPU: its stage's layers plus the embedding (first stage) and lm_head (last)."""
    shape, tp = request.shape, request.tp
    per_layer = linear_parameters_per_layer(shape, tp) * request.weight_bits / 8
    per_layer += (2 * shape.hidden_size + shape.hidden_size * shape.num_experts) * UNQUANTIZED_BYTES
    table = shape.vocab_size * shape.hidden_size / tp * UNQUANTIZED_BYTES  # embedding or lm_head, one TP slice
    ends = 2 * table if request.pp == 1 else table
    return layers_per_stage(shape, request.pp) * per_layer + ends + shape.hidden_size * UNQUANTIZED_BYTES


def activation_bytes(request: PlanRequest, max_batch_size: int, max_num_tokens: int) -> float:
    """The engine's activation buffers, sized by its max_num_tokens (the tokens of one iteration): a few hidden-size
    vectors, the FFN's gate and up outputs for each routed expert, and fp32 logits for the batch."""
    shape, tp = request.shape, request.tp
    routed = max(1, shape.experts_per_token)
    per_token = (ACTIVATION_HIDDEN_VECTORS * shape.hidden_size + 2 * routed * shape.intermediate_size / tp)
    logits = max_batch_size * shape.vocab_size / tp * 4
    return max_num_tokens * per_token * ACTIVATION_BYTES + logits


def kv_bytes_per_token(request: PlanRequest) -> float:
    """K and V of one token on one GPU: its stage's layers x its KV heads x head_dim x bytes per element."""
    shape = request.shape
    return (2 * layers_per_stage(shape, request.pp) * kv_heads_per_rank(shape, request.tp) * shape.head_dim
            * request.kv_bytes)


def breakdown(request: PlanRequest, max_batch_size: int, max_num_tokens: int) -> MemoryBreakdown:
    capacity = float(request.gpu.memory_bytes)
    weights = weight_bytes(request)
    activations = activation_bytes(request, max_batch_size, request.engine_max_num_tokens or max_num_tokens)
    free = max(0.0, capacity - weights - activations - RUNTIME_BYTES)
    per_token = kv_bytes_per_token(request)
    block = request.tokens_per_block
    tokens = int(request.kv_fraction * free / per_token) // block * block
    kv_cache = tokens * per_token
    return MemoryBreakdown(capacity, weights, activations, RUNTIME_BYTES, kv_cache, free - kv_cache, per_token, tokens)


def sequence_footprint(request: PlanRequest) -> float:
    """KV tokens one running sequence holds on average: its prompt, half its answer (it grows from none to all of it
    while it decodes) and half a block (the partly filled last block of a paged cache)."""
    return request.input_len + request.output_len / 2 + request.tokens_per_block / 2


def kv_batch(request: PlanRequest, memory: MemoryBreakdown) -> int:
    """The most sequences of the dataset's lengths the KV cache holds at once (over all PP micro-batches)."""
    return int(memory.kv_tokens / sequence_footprint(request))


def need_for_one_sequence(request: PlanRequest, max_batch_size: int, max_num_tokens: int) -> float:
    """Bytes per GPU to serve at all: weights, activations, runtime and the KV blocks of one longest sequence."""
    block = request.tokens_per_block
    blocks = math.ceil(request.max_seq_len / block)
    kv = blocks * block * kv_bytes_per_token(request) / request.kv_fraction
    engine_tokens = request.engine_max_num_tokens or max_num_tokens
    return weight_bytes(request) + activation_bytes(request, max_batch_size, engine_tokens) + RUNTIME_BYTES + kv


def _valid(shape: ModelShape, tp: int, pp: int) -> bool:
    try:
        check_topology(shape, tp, pp)
    except UserError:
        return False
    return True


def topologies(request: PlanRequest, max_gpus: int) -> list[tuple[int, int]]:
    """(tp, pp) pairs TensorRT-LLM can split this model into and a system can pack: tp a power of two dividing the
    heads, within a node; pp dividing the layers; tp x pp dividing a node's GPUs or a multiple of them (no GPU
    left idle), at most max_gpus. Fewest GPUs first, then the least PP (TP serves latency)."""
    shape, node = request.shape, request.gpus_per_node
    pairs = []
    tp = 1
    while tp <= min(shape.num_heads, node):
        for pp in range(1, shape.num_layers + 1):
            gpus = tp * pp
            packs = node % gpus == 0 or gpus % node == 0
            if gpus <= max_gpus and packs and shape.num_layers % pp == 0 and _valid(shape, tp, pp):
                pairs.append((tp, pp))
        tp *= 2
    return sorted(pairs, key=lambda pair: (pair[0] * pair[1], pair[1]))


def smallest_fitting_topology(request: PlanRequest, max_gpus: int | None = None,
                              max_batch_size: int = 1, max_num_tokens: int | None = None) -> tuple[int, int] | None:
    """The fewest GPUs (tp, pp) whose worst GPU holds the weights and one longest sequence; None when none within
    max_gpus (default: a node, or the whole system when it is larger)."""
    from dataclasses import replace

    limit = max_gpus or max(request.gpus_per_node, request.gpus * request.instances)
    tokens = max_num_tokens or request.max_num_tokens or request.max_input_len
    for tp, pp in topologies(request, limit):
        candidate = replace(request, tp=tp, pp=pp)
        if need_for_one_sequence(candidate, max_batch_size, tokens) <= candidate.gpu.memory_bytes:
            return tp, pp
    return None


def check_fits(request: PlanRequest, max_batch_size: int = 1, max_num_tokens: int | None = None,
               max_gpus: int | None = None) -> None:
    """UserError, in one sentence with the fix, when one GPU of the instance cannot hold its weights, the engine and
    one longest sequence's KV cache."""
    tokens = max_num_tokens or request.max_num_tokens or request.max_input_len
    need = need_for_one_sequence(request, max_batch_size, tokens)
    capacity = request.gpu.memory_bytes
    if need <= capacity:
        return
    better = smallest_fitting_topology(request, max_gpus, max_batch_size, tokens)
    fix = (f"use system.tp={better[0]} system.pp={better[1]} or more GPUs" if better else
           "use a smaller precision (fewer weight bits) or more GPUs per instance")
    raise UserError(f"{request.label} needs {need / GIB:.0f} GiB per GPU for weights, engine and one "
                    f"{request.max_seq_len}-token sequence on tp {request.tp} x pp {request.pp} of {request.gpu.name} "
                    f"({capacity / GIB:.0f} GiB); {fix}")
