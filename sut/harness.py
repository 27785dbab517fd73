"""The loadgen bridge, in two halves built in dependency order: Answers (backend callbacks -> loadgen), then, once the
backends and the dispatcher exist, Queries (loadgen's issued queries -> the dispatcher).

Loadgen's fast SUT interface hands over ids and sample indices as two lists, and each batch of answers goes back in
one call, checked by the token ledger with array operations: the only Python work per query is the response object
loadgen's binding requires. No lock is held across a loadgen call.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from llmkit.benchmarks import Benchmark
from llmkit.data.datasets import Dataset
from sut.backends.base import RequestBatch, TokenAccountingError, TokenBatch
from sut.ledger import TokenLedger

log = logging.getLogger(__name__)
# Below this many answers, plain Python builds loadgen's responses faster than numpy's fixed cost per call: about
# the same warm, 30-70 us less for 8-64 answers right after a poller wakes (numpy's calls are cold then).
PLAIN_RESPONSES_BELOW = 64


def loadgen_responses(loadgen_ids: list[int], tokens: TokenBatch, lengths: np.ndarray) -> list:
    """QuerySampleResponses pointing into the batch's buffer (keep `tokens` alive until loadgen returns)."""
    import mlperf_loadgen as lg

    itemsize = tokens.buffer.itemsize
    if len(loadgen_ids) < PLAIN_RESPONSES_BELOW:
        address = tokens.address
        return [lg.QuerySampleResponse(i, address + start * itemsize, n * itemsize, n)
                for i, start, n in zip(loadgen_ids, tokens.starts.tolist(), lengths.tolist())]
    return list(map(lg.QuerySampleResponse, loadgen_ids, tokens.pointers().tolist(), (lengths * itemsize).tolist(),
                    lengths.tolist()))


class Answers:
    """The backends' callbacks: each batch of answers is checked by the ledger and reported to loadgen."""

    def __init__(self, ledger: TokenLedger, fatal: Callable[[str], None]):
        self.ledger = ledger
        self._fatal = fatal
        self.lock = threading.Lock()  # guards the ledger (issued from loadgen's thread, answered from backends')
        self.idle = threading.Event()  # set while no query is outstanding
        self.idle.set()
        self.progress = None  # a tqdm bar, set when loadgen starts
        self.completed = 0
        self.output_tokens = 0
        self.stopping = False  # set when a signal stops the run: loadgen's further queries are dropped

    def stop_issuing(self) -> None:
        self.stopping = True

    def on_first(self, tokens: TokenBatch) -> None:
        import mlperf_loadgen as lg

        try:
            with self.lock:
                loadgen_ids = self.ledger.first(tokens)
        except TokenAccountingError as error:
            self._fatal(f"token accounting failed: {error}")
            return
        lg.FirstTokenComplete(loadgen_responses(loadgen_ids, tokens, tokens.lengths))

    def on_final(self, tokens: TokenBatch) -> None:
        import mlperf_loadgen as lg

        try:
            with self.lock:
                loadgen_ids, lengths = self.ledger.final(tokens)
                self.completed += len(tokens)
                self.output_tokens += int(lengths.sum())
                if not self.ledger.outstanding:
                    self.idle.set()
        except TokenAccountingError as error:
            self._fatal(f"token accounting failed: {error}")
            return
        lg.QuerySamplesComplete(loadgen_responses(loadgen_ids, tokens, lengths))
        if self.progress is not None:
            self.progress.update(len(tokens))

    def on_error(self, request_id: int | None, message: str) -> None:
        self._fatal(f"backend failed: {message}" + (f" (request {request_id})" if request_id is not None else ""))

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self.idle.wait(timeout)


class Queries:
    """Loadgen's fast SUT callbacks: issued queries become one RequestBatch for the dispatcher."""

    def __init__(self, answers: Answers, dataset: Dataset, benchmark: Benchmark, streaming: bool, max_new_tokens: int,
                 submit: Callable[[RequestBatch], None]):
        self._answers = answers
        self._dataset = dataset
        self._benchmark = benchmark
        self._streaming = streaming
        self._max_new_tokens = max_new_tokens
        self._submit = submit

    def issue(self, loadgen_ids: list[int], sample_indices: list[int]) -> None:
        answers = self._answers
        if answers.stopping:
            return
        with answers.lock:
            request_ids = answers.ledger.issue(loadgen_ids)
            answers.idle.clear()
        self._submit(RequestBatch(
            request_ids, np.array(sample_indices, dtype=np.int64), self._dataset.prompts,
            self._dataset.stop_sequences, self._max_new_tokens, self._benchmark.min_new_tokens,
            self._benchmark.eos_ids, self._streaming,
        ))

    def flush(self) -> None:
        pass
