"""The loadgen bridge: QSL over the dataset, issue_queries into the dispatcher, responses back to loadgen.

The hot path reacts to two events per query (first tokens, final tokens); no lock is held across a loadgen call.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from llmkit.benchmarks import Benchmark, Scenario
from llmkit.data.datasets import Dataset
from sut.backends.base import GenerationRequest
from sut.tokens import QueryTokens, TokenAccountingError

log = logging.getLogger(__name__)


class Harness:
    def __init__(self, dataset: Dataset, benchmark: Benchmark, scenario: Scenario, max_new_tokens: int,
                 submit: Callable[[list[GenerationRequest]], None], fatal: Callable[[str], None]):
        self.dataset = dataset
        self.benchmark = benchmark
        self.streaming = scenario.streams_first_token
        self.max_new_tokens = max_new_tokens
        self.eos_ids = frozenset(benchmark.eos_ids)
        self._submit = submit
        self._fatal = fatal
        self.progress = None  # a tqdm bar, set when loadgen starts
        self._queries: dict[int, QueryTokens] = {}
        self._lock = threading.Lock()
        self.completed = 0
        self.output_tokens = 0
        self._idle = threading.Event()
        self._idle.set()

    # loadgen callbacks -------------------------------------------------------------------------------
    def issue_queries(self, samples) -> None:
        requests = []
        with self._lock:
            for sample in samples:
                self._queries[sample.id] = QueryTokens(self.streaming, self.eos_ids)
                requests.append(GenerationRequest(
                    request_id=sample.id,
                    prompt=self.dataset.prompts[sample.index],
                    max_new_tokens=self.max_new_tokens,
                    min_new_tokens=self.benchmark.min_new_tokens,
                    eos_ids=self.benchmark.eos_ids,
                    stop_sequence=self.dataset.stop_sequences[sample.index],
                    stream=self.streaming,
                    sample_index=sample.index,
                ))
            self._idle.clear()
        self._submit(requests)

    def flush_queries(self) -> None:
        pass

    # backend callbacks: batches of (request id, token ids) -------------------------------------------
    def on_first(self, events) -> None:
        import mlperf_loadgen as lg

        payloads = []
        try:
            with self._lock:
                for request_id, ids in events:
                    payloads.append((request_id, self._queries[request_id].first(ids)))
        except (TokenAccountingError, KeyError) as error:
            self._fatal(f"token accounting failed: {error!r}")
            return
        lg.FirstTokenComplete([lg.QuerySampleResponse(rid, ids.ctypes.data, ids.nbytes, ids.size)
                               for rid, ids in payloads])

    def on_final(self, events) -> None:
        import mlperf_loadgen as lg

        payloads = []
        try:
            with self._lock:
                for request_id, ids in events:
                    final = self._queries.pop(request_id).final(ids)
                    payloads.append((request_id, final))
                    self.output_tokens += final.size
                self.completed += len(payloads)
                if not self._queries:
                    self._idle.set()
        except (TokenAccountingError, KeyError) as error:
            self._fatal(f"token accounting failed: {error!r}")
            return
        lg.QuerySamplesComplete([lg.QuerySampleResponse(rid, ids.ctypes.data, ids.nbytes, ids.size)
                                 for rid, ids in payloads])
        if self.progress is not None:
            self.progress.update(len(payloads))

    def on_error(self, request_id: int | None, message: str) -> None:
        self._fatal(f"backend failed: {message}")

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)
