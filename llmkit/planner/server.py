"""Serving a Poisson stream within p99 TTFT and TPOT limits (the Server and Interactive scenarios).

Prompts queue first come, first served for the chunk budget: while one waits, every pass carries max_num_tokens
(the decoding sequences plus a prompt chunk: a "full" pass); otherwise a pass carries only decode steps ("idle").
So the prompt reader is a single queue (M/G/1) whose service time is a prompt's length over the prefill rate of
full passes, and whose utilization rho is the share of time passes are full. Then, at an arrival rate:
- TPOT = the mean pass time a decoding sequence sees: passes are counted, not timed, so the harmonic mix of full
  and idle passes (rho of the time full);
- decoding sequences (Little) = rate x output length x TPOT, at most the batch and what the KV cache holds;
- p99 TTFT = the p99 wait in the queue plus a mean prompt's reading, and no less than reading the p99 prompt
  alone. The wait's tail is M/G/1's exponential one, P(wait > x) ~ C exp(-theta x), theta and C those of
  Cramer-Lundberg (rate (E[exp(theta S)] - 1) = theta), the service times S normal from the prompts' mean and
  spread. With PP the queue drains at the instance's rate, but one prompt is read by one micro-batch, a chunk per
  trip through the pp stages, so its own reading takes pp times longer.
The highest rate meeting both limits is the prediction. Long prompts (405b: 9.4k tokens mean) make the wait grow
fast with load, which is why its Server runs well below Offline while Mixtral's (427 tokens) runs close to it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from llmkit.planner.request import PlanRequest
from llmkit.planner.roofline import IterationTime, iteration, pp_hop

QUANTILE = 0.99  # the rules' target_latency_percentile

P99_TPOT_FACTOR = 1.1
"""p99 over queries of TPOT against the mean pass time: each query's TPOT averages its own passes, so the queries
with short answers that decode through a run of full passes see slower steps; a tenth above the mean."""

NORMAL_P99_Z = 2.326  # the normal distribution's 99th percentile in standard deviations
SEARCH_STEPS = 48  # bisection steps on the arrival rate
FIXED_POINT_STEPS = 60


@dataclass(frozen=True)
class Load:
    """The steady state at one arrival rate."""

    rate: float  # queries per second per instance
    utilization: float  # rho: the share of time passes are full
    decode: float  # sequences decoding per pass (per PP micro-batch), mean
    tpot_ms: float  # mean
    ttft_p99_ms: float
    tokens_per_s_per_gpu: float
    full: IterationTime  # one stage's pass that reads a prompt chunk
    idle: IterationTime  # one stage's pass of decode steps only
    # What stops a higher rate: "ttft", "tpot", "prompt rate", "max_batch_size", "kv cache", "offline capacity".
    limit: str = ""

    def to_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("full", "idle")}
        return {**data, "full": self.full.to_json(), "idle": self.idle.to_json()}


def input_second_moment(request: PlanRequest) -> float:
    """E[prompt length^2], its spread estimated from the p99 as if the tail were normal (the summaries give mean and
    p99, not the variance)."""
    p99 = request.input_p99 or request.max_input_len
    spread = max(0.0, p99 - request.input_len) / NORMAL_P99_Z
    return request.input_len ** 2 + spread ** 2


def decay_rate(rate: float, mean: float, spread: float) -> float:
    """theta > 0 with rate (E[exp(theta S)] - 1) = theta, S normal(mean, spread): the M/G/1 wait's tail decay."""

    def excess(theta: float) -> float:
        return rate * (_mgf(theta, mean, spread) - 1) - theta

    low, high = 0.0, 1.0 / mean
    while excess(high) <= 0:
        low, high = high, 2 * high
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if excess(middle) <= 0 else (low, middle)
    return high


def _wait_quantile(rate: float, rho: float, mean: float, spread: float) -> float:
    """The QUANTILE of the M/G/1 wait: Cramer-Lundberg, P(wait > x) ~ C exp(-theta x) with
    C = (1 - rho) / (rate E[S exp(theta S)] - 1)."""
    tail = 1 - QUANTILE
    if rho <= tail:
        return 0.0
    theta = decay_rate(rate, mean, spread)
    tilted = (mean + theta * spread ** 2) * _mgf(theta, mean, spread)
    scale = min(1.0, (1 - rho) / (rate * tilted - 1))
    return math.log(scale / tail) / theta if scale > tail else 0.0


def _mgf(theta: float, mean: float, spread: float) -> float:
    """E[exp(theta S)] for S normal(mean, spread), its exponent capped short of overflow."""
    return math.exp(min(700.0, theta * mean + (theta * spread) ** 2 / 2))


def load_at(request: PlanRequest, rate: float, batch: int, max_num_tokens: int, kv_sequences: float) -> Load | str:
    """The steady state at `rate` queries/s per instance, or why there is none: "prompt rate" (the prompt queue
    saturates), "max_batch_size" or "kv cache" (the decoding sequences outgrow it)."""
    pp = request.pp
    decode = 0.0
    for _ in range(FIXED_POINT_STEPS):
        budget = max_num_tokens - decode
        if budget <= 0:
            return "prompt rate"
        full = iteration(request, decode, budget)
        idle = iteration(request, decode, 0.0)
        prefill_rate = budget / full.total  # prompt tokens per second per instance while passes are full
        rho = rate * request.input_len / prefill_rate
        if rho >= 1:
            return "prompt rate"
        stage = 1.0 / (rho / full.total + (1 - rho) / idle.total)
        hop = pp_hop(request, decode + budget * rho) if pp > 1 else 0.0
        tpot = pp * (stage + hop)
        updated = rate * request.output_len * tpot / pp
        if updated > batch:
            return "max_batch_size"
        if updated * pp > kv_sequences:
            return "kv cache"
        converged = abs(updated - decode) < 1e-3 * max(1.0, decode)
        decode = updated
        if converged:
            break
    mean_service = request.input_len / prefill_rate
    spread = math.sqrt(max(0.0, input_second_moment(request) - request.input_len ** 2)) / prefill_rate
    wait_p99 = _wait_quantile(rate, rho, mean_service, spread)
    # A prompt is read by one PP micro-batch, a chunk per trip through all pp stages: pp times the pooled time.
    own = pp * mean_service
    alone = pp * (request.input_p99 or request.max_input_len) / prefill_rate
    ttft = max(wait_p99 + own, alone)
    tokens_per_s = rate * request.output_len / request.gpus
    return Load(rate, rho, decode, tpot * 1e3, ttft * 1e3, tokens_per_s, full, idle)


def missed_limit(request: PlanRequest, load: Load | str) -> str:
    """The limit a steady state misses ("" when it meets them): its overload reason, "ttft" or "tpot"."""
    if isinstance(load, str):
        return load
    if request.ttft_limit_ms is not None and load.ttft_p99_ms > request.ttft_limit_ms:
        return "ttft"
    if request.tpot_limit_ms is not None and P99_TPOT_FACTOR * load.tpot_ms > request.tpot_limit_ms:
        return "tpot"
    return ""


def max_load(request: PlanRequest, batch: int, max_num_tokens: int, kv_sequences: float,
             ceiling_rate: float) -> Load | None:
    """The highest arrival rate (up to ceiling_rate) whose steady state meets the latency limits; None when even a
    trickle misses them (a p99 prompt alone takes too long)."""
    low, high = 0.0, ceiling_rate
    best, limit = None, "offline capacity"
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        load = load_at(request, middle, batch, max_num_tokens, kv_sequences)
        missed = missed_limit(request, load)
        if missed:
            high, limit = middle, missed
        else:
            low, best = middle, load
    return replace(best, limit=limit) if best is not None else None
