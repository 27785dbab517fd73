"""`llmkit bench trtllm-adapter`: what the trtllm backend's poller costs per streamed response, without TensorRT-LLM.

In Server and Interactive the Executor streams one Response per request per engine iteration, so at the 8x H200
mixtral Server load (about 430 queries/s of 145 tokens: 62,000 tokens/s) the pollers take 62,000 Responses a
second, and 620,000 at 10x. This feeds the backend's own response handling (TrtllmBackend._take, then the hand-over
of first tokens and final answers as TokenBatches) with bursts shaped like one engine iteration of one instance at
each load: every active request's next token, of which a few are first tokens and a few are final. The Responses are
small slotted objects standing in for the binding's (nanobind makes its own in C++, at a fraction of this cost to
create; reading their attributes costs about the same). It prints the cost per response, how long a burst takes and
how long after its start its first tokens are handed over (toward loadgen), and the share of one core (one interpreter: the GIL) the pollers need
at each load, for one process hosting every instance (placement=orchestrator) and for one process per instance
(placement=leader under mpirun).
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from llmkit.errors import UserError, exit_on_user_error

MEAN_OUTPUT = 145
TTFT_S, TPOT_S = 0.25, 0.025
MIXTRAL_SERVER_QPS = 430
INSTANCES = 8
# Requests in flight per instance at 1x the load (Little's law: arrival rate x time in the system).
ACTIVE_PER_LOAD = MIXTRAL_SERVER_QPS / INSTANCES * (TTFT_S + (MEAN_OUTPUT - 1) * TPOT_S)


class FinishReason:
    NOT_FINISHED, END_ID, LENGTH = 0, 1, 2


@dataclass(slots=True)
class _Result:
    is_final: bool
    output_token_ids: list[list[int]]
    finish_reasons: list[int]
    request_perf_metrics: None = None  # the timing the backend reads on final results; none here


class _Response:
    __slots__ = ("request_id", "result")

    def __init__(self, request_id: int, result: _Result):
        self.request_id, self.result = request_id, result

    def has_error(self) -> bool:
        return False


def _backend():
    """A TrtllmBackend whose hand-over goes to counting callbacks (nothing else of it is started)."""
    from llmkit.config.backends import TrtllmBackendConfig
    from llmkit.config.schema import DatasetConfig, SystemConfig
    from sut.backends.base import BackendSpec
    from sut.backends.trtllm import TrtllmBackend
    from sut.backends.trtllm_common import Deliveries

    backend = TrtllmBackend(BackendSpec(TrtllmBackendConfig(), SystemConfig(), "mixtral-8x7b", DatasetConfig()))
    delivered: dict = {"first": 0, "final": 0, "first_at": None}

    def count(kind: str):
        def take(batch) -> None:
            delivered[kind] += len(batch)
            if kind == "first" and delivered["first_at"] is None:
                delivered["first_at"] = time.perf_counter()
        return take

    backend._ex = SimpleNamespace(FinishReason=FinishReason)
    backend._deliveries = Deliveries(count("first"), count("final"), lambda *a: None, "bench")
    return backend, delivered


def bursts(load: float, iterations: int, seed: int = 0) -> tuple[list[list[_Response]], int]:
    """One instance's responses per engine iteration at `load` x the published rate, in steady state."""
    rng = np.random.default_rng(seed)
    per_iteration = MIXTRAL_SERVER_QPS * load / INSTANCES * TPOT_S  # new requests per iteration
    active = int(ACTIVE_PER_LOAD * load)
    made = []
    # Each active request is somewhere in its answer; a burst has one token of each, per_iteration of them first
    # and per_iteration of them final.
    for _ in range(iterations):
        firsts = rng.poisson(per_iteration)
        finals = rng.poisson(per_iteration)
        burst = []
        for k in range(active):
            final = k < finals
            burst.append(_Response(0, _Result(final, [[int(k % 30000)]],
                                              [FinishReason.END_ID if final else FinishReason.NOT_FINISHED])))
        rng.shuffle(burst)
        made.append((burst, firsts))
    return made, active


def measure(load: float, iterations: int) -> dict:
    if iterations < 1:
        raise UserError(f"--iterations {iterations} measures nothing; pass 1 or more")
    made, active = bursts(load, iterations)
    if active == 0:
        least = math.ceil(1e4 / ACTIVE_PER_LOAD) / 1e4
        raise UserError(f"--loads {load:g} leaves no request active per instance, so there is nothing to poll; pass "
                        f"loads of at least {least:g}")
    backend, delivered = _backend()
    next_id, times, first_delays = 1, [], []
    for burst, firsts in made:
        # Give each response a request the backend knows: `firsts` new streaming requests, the rest mid-answer.
        backend._ids.clear()
        backend._streamed.clear()
        backend._awaiting_first.clear()
        for position, response in enumerate(burst):
            response.request_id = next_id
            backend._ids[next_id] = (next_id, 2)
            backend._streamed[next_id] = [] if position < firsts else [7]
            if position < firsts:
                backend._awaiting_first.add(next_id)
            next_id += 1
        backend._pending = len(burst)
        delivered["first_at"] = None
        start = time.perf_counter()
        backend._take(burst)
        times.append(time.perf_counter() - start)
        if delivered["first_at"] is not None:
            first_delays.append(delivered["first_at"] - start)
    per_burst = np.asarray(times)
    per_response_us = float(per_burst.sum() / (active * iterations) * 1e6)
    tokens_per_s = MIXTRAL_SERVER_QPS * load * MEAN_OUTPUT  # every instance's
    return {"load": load, "active_per_instance": active, "burst_p50_ms": float(np.percentile(per_burst, 50) * 1e3),
            "burst_p99_ms": float(np.percentile(per_burst, 99) * 1e3), "per_response_us": per_response_us,
            "first_tokens_p99_ms": float(np.percentile(first_delays, 99) * 1e3) if first_delays else None,
            "core_share_one_process": tokens_per_s * per_response_us / 1e6,
            "core_share_per_instance_process": tokens_per_s / INSTANCES * per_response_us / 1e6,
            "firsts": delivered["first"], "finals": delivered["final"]}


def table_row(row: dict) -> list[str]:
    """A measurement as the table shows it ("-": no burst of it had a first token)."""
    firsts = row["first_tokens_p99_ms"]
    return [f"{row['load']:g}x", f"{row['active_per_instance']:,}", f"{row['per_response_us']:.2f}",
            f"{row['burst_p99_ms']:.2f}", "-" if firsts is None else f"{firsts:.3f}",
            f"{row['core_share_one_process']:.2f}", f"{row['core_share_per_instance_process']:.3f}"]


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(prog="llmkit bench trtllm-adapter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: llmkit bench trtllm-adapter --iterations 100")
    parser.add_argument("--iterations", type=int, default=40, help="engine iterations per load (default 40)")
    parser.add_argument("--loads", type=float, nargs="+", default=[1.0, 10.0])
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    table = Table(title="trtllm poller: one instance's streamed responses per engine iteration (8x H200 mixtral "
                        "Server shape)")
    for column in ("load", "active/instance", "µs/response", "burst p99 ms", "firsts out p99 ms",
                   "core, one process", "core, process per instance"):
        table.add_column(column, justify="right")
    for load in args.loads:
        table.add_row(*table_row(measure(load, args.iterations)))
    Console().print(table)


if __name__ == "__main__":
    main()
