"""Test double of TensorRT-LLM 1.2.1 (tests/fakes/trtllm): the inflight-batching execution loop behind both the
Executor binding and the LLM API, in one background thread per executor.

Mimics, as read from NVIDIA/TensorRT-LLM (1.2-line sources; the v1.2.1 tag itself was not readable):
- cpp/tensorrt_llm/executor/executorImpl.cpp @ 036a60f7 (fetchNewRequests): a request is validated when the loop
  fetches it, and a failure becomes an error Response ("Encountered an error when fetching new request: ..."), never an
  exception to the caller; a streaming request that could be evicted and restarted past max_input_len is refused
  unless the policy is GUARANTEED_NO_EVICT or context chunking is on.
- cpp/tensorrt_llm/batch_manager/llmRequest.cpp @ (LlmRequest::validate / createResult, read at the index's
  version): end_id must lie in [-1, vocab); a prompt over max_input_len is an error; prompt + max_tokens over
  max_seq_len is NOT an error, max_tokens is cut down with a warning; streaming results carry only the tokens not sent
  before; non-streaming ones carry the prompt too unless exclude_input_from_output.
- issue NVIDIA/TensorRT-LLM#2190 (maintainer: "expected behavior"): the end_id token ends generation and is not in
  the output. Stop words are kept in the output (the stop criteria run after the token is appended; not confirmed
  from a source line).
Generation: "model" mode decodes greedily with the kit's own ContinuousBatch (sut/backends/batching.py) on the
engine's Hugging Face checkpoint, so its tokens equal the hf backend's; "replay" mode answers with deterministic ids
at configured delays, without a model. Faults (README.md) are injected here.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tensorrt_llm._double.settings import Limits, Settings

log = logging.getLogger("tensorrt_llm")

END_ID, STOP_WORDS, LENGTH, CANCELLED = "END_ID", "STOP_WORDS", "LENGTH", "CANCELLED"
FETCH_ERROR = "Encountered an error when fetching new request: [TensorRT-LLM][ERROR] "


@dataclass(eq=False, slots=True)
class Job:
    """One request inside the double."""

    id: int
    prompt: list[int]
    max_new: int
    min_tokens: int
    end_id: int | None
    stop_words: list[tuple[int, ...]]
    streaming: bool
    exclude_input: bool
    return_all: bool = False
    client_id: int | None = None
    inject_error: bool = False
    generated: list[int] = field(default_factory=list)
    sent: int = 0
    reason: str | None = None
    due: float = 0.0  # replay: when its next token is due
    script: list[int] = field(default_factory=list)  # replay: its whole answer
    handle: object = None  # model: its ContinuousBatch sequence
    perf: bool = False  # OutputConfig.return_perf_metrics: stamp its times (time.monotonic, the steady clock)
    arrival: float = 0.0  # when it was enqueued
    scheduled: float = 0.0  # when the loop admitted it
    first_at: float = 0.0  # when its first token left
    last_at: float = 0.0  # when its final response left


STAMP_AT_HAND_OVER = -1.0  # a token time taken when its iteration's responses are handed over


def response_row(job: Job, tokens: list[int], final: bool, timing) -> tuple:
    """What a Response is made of (ResponseStore.add_all), as plain values that pickle cheaply: (request id, tokens,
    final, reason, decoding iteration, client id, timing), or for the common streamed step (one token, not final, no
    timing, no client id) only (request id, token, decoding iteration), a quarter of the cost to unpickle."""
    if not final and len(tokens) == 1 and timing is None and job.client_id is None:
        return job.id, tokens[0], len(job.generated)
    return job.id, tokens, final, job.reason, len(job.generated), job.client_id, timing


def full_row(row: tuple) -> tuple:
    """A response_row in its long form."""
    return row if len(row) == 7 else (row[0], [row[1]], False, None, row[2], None, None)


class GreedyGenerator:
    """Greedy decoding with the kit's ContinuousBatch on a Hugging Face checkpoint (CPU float32 by default)."""

    def __init__(self, checkpoint: str, device: str):
        import torch

        from sut.backends.batching import ContinuousBatch
        from sut.backends.hf import load_model

        self.batch = ContinuousBatch(load_model(checkpoint, "float32", device), torch.device(device))

    iteration_s = 0.0  # every pass of the loop is one iteration

    def ready(self, active, now: float) -> bool:
        return bool(active)

    def next_due(self, active) -> float | None:
        return None

    def admit(self, jobs: list[Job], now: float) -> list[Job]:
        import numpy as np

        from sut.backends.base import GenerationRequest

        requests = [GenerationRequest(j.id, np.asarray(j.prompt, dtype=np.int32), j.max_new, j.min_tokens,
                                      () if j.end_id is None else (j.end_id,)) for j in jobs]
        for job, sequence in zip(jobs, self.batch.admit(requests)):
            job.handle, job.generated = sequence, sequence.generated
        return jobs

    def step(self, active: dict[int, Job], now: float) -> list[Job]:
        jobs = list(active.values())
        lengths = [len(j.generated) for j in jobs]
        self.batch.step()
        return [j for j, n in zip(jobs, lengths) if len(j.generated) > n]

    def evict(self, active: dict[int, Job]) -> None:
        for job in active.values():
            job.handle.finished = job.reason is not None
        self.batch.evict_finished()


class DueTimes:
    """Jobs by the time their next token is due, taken in that order (then in the order they were put). On an
    iteration tick (`tick` > 0, with a phase) a job waits in its tick's bucket: appending to a list per tick costs a
    fraction of a heap push per token, which at a busy engine's tens of thousands of tokens a second is most of the
    double's own work; without ticks, a heap of exact times."""

    def __init__(self, tick: float, phase: float):
        self.tick, self.phase = tick, phase
        self._buckets: dict[int, list[Job]] = {}  # tick number -> its jobs
        self._ticks: list[int] = []  # heap of the bucket keys
        self._heap: list[tuple[float, int, Job]] = []  # without ticks
        self._order = itertools.count()

    def put(self, job: Job, due: float) -> None:
        if self.tick <= 0:
            heapq.heappush(self._heap, (due, next(self._order), job))
            return
        number = math.ceil((due - self.phase) / self.tick - 1e-9)  # the first tick at or after `due`
        bucket = self._buckets.get(number)
        if bucket is None:
            self._buckets[number] = [job]
            heapq.heappush(self._ticks, number)
        else:
            bucket.append(job)

    def first(self) -> float | None:
        """When the earliest token is due (its tick's time)."""
        if self.tick <= 0:
            return self._heap[0][0] if self._heap else None
        return self._ticks[0] * self.tick + self.phase if self._ticks else None

    def take(self, now: float) -> list[Job]:
        """Every job due at `now` or before, in order."""
        taken: list[Job] = []
        if self.tick <= 0:
            heap = self._heap
            while heap and heap[0][0] <= now:
                taken.append(heapq.heappop(heap)[2])
            return taken
        ticks, tick, phase = self._ticks, self.tick, self.phase
        while ticks and ticks[0] * tick + phase <= now:
            taken += self._buckets.pop(heapq.heappop(ticks))
        return taken


class ReplayGenerator:
    """No model: each request's answer is `output_len` deterministic ids derived from its prompt (then end_id, when
    it has one and output_len < max_tokens), its first token `ttft` after admission and each next one `tpot` later.
    Due times (DueTimes): an iteration touches only the requests with a token due (cost per token, not per request
    per wake-up), so the double's own Python work stays small beside the SUT's it is used to measure."""

    def __init__(self, settings: Settings, vocab_size: int):
        self.settings, self.vocab = settings, vocab_size
        # A real engine iterates once per step for its whole batch. With ITERATION_MS, tokens leave on ticks that far
        # apart (each token at the first tick at or after its due time), so a busy engine's answers come in bursts
        # as a real one's do; without, each token leaves at its own due time and the loop wakes far more often.
        # Iteration stats are recorded at most once per tick (or per TPOT), the rate a real engine's come at.
        # Each engine's ticks have a phase of their own: the instances of a node do not iterate in step.
        self.iteration_s = settings.iteration_s or settings.tpot_s
        self._due = DueTimes(settings.iteration_s, random.random() * settings.iteration_s)

    def script(self, job: Job) -> list[int]:
        seed = sum((i + 1) * t for i, t in enumerate(job.prompt)) % self.vocab
        length = max(self.settings.output_len or job.max_new, job.min_tokens, 1)
        ids = []
        for i in range(min(length, job.max_new)):
            token = (seed + 7919 * (i + 1)) % self.vocab
            ids.append((token + 1) % self.vocab if token == job.end_id else token)
        if length < job.max_new and job.end_id is not None:
            ids.append(job.end_id)
        return ids

    def ready(self, active, now: float) -> bool:
        first = self._due.first()
        return first is not None and first <= now

    def next_due(self, active) -> float | None:
        return self._due.first()

    def admit(self, jobs: list[Job], now: float) -> list[Job]:
        due = self._due
        for job in jobs:
            job.script, job.due = self.script(job), now + self.settings.ttft_s
            due.put(job, job.due)
        return []

    def step(self, active, now: float) -> list[Job]:
        touched, due, tpot = [], self._due, self.settings.tpot_s
        for job in due.take(now):
            if job.reason is not None:
                continue  # cancelled meanwhile
            generated = job.generated
            generated.append(job.script[len(generated)])
            touched.append(job)
            if len(generated) < len(job.script):  # its next token, unless this one ends it (the engine sees after)
                job.due += tpot
                due.put(job, job.due)
        return touched

    def evict(self, active) -> None:
        pass


class Engine:
    """The execution loop. `sink.result(job, tokens, final, timing)` and `sink.error(id, message, client_id)` receive
    what the runtime would turn into Responses, `sink.flush()` hands over an iteration's together (as the runtime's
    response queue does, once per iteration), after `sink.stage()` (before the token times are stamped: the sink's
    own work on the results so far); `sink.died(message)` when the worker dies in "raise" mode."""

    def __init__(self, limits: Limits, settings: Settings, generator, sink, *, block_reuse: bool,
                 iter_stats_max: int = 1000, name: str = "executor"):
        self.limits, self.settings, self.generator, self.sink = limits, settings, generator, sink
        self.block_reuse = block_reuse
        self.warnings: list[str] = []
        self._cv = threading.Condition()
        self._queued: deque[Job] = deque()
        self._waiting: deque[Job] = deque()
        self._active: dict[int, Job] = {}  # by request id, in admission order
        self._timed: list[tuple[Job, list[int], bool]] = []  # this iteration's responses that carry perf metrics
        self._stamp: list[Job] = []  # this iteration's jobs whose first or last token time is due at the hand-over
        self._used_blocks = 0  # KV blocks the active requests hold
        self._cancel: set[int] = set()
        self._stop = False
        self.finals = 0
        self.dead: str | None = None
        self._stats: deque[dict] = deque(maxlen=max(iter_stats_max, 0) or None)
        self._iter = 0
        self._unrecorded = [0, 0]  # admitted, completed in passes not yet recorded
        self._recorded_at = -math.inf
        self._kv = {"allocTotalBlocks": 0, "allocNewBlocks": 0, "reusedBlocks": 0, "missedBlocks": 0}
        self._stored_blocks: set[tuple[int, ...]] = set()
        self._thread = threading.Thread(target=self._run, name=f"fake-trtllm-{name}", daemon=True)
        self._thread.start()

    # called by the API side ------------------------------------------------------------------------------
    def submit(self, jobs: list[Job]) -> None:
        with self._cv:
            self._queued.extend(jobs)
            self._cv.notify_all()

    def cancel(self, request_id: int) -> None:
        with self._cv:
            self._cancel.add(request_id)
            self._cv.notify_all()

    def latest_stats(self) -> list[dict]:
        with self._cv:
            stats, self._stats = list(self._stats), deque(maxlen=self._stats.maxlen)
        return stats

    def shutdown(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # the loop --------------------------------------------------------------------------------------------
    def _busy(self, now: float) -> bool:
        room = self.limits.max_batch_size > len(self._active)
        return bool(self._queued or self._cancel or (self._waiting and room)
                    or self.generator.ready(self._active, now))

    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    while not self._stop and not self._busy(time.perf_counter()):
                        due = self.generator.next_due(self._active)
                        self._cv.wait(None if due is None else max(due - time.perf_counter(), 0.0005))
                    if self._stop:
                        return
                    if self._fault():
                        return
                    new, self._queued = list(self._queued), deque()
                    cancels, self._cancel = self._cancel, set()
                self._iteration(new, cancels)
        except Exception as error:  # as forwardAsync: every active request ends with an error response
            log.exception("fake TensorRT-LLM execution loop failed")
            for job in [*self._active.values(), *self._waiting]:
                self.sink.error(job.id, f"Encountered an error in forwardAsync function: {error}", job.client_id)
            self._hand_over()

    def _fault(self) -> bool:
        """Stall or die once enough requests were answered (with the condition held); True ends the loop."""
        s = self.settings
        if s.stall_after is not None and self.finals >= s.stall_after:
            log.warning("(test double) stalled after %d final responses (LLMKIT_FAKE_TRTLLM_STALL_AFTER)", self.finals)
            while not self._stop:
                self._cv.wait()
            return True
        if s.die_after is not None and self.finals >= s.die_after:
            message = (f"[TensorRT-LLM][ERROR] (test double) executor worker died after {self.finals} final "
                       f"responses (LLMKIT_FAKE_TRTLLM_DIE_AFTER={s.die_after})")
            log.error("%s", message)
            if s.die_mode == "exit":
                logging.shutdown()
                os._exit(s.die_code)
            self.dead = message
            self._hand_over()
            self.sink.died(message)
            return True
        return False

    def _iteration(self, new: list[Job], cancels: set[int]) -> None:
        """One pass of the loop: fetch and validate new requests, cancel, generate a step for the requests with
        work, admit waiting ones, emit what changed, free what finished; responses leave together at the end."""
        start = time.perf_counter()
        for job in new:
            error = self._validate(job)
            if error is None:
                self._waiting.append(job)
            else:
                self._final_error(job, FETCH_ERROR + error)
        completed = self._cancel_jobs(cancels)
        now = time.perf_counter()
        running = len(self._active)
        touched = self.generator.step(self._active, now) if self.generator.ready(self._active, now) else []
        admitted = self._admit(now)
        for job in touched:
            self._check_finish(job)
            self._grow(job)
        for job in admitted:
            if job.generated:  # a generator that makes the first token at admission
                self._check_finish(job)
        finished = []
        for job in [*touched, *admitted]:
            self._emit(job)
            if job.reason is not None:
                finished.append(job)
        if finished:
            self._retire(finished)
        self._hand_over()
        self._record(start, len(admitted), running, completed + len(finished))

    def _retire(self, finished: list[Job]) -> None:
        """Free the finished requests' slots and blocks."""
        self.generator.evict(self._active)
        for job in finished:
            if self._active.pop(job.id, None) is not None:
                self._used_blocks -= self._blocks(job)

    def _blocks(self, job: Job) -> int:
        return -(-(len(job.prompt) + len(job.generated)) // self.limits.tokens_per_block)

    def _grow(self, job: Job) -> None:
        """A new token in a fresh block takes one more."""
        if (len(job.prompt) + len(job.generated)) % self.limits.tokens_per_block == 1 % self.limits.tokens_per_block:
            self._used_blocks += 1

    def _validate(self, job: Job) -> str | None:
        limits, prompt = self.limits, len(job.prompt)
        if job.inject_error:
            return f"(test double) injected fault (LLMKIT_FAKE_TRTLLM_ERROR_ON={self.settings.error_on})"
        if not job.prompt:
            return "Assertion failed: (test double) the input token ids are empty"
        if job.end_id is not None and not -1 <= job.end_id < limits.vocab_size:
            return f"Assertion failed: EndId ({job.end_id}) is not within acceptable range [-1, {limits.vocab_size})."
        if prompt > limits.max_input_len:
            return (f"Prompt length ({prompt}) exceeds maximum input length ({limits.max_input_len}). Set log level "
                    "to info and check TRTGptModel logs for how maximum input length is set")
        if any(t < 0 or t >= limits.vocab_size for t in job.prompt):
            return f"Assertion failed: (test double) an input token id is outside [0, {limits.vocab_size})"
        if prompt + job.max_new > limits.max_seq_len:
            cut = limits.max_seq_len - prompt
            self._warn(f"Prompt length + number of requested output tokens + draft tokens per step ({prompt} + "
                       f"{job.max_new} + 0) exceeds maximum sequence length ({limits.max_seq_len}). Number of "
                       f"requested output tokens is changed to ({cut}).")
            job.max_new = cut
        if job.max_new < 1:
            return f"Assertion failed: (test double) max_tokens must be at least 1 (got {job.max_new})"
        if (limits.check_streaming_restart and job.streaming and not limits.guaranteed_no_evict
                and not limits.chunked_context and prompt + job.max_new - 1 > limits.max_input_len):
            return ("Assertion failed: Request sequence length is potentially greater than max input length. This "
                    "cannot be run unless streaming is disabled, context chunking is enabled or the "
                    "GUARANTEED_NO_EVICT scheduling policy is used")
        return None

    def _cancel_jobs(self, cancels: set[int]) -> int:
        count = 0
        for job in [j for j in self._waiting if j.id in cancels]:
            self._waiting.remove(job)
            job.reason = CANCELLED
            self._emit(job)
            count += 1
        hit = [self._active[i] for i in cancels if i in self._active and self._active[i].reason is None]
        for job in hit:
            job.reason = CANCELLED
            self._emit(job)
        if hit:
            self._retire(hit)
        return count + len(hit)

    def _admit(self, now: float) -> list[Job]:
        room = self.limits.max_batch_size - len(self._active)
        budget = self.limits.max_num_tokens
        taken: list[Job] = []
        while self._waiting and room > 0 and (not taken or len(self._waiting[0].prompt) <= budget):
            job = self._waiting.popleft()
            taken.append(job)
            room -= 1
            budget -= len(job.prompt)
            self._count_blocks(job)
        if taken:
            scheduled = time.monotonic()
            for job in taken:
                job.scheduled = scheduled
            self.generator.admit(taken, now)
            for job in taken:
                self._active[job.id] = job
                self._used_blocks += self._blocks(job)
        return taken

    def _check_finish(self, job: Job) -> None:
        tokens = job.generated
        last = tokens[-1]
        if last == job.end_id:  # never when end_id is None
            job.reason = END_ID
        elif job.stop_words and self._stopped(tokens, last, job.stop_words):
            job.reason = STOP_WORDS
        elif len(tokens) >= job.max_new:
            job.reason = LENGTH

    @staticmethod
    def _stopped(tokens: list[int], last: int, stop_words: list[tuple[int, ...]]) -> bool:
        for word in stop_words:  # the last token first: a busy engine asks this of every token
            if word and word[-1] == last and len(tokens) >= len(word) and tuple(tokens[-len(word):]) == word:
                return True
        return False

    def _emit(self, job: Job) -> None:
        final, first = job.reason is not None, job.sent == 0
        generated = job.generated
        if job.perf:  # token times are stamped when the iteration's responses are handed over (_hand_over)
            if not job.first_at and generated:
                job.first_at = STAMP_AT_HAND_OVER
                self._stamp.append(job)
            if final:
                job.last_at = STAMP_AT_HAND_OVER
                self._stamp.append(job)
        visible = len(generated) - (job.reason == END_ID)  # the end_id token is not part of the output
        if job.streaming:
            if not (final or visible > job.sent):
                return
            tokens = generated[:visible] if job.return_all else generated[job.sent:visible]
            job.sent = visible
        elif not final:
            return
        else:
            tokens = ([] if job.exclude_input else list(job.prompt)) + generated[:visible]
        if final:
            self.finals += 1
        # perf metrics ride on a request's first and final responses only (the runtime's on every one)
        if job.perf and (first or final):
            self._timed.append((job, tokens, final))
        else:
            self.sink.result(job, tokens, final, None)

    def _hand_over(self) -> None:
        """The iteration's responses leave together. The runtime stamps token times as its iteration ends and hands
        the responses over microseconds later; the double's Python takes milliseconds for a busy iteration's
        tokens, so its times are taken here, when the responses become available: that time is the engine's, not
        the caller's (a harness subtracting the engine's own latencies must not count the double's slowness as its
        own). A sink that must first pack the iteration's untimed responses for the caller (the child process's,
        `stage`) does so before the stamp."""
        self.sink.stage()
        if self._stamp:
            now = time.monotonic()
            for job in self._stamp:
                if job.first_at == STAMP_AT_HAND_OVER:
                    job.first_at = now
                if job.last_at == STAMP_AT_HAND_OVER:
                    job.last_at = now
            self._stamp = []
        for job, tokens, final in self._timed:
            self.sink.result(job, tokens, final, (job.arrival, job.scheduled, job.first_at, job.last_at))
        self._timed = []
        self.sink.flush()

    def _final_error(self, job: Job, message: str) -> None:
        self.sink.error(job.id, message, job.client_id)
        self.finals += 1

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("[TensorRT-LLM][WARNING] %s", message)

    def _count_blocks(self, job: Job) -> None:
        tpb = self.limits.tokens_per_block
        blocks = math.ceil(len(job.prompt) / tpb)
        self._kv["allocTotalBlocks"] += blocks
        reused = 0
        if self.block_reuse:
            for k in range(1, len(job.prompt) // tpb + 1):
                key = tuple(job.prompt[:k * tpb])
                if key in self._stored_blocks:
                    reused += 1
                else:
                    self._stored_blocks.add(key)
            self._kv["missedBlocks"] += blocks - reused
        self._kv["reusedBlocks"] += reused
        self._kv["allocNewBlocks"] += blocks - reused

    def _record(self, start: float, admitted: int, generating: int, completed: int) -> None:
        admitted += self._unrecorded[0]
        completed += self._unrecorded[1]
        now = time.perf_counter()
        if now - self._recorded_at < self.generator.iteration_s:
            self._unrecorded = [admitted, completed]
            return
        self._unrecorded, self._recorded_at = [0, 0], now
        tpb, limits = self.limits.tokens_per_block, self.limits
        max_blocks = limits.max_batch_size * math.ceil(limits.max_seq_len / tpb)
        used = self._used_blocks
        kv = dict(self._kv)
        lookups = kv["reusedBlocks"] + kv["missedBlocks"]
        with self._cv:
            queued = len(self._queued) + len(self._waiting)
            self._stats.append({
                "iter": self._iter, "iterLatencyMS": (time.perf_counter() - start) * 1e3,
                "newActiveRequestsQueueLatencyMS": 0.0, "numNewActiveRequests": admitted,
                "numActiveRequests": len(self._active), "numQueuedRequests": queued,
                "numCompletedRequests": completed, "maxNumActiveRequests": limits.max_batch_size,
                "timestamp": time.strftime("%m-%d-%Y %H:%M:%S"), "gpuMemUsage": 0, "cpuMemUsage": 0,
                "pinnedMemUsage": 0,
                "kvCacheStats": {"maxNumBlocks": max_blocks, "freeNumBlocks": max_blocks - used,
                                 "usedNumBlocks": used, "tokensPerBlock": tpb, **kv,
                                 "cacheHitRate": kv["reusedBlocks"] / lookups if lookups else 0.0},
                "inflightBatchingStats": {"numScheduledRequests": admitted + generating,
                                          "numContextRequests": admitted, "numGenRequests": generating,
                                          "numPausedRequests": 0, "numCtxTokens": 0, "microBatchId": 0,
                                          "avgNumDecodedTokensPerIter": 1.0},
            })
        self._iter += 1
