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


def loadgen_responses(payloads: list[tuple[int, np.ndarray]]) -> tuple[list, np.ndarray]:
    """QuerySampleResponses for a batch, pointing into one contiguous int32 buffer that the caller keeps alive.

    Taking one pointer for the batch instead of one per answer (ndarray.ctypes is slow) roughly halves the cost of
    answering loadgen.
    """
    import mlperf_loadgen as lg

    if len(payloads) == 1:
        request_id, ids = payloads[0]
        return [lg.QuerySampleResponse(request_id, ids.ctypes.data, ids.nbytes, ids.size)], ids
    buffer = np.concatenate([ids for _, ids in payloads])
    sizes = np.fromiter((ids.size for _, ids in payloads), dtype=np.int64, count=len(payloads))
    offsets = np.zeros_like(sizes)
    np.cumsum(sizes[:-1], out=offsets[1:])
    pointers = (buffer.ctypes.data + offsets * buffer.itemsize).tolist()
    return [lg.QuerySampleResponse(request_id, pointer, 4 * n, n)
            for (request_id, _), pointer, n in zip(payloads, pointers, sizes.tolist())], buffer


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
        prompts, stops, streaming = self.dataset.prompts, self.dataset.stop_sequences, self.streaming
        max_new, min_new, eos_ids = self.max_new_tokens, self.benchmark.min_new_tokens, self.benchmark.eos_ids
        with self._lock:
            for sample in samples:
                self._queries[sample.id] = QueryTokens(self.streaming, self.eos_ids)
                index = sample.index
                requests.append(GenerationRequest(sample.id, prompts[index], max_new, min_new, eos_ids,
                                                  stops[index], streaming, index))
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
        responses, _buffer = loadgen_responses(payloads)  # the buffer must outlive the call
        lg.FirstTokenComplete(responses)

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
        responses, _buffer = loadgen_responses(payloads)  # the buffer must outlive the call
        lg.QuerySamplesComplete(responses)
        if self.progress is not None:
            self.progress.update(len(payloads))

    def on_error(self, request_id: int | None, message: str) -> None:
        self._fatal(f"backend failed: {message}")

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)
