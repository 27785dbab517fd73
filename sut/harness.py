"""The loadgen bridge: QSL over the dataset, issued queries into the dispatcher, answers back to loadgen.

Loadgen's fast SUT interface hands over ids and sample indices as two lists, and each batch of answers goes back
in one call, checked by the token ledger with array operations: the only Python work per query is the response
object loadgen's binding requires. No lock is held across a loadgen call.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from llmkit.benchmarks import Benchmark, Scenario
from llmkit.data.datasets import Dataset
from sut.backends.base import RequestBatch
from sut.tokens import SMALL_BATCH, TokenAccountingError, TokenBatch, TokenLedger

log = logging.getLogger(__name__)


def loadgen_responses(loadgen_ids: list[int], tokens: TokenBatch, lengths: np.ndarray) -> list:
    """QuerySampleResponses pointing into the batch's buffer (keep `tokens` alive until loadgen returns)."""
    import mlperf_loadgen as lg

    itemsize = tokens.buffer.itemsize
    if len(loadgen_ids) < SMALL_BATCH:  # plain Python beats numpy's fixed cost per call here
        address = tokens.address
        return [lg.QuerySampleResponse(i, address + start * itemsize, n * itemsize, n)
                for i, start, n in zip(loadgen_ids, tokens.starts.tolist(), lengths.tolist())]
    return list(map(lg.QuerySampleResponse, loadgen_ids, tokens.pointers().tolist(), (lengths * itemsize).tolist(),
                    lengths.tolist()))


class Harness:
    def __init__(self, dataset: Dataset, benchmark: Benchmark, scenario: Scenario, max_new_tokens: int,
                 submit: Callable[[RequestBatch], None], fatal: Callable[[str], None]):
        self.dataset = dataset
        self.benchmark = benchmark
        self.streaming = scenario.streams_first_token
        self.max_new_tokens = max_new_tokens
        self._submit = submit
        self._fatal = fatal
        self.progress = None  # a tqdm bar, set when loadgen starts
        self._ledger = TokenLedger(self.streaming, benchmark.eos_ids)
        self._lock = threading.Lock()
        self.completed = 0
        self.output_tokens = 0
        self._idle = threading.Event()
        self._idle.set()

    # loadgen callbacks (the fast SUT interface) ------------------------------------------------------
    def issue_queries(self, loadgen_ids: list[int], sample_indices: list[int]) -> None:
        with self._lock:
            request_ids = self._ledger.issue(loadgen_ids)
            self._idle.clear()
        self._submit(RequestBatch(
            request_ids, np.array(sample_indices, dtype=np.int64), self.dataset.prompts, self.dataset.stop_sequences,
            self.max_new_tokens, self.benchmark.min_new_tokens, self.benchmark.eos_ids, self.streaming,
        ))

    def flush_queries(self) -> None:
        pass

    # backend callbacks -------------------------------------------------------------------------------
    def on_first(self, tokens: TokenBatch) -> None:
        import mlperf_loadgen as lg

        try:
            with self._lock:
                loadgen_ids = self._ledger.first(tokens)
        except TokenAccountingError as error:
            self._fatal(f"token accounting failed: {error}")
            return
        lg.FirstTokenComplete(loadgen_responses(loadgen_ids, tokens, tokens.lengths))

    def on_final(self, tokens: TokenBatch) -> None:
        import mlperf_loadgen as lg

        try:
            with self._lock:
                loadgen_ids, lengths = self._ledger.final(tokens)
                self.completed += len(tokens)
                self.output_tokens += int(lengths.sum())
                if not self._ledger.outstanding:
                    self._idle.set()
        except TokenAccountingError as error:
            self._fatal(f"token accounting failed: {error}")
            return
        lg.QuerySamplesComplete(loadgen_responses(loadgen_ids, tokens, lengths))
        if self.progress is not None:
            self.progress.update(len(tokens))

    def on_error(self, request_id: int | None, message: str) -> None:
        self._fatal(f"backend failed: {message}")

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)
