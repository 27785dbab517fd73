"""The replay backend: a simulated engine that streams each sample's reference answer at a configured speed.

Each instance has `max_batch_size` slots. A request waits for a free slot, then its first token comes `ttft_ms`
later and each further token `tpot_ms` after that; the slot frees with the last token. The answer is the row's
`tok_ref_output`, else its tokenized `gt_output` (llama3.1-405b has no reference token ids), so an accuracy run
scores the reference's own answers and TEST06 passes. All answers live in one int32 buffer, shared by a process's
instances, so a batch of answers is a TokenBatch of pointers into it. One scheduler thread serves every instance of a
process (replay_scheduler.py) and delivers every event that is due in one batch; with no delays at all it answers
each submitted batch whole.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import astuple

import numpy as np

from llmkit.benchmarks import Benchmark
from llmkit.config.schema import RunConfig
from sut.backends.base import BackendSpec, ErrorCallback, RequestBatch, TokenBatch, TokenCallback
from sut.backends.latency import LatencyHistogram, p99_ms
from sut.backends.replay_scheduler import FINAL, FIRST, Scheduler

log = logging.getLogger(__name__)

class AnswerTable:
    """Every row's answer in one int32 buffer, with each row's start and length in it."""

    def __init__(self, buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
        self.buffer, self.starts, self.lengths = buffer, starts, lengths
        self.address = buffer.ctypes.data

    def batch(self, events: list[tuple[int, int, int]]) -> TokenBatch:
        """(request id, start, length) events as one TokenBatch pointing into the buffer."""
        ids, starts, lengths = np.array(events, dtype=np.int64).T
        return TokenBatch(ids, self.buffer, starts, lengths, self.address)


_TABLES: dict[tuple, AnswerTable] = {}


def reference_answers(spec: BackendSpec) -> AnswerTable:
    """Every row's answer (at least 2 tokens, at most one trailing EOS): made once per process and dataset."""
    key = (spec.benchmark, *astuple(spec.dataset))
    if key not in _TABLES:
        _TABLES[key] = _answers(spec.benchmark, spec.dataset)
    return _TABLES[key]


def _answers(benchmark_name: str, dataset) -> AnswerTable:
    from llmkit.benchmarks import get_benchmark
    from llmkit.data.datasets import load_dataset
    from llmkit.tokenizers import bundled_tokenizer_file, load_tokenizer

    benchmark = get_benchmark(benchmark_name)
    frame = load_dataset(dataset, benchmark).frame
    tokenizer = load_tokenizer(bundled_tokenizer_file(benchmark.tokenizer))
    eos = set(benchmark.eos_ids)
    answers = []
    for row in frame.itertuples():
        if hasattr(row, "tok_ref_output"):
            ids = [int(i) for i in row.tok_ref_output]
        else:
            ids = tokenizer.encode(str(row.gt_output)) + [benchmark.eos_id]
        while len(ids) >= 2 and ids[-1] in eos and ids[-2] in eos:
            ids.pop()
        if len(ids) < 2:
            ids = tokenizer.encode(" .")[-1:] + [benchmark.eos_id]
        answers.append((len(answers), ids))
    table = TokenBatch.from_pairs(answers)  # one buffer, row i's answer at starts[i]
    return AnswerTable(table.buffer, table.starts, table.lengths)


class EngineStats:
    """What the simulated engine itself saw: tokens produced and each request's own TTFT and TPOT."""

    def __init__(self):
        self.tokens = 0
        self.first_submit: float | None = None
        self.last_final: float | None = None
        # Constant-size histograms: a long run adds nothing per request.
        self.ttft = LatencyHistogram()
        self.tpot = LatencyHistogram()
        # Loadgen's Server token rate ends when the last-issued query is done; the engine tracks the same moment.
        self.last_submit: float | None = None
        self.last_submitted_id: int | None = None
        self.last_submitted_done: float | None = None

    def summary(self) -> dict:
        """The instance's figures, with its histograms (combine_stats merges them into one p99 over all requests)."""
        span = (self.last_final or 0.0) - (self.first_submit or 0.0)
        return {"tokens": self.tokens, "tokens_per_second": self.tokens / span if span > 0 else None,
                "ttft": self.ttft, "tpot": self.tpot, "requests": self.ttft.count,
                "first_submit": self.first_submit, "last_final": self.last_final, "last_submit": self.last_submit,
                "last_submitted_done": self.last_submitted_done}


def combine_stats(engines: list[dict]) -> dict:
    """The simulated engines' own figures over all instances, over one window: p99s over every request of every
    instance. Times are perf_counter readings, comparable between the processes of one node."""
    starts = [e["first_submit"] for e in engines if e["first_submit"] is not None]
    ends = [e["last_final"] for e in engines if e["last_final"] is not None]
    tokens = sum(e["tokens"] for e in engines)
    span = max(ends) - min(starts) if starts and ends else 0.0
    # Loadgen's Server rate divides every token by the time until the last-issued query was done.
    last = max((e for e in engines if e["last_submit"] is not None), key=lambda e: e["last_submit"], default=None)
    window = (last["last_submitted_done"] - min(starts)) if last and last["last_submitted_done"] and starts else 0.0
    return {
        "tokens": tokens,
        "tokens_per_second": tokens / span if span > 0 else None,
        "tokens_per_second_to_last_issued": tokens / window if window > 0 else None,
        "seconds": round(span, 3),
        "ttft_p99_ms": p99_ms(LatencyHistogram.merged([e["ttft"] for e in engines])),
        "tpot_p99_ms": p99_ms(LatencyHistogram.merged([e["tpot"] for e in engines])),
        "instances": len(engines),
    }


class ReplayBackend:
    combine_stats = staticmethod(combine_stats)

    @classmethod
    def prepare(cls, cfg: RunConfig, benchmark: Benchmark) -> BackendSpec:
        """Nothing to load: the answers come from the dataset."""
        return BackendSpec(cfg.backend, cfg.system, benchmark.name, cfg.dataset)

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        self.slots = spec.backend.max_batch_size
        self.ttft = spec.backend.ttft_ms / 1e3
        self.tpot = spec.backend.tpot_ms / 1e3
        self.instant = self.ttft == 0 and self.tpot == 0
        self._waiting: deque[tuple[float, RequestBatch]] = deque()
        self._pending = 0
        self._free = self.slots
        self.first_sent: dict[int, float] = {}  # request id -> when its first token actually went out
        self.engine = EngineStats()
        self._scheduler: Scheduler | None = None

    # the Backend protocol ------------------------------------------------------------------------------
    def start(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback) -> None:
        self.table = reference_answers(self.spec)
        self.callbacks = (on_first, on_final, self.table)
        self._on_error = on_error
        self._scheduler = Scheduler.join(self)
        log.info("replay backend instance %d ready: %d slots, TTFT %.1f ms, TPOT %.1f ms", self.spec.instance,
                 self.slots, self.ttft * 1e3, self.tpot * 1e3)

    def submit(self, batch: RequestBatch) -> None:
        now = time.perf_counter()
        with self._scheduler.condition:
            self._pending += len(batch)
            self._waiting.append((now, batch))
            if self.engine.first_submit is None:
                self.engine.first_submit = now
            if len(batch):
                self.engine.last_submit, self.engine.last_submitted_id = now, int(batch.request_ids[-1])
            self._scheduler.wake()

    def pending(self) -> int:
        return self._pending

    def stats(self) -> dict | None:
        return self.engine.summary()

    def stop(self) -> None:
        if self._scheduler is not None:
            Scheduler.leave(self)
            self._scheduler = None

    # called by the scheduler -------------------------------------------------------------------------
    def fail(self, message: str) -> None:
        self._on_error(None, f"replay backend instance {self.spec.instance}: {message}")

    def has_waiting(self) -> bool:
        return bool(self._waiting)

    def take_waiting(self) -> deque[tuple[float, RequestBatch]]:
        """Everything waiting (with the condition held); the pending count falls as it is answered."""
        waiting, self._waiting = self._waiting, deque()
        self._pending -= sum(len(batch) for _, batch in waiting)
        return waiting

    def _answers(self, batch: RequestBatch) -> tuple[np.ndarray, np.ndarray]:
        """Where each request's answer starts in the buffer and how long it is (cut at max_new_tokens)."""
        return self.table.starts[batch.rows], np.minimum(self.table.lengths[batch.rows], batch.max_new_tokens)

    def admit(self, scheduler: Scheduler, now: float) -> None:
        """Start waiting requests in free slots (with the condition held)."""
        while self._free and self._waiting:
            submitted, batch = self._waiting[0]
            if len(batch) > self._free:
                self._waiting[0] = (submitted, batch.take(slice(self._free, None)))
                batch = batch.take(slice(0, self._free))
            else:
                self._waiting.popleft()
            self._free -= len(batch)
            starts, lengths = self._answers(batch)
            first_at = now + self.ttft
            for request_id, start, length in zip(batch.request_ids.tolist(), starts.tolist(), lengths.tolist()):
                if batch.stream:
                    scheduler.push(first_at, FIRST, self, request_id, start, length, submitted, first_at)
                scheduler.push(first_at + (length - 1) * self.tpot, FINAL, self, request_id, start, length, submitted,
                               first_at)

    def record(self, request_id: int, length: int, submitted: float, first_at: float, now: float) -> None:
        """The engine's own view of one finished request: TTFT from its submit() (slot queueing included) to its
        first token, TPOT from there to the last, as the engine delivered them; its slot frees."""
        stats = self.engine
        first_at = self.first_sent.pop(request_id, first_at)
        stats.tokens += length
        stats.last_final = now
        stats.ttft.add(first_at - submitted)
        if length > 1:
            stats.tpot.add((now - first_at) / (length - 1))
        if request_id == stats.last_submitted_id:
            stats.last_submitted_done = now
        self._free += 1
        self._pending -= 1

    def complete_now(self, waiting: deque[tuple[float, RequestBatch]], now: float) -> None:
        """Answer everything that was waiting in one batch (an instant engine; without the condition held)."""
        stats, parts = self.engine, []
        for submitted, batch in waiting:
            starts, lengths = self._answers(batch)
            parts.append((batch.request_ids, starts, lengths))
            stats.tokens += int(lengths.sum())
            stats.ttft.add(now - submitted, len(batch))
            stats.tpot.add(0.0, int((lengths > 1).sum()))
            if len(batch) and int(batch.request_ids[-1]) == stats.last_submitted_id:
                stats.last_submitted_done = now
        stats.last_final = now
        ids, starts, lengths = parts[0] if len(parts) == 1 else (np.concatenate(a) for a in zip(*parts))
        on_first, on_final, table = self.callbacks
        if waiting[0][1].stream:
            on_first(TokenBatch(ids, table.buffer, starts, np.ones_like(lengths), table.address))
        on_final(TokenBatch(ids, table.buffer, starts, lengths, table.address))
