"""The plan: how many sequences fit, how fast they run, what to configure; and the throughput/latency curve.

Steady state of inflight batching: every iteration decodes one token for each running sequence (per PP
micro-batch: `batch` of them) and reads prompt chunks; for the prompts to keep up with the answers, each iteration
carries ISL/OSL prompt tokens per decoding sequence, so (1 + ISL/OSL) x batch tokens per iteration. max_num_tokens
caps that, and with it the batch that can stay busy (MLPERF.md section 6's tuning rule is the same balance).
Output tokens per second = batch / iteration time per instance; TPOT = the time between a sequence's iterations
(pp stages). Server and Interactive: the highest Poisson load within the latency limits (server.py).

Batch here is TensorRT-LLM's max_batch_size: the sequences of one engine pass, i.e. of one PP micro-batch; the
instance runs pp of them at once, so it holds pp x batch sequences.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from llmkit.planner.memory import MemoryBreakdown, breakdown, check_fits, kv_batch
from llmkit.planner.request import PlanRequest
from llmkit.planner.roofline import IterationTime, iteration, pp_hop
from llmkit.planner.server import Load, max_load

MAX_NUM_TOKENS_STEP = 512  # recommended max_num_tokens are rounded up to this
CURVE_POINTS = 16


@dataclass(frozen=True)
class Point:
    """The steady state at one batch."""

    batch: int  # sequences per engine pass (PP micro-batch)
    max_num_tokens: int
    decode: float  # sequences decoding per pass, after max_num_tokens
    prefill: float  # prompt tokens per pass
    iteration: IterationTime  # one stage's
    tokens_per_s_per_gpu: float
    tpot_ms: float  # mean time between a sequence's tokens

    def to_json(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "iteration"}, "iteration": self.iteration.to_json()}


@dataclass(frozen=True)
class Plan:
    request: PlanRequest
    memory: MemoryBreakdown
    kv_batch: int  # sequences per engine pass the KV cache holds at the dataset's lengths
    batch: int  # the batch predicted
    batch_limit: str  # what bounds it: "kv cache", "max_batch_size", "max_num_tokens", "tpot", "ttft"
    max_num_tokens: int  # the one predicted
    offline: Point  # the most the instance does: the saturated steady state
    server: Load | None  # Server/Interactive: the highest Poisson load within the latency limits
    recommended_batch: int
    recommended_max_num_tokens: int
    curve: tuple[Point, ...]

    @property
    def tokens_per_s_per_gpu(self) -> float:
        """The scenario's prediction: Offline's saturated rate, else the highest within the latency limits (0 when
        none meets them)."""
        if self.request.tpot_limit_ms is None and self.request.ttft_limit_ms is None:
            return self.offline.tokens_per_s_per_gpu
        return self.server.tokens_per_s_per_gpu if self.server else 0.0

    @property
    def tpot_ms(self) -> float:
        """Mean TPOT of the prediction (Server: at its load; Offline: saturated)."""
        return self.server.tpot_ms if self.server else self.offline.tpot_ms

    @property
    def ttft_ms(self) -> float | None:
        """p99 TTFT estimate of a Server/Interactive prediction (Offline has none)."""
        return self.server.ttft_p99_ms if self.server else None

    @property
    def tokens_per_s(self) -> float:
        """The whole system's: every instance's GPUs."""
        return self.tokens_per_s_per_gpu * self.request.gpus * self.request.instances

    def to_json(self) -> dict:
        r = self.request
        request = {"model": r.model, "gpu": r.gpu.name, "precision": r.precision, "compute": r.compute,
                   "compute_mix": [list(item) for item in r.mix], "weight_bits": r.weight_bits,
                   "kv_bytes": r.kv_bytes, "tp": r.tp, "pp": r.pp, "instances": r.instances,
                   "kv_fraction": r.kv_fraction, "input_len": r.input_len, "output_len": r.output_len,
                   "max_input_len": r.max_input_len, "max_seq_len": r.max_seq_len,
                   "max_batch_size": r.max_batch_size, "max_num_tokens": r.max_num_tokens,
                   "ttft_limit_ms": r.ttft_limit_ms, "tpot_limit_ms": r.tpot_limit_ms, "scenario": r.scenario}
        return {"request": request, "memory": self.memory.to_json(), "kv_batch": self.kv_batch, "batch": self.batch,
                "batch_limit": self.batch_limit, "max_num_tokens": self.max_num_tokens,
                "offline": self.offline.to_json(),
                "server": self.server.to_json() if self.server else None, "tpot_ms": self.tpot_ms,
                "ttft_ms": self.ttft_ms,
                "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu, "tokens_per_s": self.tokens_per_s,
                "recommended_batch": self.recommended_batch,
                "recommended_max_num_tokens": self.recommended_max_num_tokens,
                "curve": [p.to_json() for p in self.curve]}


def tokens_per_iteration(request: PlanRequest, batch: float) -> float:
    """Tokens one pass carries when its prompts keep pace with `batch` decoding sequences."""
    return batch * (1 + request.input_len / request.output_len)


def recommended_max_num_tokens(request: PlanRequest, batch: int) -> int:
    """max_num_tokens ~ (1 + ISL/OSL) x batch, rounded up to MAX_NUM_TOKENS_STEP, and room for one longest prompt's
    chunk no smaller than a step."""
    return max(MAX_NUM_TOKENS_STEP, math.ceil(tokens_per_iteration(request, batch) / MAX_NUM_TOKENS_STEP)
               * MAX_NUM_TOKENS_STEP)


def point(request: PlanRequest, batch: int, max_num_tokens: int) -> Point:
    """The steady state of `batch` sequences per pass under a max_num_tokens budget."""
    ratio = request.input_len / request.output_len
    decode = min(float(batch), max_num_tokens / (1 + ratio))
    prefill = decode * ratio
    stage = iteration(request, decode, prefill)
    pp = request.pp
    hop = pp_hop(request, decode + prefill) if pp > 1 else 0.0
    tokens_per_s = decode / stage.total / request.gpus
    tpot = pp * (stage.total + hop)
    return Point(batch, max_num_tokens, decode, prefill, stage, tokens_per_s, tpot * 1e3)


def curve_batches(largest: int, points: int = CURVE_POINTS) -> list[int]:
    """A geometric range of batches from 1 to `largest`."""
    if largest <= 1:
        return [1]
    ratio = largest ** (1 / (points - 1))
    return sorted({max(1, round(ratio ** i)) for i in range(points)} | {largest})


def plan(request: PlanRequest) -> Plan:
    """Check the instance fits, then size the batch and predict its throughput and latencies."""
    engine_batch = request.max_batch_size or 1
    check_fits(request, engine_batch, request.max_num_tokens)

    def budget(batch: int) -> int:
        return request.max_num_tokens or recommended_max_num_tokens(request, batch)

    # The KV cache depends on the engine's activations, which depend on the batch and budget: size it at the
    # configured ones, or at the KV-filling batch found from a first pass.
    first = breakdown(request, engine_batch, budget(engine_batch))
    fitting = max(1, kv_batch(request, first) // request.pp)
    engine_batch = request.max_batch_size or fitting
    memory = breakdown(request, engine_batch, budget(engine_batch))
    sequences = kv_batch(request, memory)
    fitting = max(1, sequences // request.pp)

    limits = {"kv cache": fitting}
    if request.max_batch_size:
        limits["max_batch_size"] = request.max_batch_size
    if request.max_num_tokens:
        limits["max_num_tokens"] = max(1, int(request.max_num_tokens / (1 + request.input_len / request.output_len)))
    limit, batch = min(limits.items(), key=lambda item: item[1])
    offline = point(request, batch, budget(batch))
    load, cap = None, batch
    if request.tpot_limit_ms is not None or request.ttft_limit_ms is not None:
        # No higher than Offline's rate: the queue model does not hold the prompts' KV while they are read.
        ceiling = offline.tokens_per_s_per_gpu * request.gpus / request.output_len
        cap = request.max_batch_size or fitting
        load = max_load(request, cap, budget(cap), sequences, ceiling)
    if load is not None:  # the batch the stream needs, and the chunk budget its TTFT was planned with
        recommended, recommended_tokens = server_batch(load), budget(cap)
    else:
        recommended = batch
        recommended_tokens = recommended_max_num_tokens(request, recommended)
    curve = tuple(point(request, b, budget(b)) for b in curve_batches(fitting))
    return Plan(request, memory, fitting, batch, limit, budget(batch), offline, load, recommended,
                recommended_tokens, curve)


def server_batch(load: Load) -> int:
    """A batch that holds the Poisson stream's decoding sequences (mean plus three standard deviations), rounded
    up to a multiple of 8."""
    need = load.decode + 3 * math.sqrt(load.decode)
    return max(8, math.ceil(need / 8) * 8)
