"""What the two TensorRT-LLM backends share: the refusal where TensorRT-LLM is missing, the runtime settings a run
takes (user over the system's tuned entry over the engine's or TensorRT-LLM's defaults), the batched delivery of
answers, the warm-up prompts and the engine figures for result.json.

Nothing here imports tensorrt_llm: each backend imports it lazily, inside its own `start`.
"""
from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from build_engines.toolchain import CONTAINER, TRTLLM_VERSION
from llmkit.config.schema import RunConfig, SystemConfig
from llmkit.config.systems import RuntimeLimits, runtime_limits
from llmkit.errors import UserError
from sut.backends.base import ErrorCallback, TokenBatch, TokenCallback
from sut.backends.latency import LatencyHistogram, p99_ms

if TYPE_CHECKING:
    from tensorrt_llm.bindings.executor import RequestPerfMetrics

WARMUP_PROMPT_TOKENS = 32
WARMUP_NEW_TOKENS = 4
WARMUP_TIMEOUT_S = 600.0
STATS_EVERY_S = 1.0  # how often an instance samples its engine's iteration stats (and checks for a stall)
# At most this many iteration-stats samples are kept per instance (older ones are thinned out).
MAX_SAMPLES = 2048


def require_tensorrt_llm(backend: str) -> None:
    """One sentence, before anything starts, where this Python cannot import tensorrt_llm."""
    if importlib.util.find_spec("tensorrt_llm") is None:
        raise UserError(f"backend={backend} needs TensorRT-LLM {TRTLLM_VERSION} and this Python has no tensorrt_llm "
                        f"package; run llmkit in the TensorRT-LLM container ({CONTAINER}), or choose backend=hf")


def runtime_settings(cfg: RunConfig) -> RuntimeLimits:
    """The backend's runtime limits, else the system's tuned entry's (llmkit.config.systems.runtime_limits)."""
    backend = cfg.backend
    return runtime_limits(cfg, backend.max_batch_size, getattr(backend, "max_num_tokens", None),
                          getattr(backend, "kv_cache_free_gpu_memory_fraction", None))


def layout(system: SystemConfig) -> tuple[int, int, int]:
    """The system's dp, tp and pp, which loading the config fills in (llmkit.config.systems); Optional only in the
    schema, before that."""
    dp, tp, pp = system.dp, system.tp, system.pp
    assert dp is not None and tp is not None and pp is not None, "system.dp, tp and pp are set when the config loads"
    return dp, tp, pp


def device_ids(devices: Sequence[str]) -> list[int]:
    """"cuda:3" -> 3, for each of an instance's devices."""
    if not all(d.startswith("cuda:") for d in devices):
        raise UserError(f"TensorRT-LLM serves on GPUs but this instance was placed on {', '.join(devices)}; choose a "
                        "GPU system")
    return [int(d.partition(":")[2]) for d in devices]


def clear_slurm_environment() -> list[str]:
    """Drop SLURM_* from this process's environment, as NVIDIA's scripts do before the Executor spawns its workers
    (MPI_Comm_spawn from inside a Slurm step fails); returns what was dropped."""
    dropped = [name for name in os.environ if name.startswith("SLURM_")]
    for name in dropped:
        del os.environ[name]
    return dropped


def warmup_prompts(count: int, vocab_size: int, seed: int = 0) -> list[list[int]]:
    """`count` random prompts of ids within the vocabulary (served before loadgen starts, never reported)."""
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.integers(1, max(2, vocab_size), WARMUP_PROMPT_TOKENS)] for _ in range(count)]


def cut_after(ids: Sequence[int], stop: Sequence[int]) -> Sequence[int]:
    """The ids up to and including the first occurrence of the stop sequence (all of them without one)."""
    n = len(stop)
    for end in range(n, len(ids) + 1):
        if ids[end - 1] == stop[-1] and list(ids[end - n:end]) == list(stop):
            return ids[:end]
    return ids


def with_end_id(ids: Sequence[int], end_id: int) -> Sequence[int]:
    """An answer that ended on its end id, with that id: TensorRT-LLM leaves the end token out of the output (finish
    reason END_ID), the kit's answers keep it, as the hf and replay backends' do."""
    return ids if len(ids) and ids[-1] == end_id else [*ids, end_id]


class Deliveries:
    """Answers gathered by an engine thread and handed to the SUT in one call per kind: first tokens, then final
    answers, then errors."""

    def __init__(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback, where: str):
        self._on_first, self._on_final, self._on_error, self._where = on_first, on_final, on_error, where
        self.firsts: list[tuple[int, Sequence[int]]] = []
        self.finals: list[tuple[int, Sequence[int]]] = []
        # (request id, why); None: the whole instance, `why` saying what befell it ("failed: ...", "stalled: ...")
        self.errors: list[tuple[int | None, str]] = []
        self.tokens = 0
        self.requests = 0
        self.answered = 0  # first tokens and final answers handed over so far (a sign of life)
        self.last_final: float | None = None

    def flush(self) -> int:
        """Deliver what was gathered; returns the number of requests finished (answered or failed)."""
        firsts, finals, errors = self.firsts, self.finals, self.errors
        self.firsts, self.finals, self.errors = [], [], []
        self.answered += len(firsts) + len(finals)
        if firsts:
            self._on_first(TokenBatch.from_pairs(firsts))
        if finals:
            batch = TokenBatch.from_pairs(finals)
            self.tokens += int(batch.lengths.sum())
            self.requests += len(batch)
            self.last_final = time.perf_counter()
            self._on_final(batch)
        for request_id, message in errors:
            if request_id is None:  # the whole instance: the message says what happened to it
                self._on_error(None, f"{self._where} {message}")
            else:
                self._on_error(request_id, f"{self._where}: request {request_id} failed: {message}")
        return len(finals) + len(errors)


def stalled_message(quiet_s: float, pending: int, waiting: list[int], timeout_s: float) -> str:
    """What an instance that stalled says (after its name): how long, how many, which requests."""
    waiting = sorted(waiting)
    shown = ", ".join(str(r) for r in waiting[:5]) + (", ..." if len(waiting) > 5 else "")
    return (f"stalled: no response and no iteration for {quiet_s:.1f} s with {pending} requests outstanding "
            f"(requests {shown}); backend.stall_timeout_s={timeout_s:g}")


class EngineLatencies:
    """The engine's own latencies per request, from the runtime's request perf metrics (steady-clock times on the
    final response): TTFT from arrival to first token, TPOT from first to last token over the tokens after the
    first, as MLPerf reckons them. Beside loadgen's, they tell the SUT's share of each."""

    def __init__(self) -> None:
        self.ttft = LatencyHistogram()
        self.tpot = LatencyHistogram()

    def add(self, metrics: RequestPerfMetrics | None, tokens: int) -> None:
        """A final result's `request_perf_metrics` (None: the runtime gave none) for an answer of `tokens`."""
        if metrics is None:
            return
        timing = metrics.timing_metrics
        arrival, first, last = timing.arrival_time, timing.first_token_time, timing.last_token_time
        if first <= arrival:  # no first-token time (a request that ended before producing one)
            return
        self.ttft.add((first - arrival).total_seconds())
        if tokens > 1 and last > first:
            self.tpot.add((last - first).total_seconds() / (tokens - 1))


def delivery_stats(instance: int, deliveries: Deliveries | None, first_submit: float | None,
                   samples: IterationSamples, latencies: EngineLatencies) -> dict[str, object]:
    """An instance's own figures for result.json, its sampled iteration stats and its engine's own latencies
    included (combine_stats merges them over instances)."""
    timed = {"ttft": latencies.ttft, "tpot": latencies.tpot} if latencies.ttft.count else {}
    return {"instance": instance, "tokens": deliveries.tokens if deliveries else 0,
            "requests": deliveries.requests if deliveries else 0, "first_submit": first_submit,
            "last_final": deliveries.last_final if deliveries else None} | samples.summary() | timed


class IterationSamples:
    """The engine's own iteration figures, sampled: KV-cache blocks in use and requests in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kv_blocks_used: list[int] = []
        self.active_requests: list[int] = []
        self.max_kv_blocks: int | None = None
        self.iterations = 0

    def add(self, iteration: dict[str, object]) -> None:
        with self.lock:
            self.iterations += 1
            kv = iteration.get("kvCacheStats")
            if isinstance(kv, dict):
                self.kv_blocks_used.append(int(kv.get("usedNumBlocks", 0)))
                if kv.get("maxNumBlocks") is not None:
                    self.max_kv_blocks = int(kv["maxNumBlocks"])
            active = iteration.get("numActiveRequests")
            if isinstance(active, int):
                self.active_requests.append(active)
            for samples in (self.kv_blocks_used, self.active_requests):
                if len(samples) > MAX_SAMPLES:
                    del samples[::2]

    def summary(self) -> dict[str, object]:
        with self.lock:
            return {"iterations": self.iterations, "max_kv_blocks": self.max_kv_blocks,
                    "kv_blocks_used": list(self.kv_blocks_used), "active_requests": list(self.active_requests)}


def _spread(samples: list[int]) -> dict[str, float] | None:
    if not samples:
        return None
    array = np.asarray(samples, dtype=np.float64)
    return {"mean": round(float(array.mean()), 3), "p99": float(np.percentile(array, 99)), "max": float(array.max())}


def combine_stats(engines: list[dict[str, object]]) -> dict[str, object]:
    """The instances' figures for result.json: tokens, the rate over the whole window, and the sampled KV-cache
    blocks in use and requests in flight (over every instance's samples)."""
    starts = [float(s) for e in engines if isinstance(s := e.get("first_submit"), (int, float))]
    ends = [float(s) for e in engines if isinstance(s := e.get("last_final"), (int, float))]
    tokens = sum(int(e.get("tokens", 0)) for e in engines)  # type: ignore[call-overload]
    span = max(ends) - min(starts) if starts and ends else 0.0
    kv: list[int] = [v for e in engines for v in e.get("kv_blocks_used", [])]  # type: ignore[attr-defined]
    active: list[int] = [v for e in engines for v in e.get("active_requests", [])]  # type: ignore[attr-defined]
    ttft = [h for e in engines if isinstance(h := e.get("ttft"), LatencyHistogram)]
    tpot = [h for e in engines if isinstance(h := e.get("tpot"), LatencyHistogram)]
    return {"tokens": tokens, "requests": sum(int(e.get("requests", 0)) for e in engines),  # type: ignore[call-overload]
            "tokens_per_second": tokens / span if span > 0 else None, "seconds": round(span, 3),
            "iterations": sum(int(e.get("iterations", 0)) for e in engines),  # type: ignore[call-overload]
            "kv_cache_blocks_used": _spread(kv), "requests_in_flight": _spread(active), "instances": len(engines),
            # the engine's own p99s (request perf metrics), None where the runtime gave none
            "ttft_p99_ms": p99_ms(LatencyHistogram.merged(ttft)), "tpot_p99_ms": p99_ms(LatencyHistogram.merged(tpot))}
