"""Stop cleanly on Ctrl-C (SIGINT) and SIGTERM while the main thread is inside a long C++ call.

Python runs its signal handlers in the main thread between bytecodes, so while loadgen's StartTest holds the main
thread a Ctrl-C would wait for the whole test (up to the 600 s minimum duration) and a SIGTERM's default action
would leave the staging directory behind. Inside `stop_on_signals()` both signals are taken by a watcher thread
through `signal.set_wakeup_fd`: it says one line, runs the registered cleanups (stop issuing, end the backends,
discard the staging directory) within a deadline, and ends the process with 128 + the signal's number (130 for
SIGINT, 143 for SIGTERM), as a shell reports a process killed by it.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from llmkit.log import log_critical_now

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The cleanups' time in all; the process ends then even if one of them hangs (a wedged engine must not keep a
# stopped run alive).
DEADLINE_S = 1.5


def exit_code(signum: int) -> int:
    return 128 + signum


class Cleanups:
    """What to undo when a signal ends the process, run in the order registered."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object], float | None]] = []
        self._last: list[tuple[str, Callable[[], object], float | None]] = []
        self._lock = threading.Lock()

    def add(self, what: str, step: Callable[[], object], limit_s: float | None = None, *, last: bool = False) -> None:
        """`step` runs at most `limit_s` (else until the deadline), so the steps after it still get their turn; a
        step added with `last` runs after every other, whenever it was added."""
        with self._lock:
            (self._last if last else self._steps).append((what, step, limit_s))

    def run(self, deadline: float) -> list[str]:
        """Run every step (each in a thread, so one that hangs is left behind); returns what did not finish."""
        with self._lock:
            steps = [*self._steps, *self._last]
        unfinished = []
        for what, step, limit_s in steps:
            worker = threading.Thread(target=quietly, args=(what, step), daemon=True)
            worker.start()
            left = max(deadline - time.monotonic(), 0.0)
            worker.join(left if limit_s is None else min(limit_s, left))
            if worker.is_alive():
                unfinished.append(what)
        return unfinished


def quietly(what: str, step: Callable[[], object]) -> None:
    """Run a clean-up step; its failure is logged, never raised (it must not stop the others)."""
    try:
        step()
    except Exception as error:  # a cleanup failing must not stop the others
        log.warning("while stopping: %s failed: %s", what, error)


def _watch(read_fd: int, cleanups: Cleanups, done: threading.Event) -> None:
    while True:
        try:
            data = os.read(read_fd, 1)
        except OSError:
            return
        if not data or done.is_set():
            return
        signum = data[0]
        if signum not in SIGNALS:
            continue
        name = signal.Signals(signum).name
        sys.stderr.write("\n")  # end a progress bar's line first
        log_critical_now(log, f"{name} received: stopping (the run is discarded, nothing is written)")
        unfinished = cleanups.run(time.monotonic() + DEADLINE_S)
        if unfinished:
            log_critical_now(log, f"stopped without waiting for: {', '.join(unfinished)}")
        logging.shutdown()
        os._exit(exit_code(signum))


@contextmanager
def stop_on_signals() -> Iterator[Cleanups]:
    """Within the block (entered from the main thread), SIGINT and SIGTERM end the process cleanly after the
    cleanups registered on the yielded Cleanups. Outside it, the previous handlers are back."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("stop_on_signals() must be entered from the main thread (signal handlers live there)")
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    cleanups, done = Cleanups(), threading.Event()
    # A Python-level handler must be installed for the C handler to write to the wakeup fd; it does nothing itself
    # (the watcher acts), so no KeyboardInterrupt is raised wherever the main thread happens to be.
    previous = {signum: signal.signal(signum, lambda *_: None) for signum in SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_fd, cleanups, done), name="llmkit-signals", daemon=True)
    watcher.start()
    try:
        yield cleanups
    finally:
        done.set()
        signal.set_wakeup_fd(previous_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(write_fd)  # the watcher's read returns empty and it ends
        watcher.join(1.0)
        os.close(read_fd)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so it unwinds as Ctrl-C does (cleanups in `finally` run)."""


def _terminated(signum, frame) -> None:
    raise Terminated()


def one_line_on_interrupt(what: str, func: Callable[[], object]) -> object:
    """Run `func` with SIGTERM unwinding like Ctrl-C (a run's own handling takes both while loadgen runs); either
    ends the process with one line and 130 (Ctrl-C) or 143 (SIGTERM)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return func()
    except KeyboardInterrupt as stop:
        name, code = ("SIGTERM", exit_code(signal.SIGTERM)) if isinstance(stop, Terminated) else \
            ("Ctrl-C", exit_code(signal.SIGINT))
        sys.stderr.write(f"\nllmkit: {what} interrupted ({name}); nothing half-written was put in place\n")
        sys.stderr.flush()
        raise SystemExit(code) from None
