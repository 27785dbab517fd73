"""Serving a Poisson stream within p99 TTFT and TPOT limits (the Server and Interactive scenarios).

Prompts queue first come, first served for the chunk budget: while one waits, every pass carries max_num_tokens
(the decoding sequences plus a prompt chunk: a "full" pass); otherwise a pass carries only decode steps ("idle").
So the prompt reader is a single queue (M/G/1) whose service time is a prompt's length over the prefill rate of
full passes, and whose utilization rho is the share of time passes are full. Then, at an arrival rate:
- TPOT = the mean pass time a decoding sequence sees: passes are counted, not timed, so the harmonic mix of full
  and idle passes (rho of the time full);
- decoding sequences (Little) = rate x output length x TPOT, at most the batch and what the KV cache holds;
- p99 TTFT = the p99 wait in the queue plus a mean prompt's reading, and no less than reading the p99 prompt
  alone. The wait's tail is M/G/1's exponential one, P(wait > x) ~ rho exp(-theta x), theta the decay rate of
  Cramer-Lundberg (rate (E[exp(theta S)] - 1) = theta), service times S normal from the prompts' mean and spread.
The highest rate meeting both limits is the prediction. Long prompts (405b: 9.4k tokens mean) make the wait grow
fast with load, which is why its Server runs well below Offline while Mixtral's (427 tokens) runs close to it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
        return rate * (math.exp(theta * mean + (theta * spread) ** 2 / 2) - 1) - theta

    low, high = 0.0, 1.0 / mean
    while excess(high) <= 0:
        low, high = high, 2 * high
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if excess(middle) <= 0 else (low, middle)
    return high


def load_at(request: PlanRequest, rate: float, batch: int, max_num_tokens: int, kv_sequences: float) -> Load | None:
    """The steady state at `rate` queries/s per instance; None when the instance cannot keep up (the prompt queue
    saturates, or the decoding sequences outgrow the batch or the KV cache)."""
    pp = request.pp
    decode = 0.0
    for _ in range(FIXED_POINT_STEPS):
        budget = max_num_tokens - decode
        if budget <= 0:
            return None
        full = iteration(request, decode, budget)
        idle = iteration(request, decode, 0.0)
        prefill_rate = budget / full.total  # prompt tokens per second per instance while passes are full
        rho = rate * request.input_len / prefill_rate
        if rho >= 1:
            return None
        stage = 1.0 / (rho / full.total + (1 - rho) / idle.total)
        hop = pp_hop(request, decode + budget * rho) if pp > 1 else 0.0
        tpot = pp * (stage + hop)
        updated = rate * request.output_len * tpot / pp
        if updated > batch or updated * pp > kv_sequences:
            return None
        converged = abs(updated - decode) < 1e-3 * max(1.0, decode)
        decode = updated
        if converged:
            break
    mean_service = request.input_len / prefill_rate
    spread = math.sqrt(max(0.0, input_second_moment(request) - request.input_len ** 2)) / prefill_rate
    tail = 1 - QUANTILE
    theta = decay_rate(rate, mean_service, spread)
    # Cramer-Lundberg: P(wait > x) ~ C exp(-theta x), C = (1 - rho) / (rate E[S exp(theta S)] - 1).
    tilted = (mean_service + theta * spread ** 2) * math.exp(theta * mean_service + (theta * spread) ** 2 / 2)
    scale = min(1.0, (1 - rho) / (rate * tilted - 1))
    wait_p99 = math.log(scale / tail) / theta if scale > tail else 0.0
    alone = (request.input_p99 or request.max_input_len) / prefill_rate
    pipeline = (pp - 1) * (full.total + hop)
    ttft = max(wait_p99 + mean_service, alone) + pipeline
    tokens_per_s = rate * request.output_len / request.gpus
    return Load(rate, rho, decode, tpot * 1e3, ttft * 1e3, tokens_per_s, full, idle)


def meets_limits(request: PlanRequest, load: Load | None) -> bool:
    if load is None:
        return False
    tpot_ok = request.tpot_limit_ms is None or P99_TPOT_FACTOR * load.tpot_ms <= request.tpot_limit_ms
    ttft_ok = request.ttft_limit_ms is None or load.ttft_p99_ms <= request.ttft_limit_ms
    return tpot_ok and ttft_ok


def max_load(request: PlanRequest, batch: int, max_num_tokens: int, kv_sequences: float,
             ceiling_rate: float) -> Load | None:
    """The highest arrival rate (up to ceiling_rate) whose steady state meets the latency limits; None when even a
    trickle misses them (a p99 prompt alone takes too long)."""
    low, high = 0.0, ceiling_rate
    best = None
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        load = load_at(request, middle, batch, max_num_tokens, kv_sequences)
        if meets_limits(request, load):
            low, best = middle, load
        else:
            high = middle
    return best
