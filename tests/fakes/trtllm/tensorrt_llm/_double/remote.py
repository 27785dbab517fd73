"""Test double of TensorRT-LLM 1.2.1 (tests/fakes/trtllm): the replay execution loop in a child process
(`LLMKIT_FAKE_TRTLLM_ENGINE=process`), for load measurements.

The real Executor's loop runs in C++ threads that never take the Python GIL; only `await_responses` turns an
iteration's responses into Python objects, in the caller's thread. In a thread of the SUT's own interpreter the
double's loop would compete with the SUT for the GIL (its Python per streamed token), so the harness would measure the
double as much as the SUT. Here the loop (engine.Engine with the ReplayGenerator) runs in `python -m
tensorrt_llm._double.remote FD` over one socket: requests and cancels go down as pickled messages; each iteration's
responses come up as one message of plain tuples, and the caller of `await_responses` reads and decodes them into
Responses itself (`RemoteEngine.pump`), as the binding builds its Response objects in the caller's thread. The
iteration's untimed responses are pickled before its token times are stamped (`PipeSink.stage`): the runtime's
responses are in the caller's process when it stamps them, the double's only once packed and sent, and packing
thousands of them is the double's Python, not the caller's. Iteration stats and the runtime's warnings ride along. If
the child dies, every later call raises "executor worker died".
"""
from __future__ import annotations

import logging
import math
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from tensorrt_llm._double.engine import Engine, Job, ReplayGenerator, response_row
from tensorrt_llm._double.settings import Limits, Settings

from sut.wire import Frames  # the SUT's own framing (its MPI hot path), the same bytes either way

log = logging.getLogger("tensorrt_llm")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # tests/fakes/trtllm, which holds the package
STATS_EVERY_S = 0.05  # the child sends its iteration stats (and new warnings) at most this often


class RemoteEngine:
    """Engine's interface (submit, cancel, latest_stats, shutdown, warnings) over a child process; `pump(timeout)`
    moves what the child sent into the ResponseStore."""

    def __init__(self, limits: Limits, settings: Settings, store, *, block_reuse: bool, iter_stats_max: int,
                 name: str):
        ours, theirs = socket.socketpair()
        env = os.environ.copy()  # this double importable there too, however it was imported here
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        self._proc = subprocess.Popen([sys.executable, "-m", "tensorrt_llm._double.remote", str(theirs.fileno())],
                                      pass_fds=[theirs.fileno()], env=env)
        theirs.close()
        self._frames = Frames(ours)
        self._frames.send((limits, settings, block_reuse, iter_stats_max, name))
        self.store, self.warnings = store, []
        self._recv_lock = threading.Lock()
        self._stats: deque[dict] = deque(maxlen=max(iter_stats_max, 0) or None)
        self._closed = False

    def _send(self, message: tuple) -> None:
        try:
            self._frames.send(message)
        except OSError:
            self._gone()

    def submit(self, jobs: list[Job]) -> None:
        self._send(("submit", jobs))

    def cancel(self, request_id: int) -> None:
        self._send(("cancel", request_id))

    def latest_stats(self) -> list[dict]:
        self.pump(0.0)
        with self._recv_lock:
            stats, self._stats = list(self._stats), deque(maxlen=self._stats.maxlen)
        return stats

    def pump(self, timeout_s: float | None) -> None:
        """Wait up to `timeout_s` for the child's next message, then take every message waiting, into the store."""
        if self._closed:  # shutting down: the executor answers its waiters itself
            time.sleep(min(0.01, 0.01 if timeout_s is None else timeout_s))
            return
        if not self._recv_lock.acquire(timeout=-1 if timeout_s is None else max(timeout_s, 0.0)):
            return
        try:
            if self._closed:
                return
            for message in self._frames.receive(timeout_s):
                self._take(message)
        except (EOFError, OSError):
            self._gone()
        finally:
            self._recv_lock.release()

    def _take(self, message: tuple) -> None:
        staged, results, finals, errors, stats, warnings = message
        if staged:  # the iteration's untimed responses, pickled before its token times were stamped
            rows = pickle.loads(staged[0]) if len(staged) == 1 else [r for blob in staged for r in pickle.loads(blob)]
            results = rows + results if results else rows
        self.store.add_all(results, errors, finals)
        self._stats.extend(stats)
        for text in warnings:
            self.warnings.append(text)
            log.warning("[TensorRT-LLM][WARNING] %s", text)

    def _gone(self) -> None:
        if self._closed:
            return
        self._closed = True
        code = self._proc.poll()
        self.store.died(f"[TensorRT-LLM][ERROR] (test double) executor worker died: the engine process ended "
                        f"(exit code {code})")

    def shutdown(self) -> None:
        if self._closed and self._proc.poll() is not None:
            return
        self._closed = True  # from here an ending child is no death
        if self._proc.poll() is None:
            self._send(("stop",))
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        with self._recv_lock:  # a pump in flight sees the child's end of file and lets go
            self._frames.sock.close()


class PipeSink:
    """The child's side: an iteration's responses go up as one message; iteration stats and new warnings ride
    along at most every STATS_EVERY_S, and the idle child's main thread sends what is left (`send_stats`)."""

    def __init__(self, frames: Frames):
        self.frames, self.engine = frames, None
        self._staged: list[bytes] = []  # results pickled by `stage`, not yet sent
        self._results: list[tuple] = []
        self._finals: list[int] = []  # the requests whose final result is staged or among _results
        self._errors: list[tuple] = []
        self._warned, self._stats_at = 0, -math.inf
        self._lock = threading.Lock()  # the engine thread's flush and the main thread's send_stats

    def result(self, job: Job, tokens: list[int], final: bool, timing=None) -> None:
        self._results.append(response_row(job, tokens, final, timing))
        if final:
            self._finals.append(job.id)

    def error(self, request_id: int, message: str, client_id: int | None) -> None:
        self._errors.append((request_id, message, client_id))

    def stage(self) -> None:
        """The engine thread's, before it stamps the iteration's token times: the results so far (all but the few
        timed ones) are pickled now, so that the stamp follows the double's packing."""
        if self._results:
            self._staged.append(pickle.dumps(self._results, pickle.HIGHEST_PROTOCOL))
            self._results = []

    def flush(self) -> None:
        """The engine thread's, once per iteration."""
        staged, results, finals, errors = self._staged, self._results, self._finals, self._errors
        self._staged, self._results, self._finals, self._errors = [], [], [], []
        self._send((staged, results, finals, errors), time.monotonic() - self._stats_at >= STATS_EVERY_S)

    def send_stats(self) -> None:
        self._send(([], [], [], []), True)

    def _send(self, responses: tuple[list[bytes], list[tuple], list[int], list[tuple]], with_stats: bool) -> None:
        """`responses`: (staged, results, finals, errors)."""
        with self._lock:
            stats, warnings = [], []
            if with_stats and self.engine is not None:
                self._stats_at = time.monotonic()
                stats, warnings = self.engine.latest_stats(), self.engine.warnings[self._warned:]
                self._warned += len(warnings)
            if not (any(responses) or stats or warnings):
                return
            try:
                self.frames.send((*responses, stats, warnings))
            except OSError:
                os._exit(0)  # the executor side is gone

    def died(self, message: str) -> None:  # never: ENGINE=process refuses DIE_AFTER
        os._exit(1)


def main() -> None:
    frames = Frames(socket.socket(fileno=int(sys.argv[1])))
    pending: deque[tuple] = deque()
    while not pending:
        pending.extend(frames.take())
    limits, settings, block_reuse, iter_stats_max, name = pending.popleft()
    sink = PipeSink(frames)
    engine = Engine(limits, settings, ReplayGenerator(settings, limits.vocab_size), sink, block_reuse=block_reuse,
                    iter_stats_max=iter_stats_max, name=name)
    sink.engine = engine
    running = True
    while running:
        if not pending:
            try:
                got = frames.receive(STATS_EVERY_S)
            except (EOFError, OSError):
                break
            if not got:
                sink.send_stats()
            pending.extend(got)
            continue
        message = pending.popleft()
        if message[0] == "submit":
            engine.submit(message[1])
        elif message[0] == "cancel":
            engine.cancel(message[1])
        else:
            running = False
    engine.shutdown()
    sink.flush()
    sink.send_stats()
    frames.sock.close()


if __name__ == "__main__":
    main()
