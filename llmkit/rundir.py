"""Run directories: staged in a hidden sibling and renamed into place, so a half run is never mistaken for one."""
from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from llmkit.errors import UserError, place_error

# A directory holding any of these already holds a run.
RUN_MARKERS = ("result.json", "mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json")


def replace_whole(path: Path, write: Callable[[Path], object]) -> None:
    """Have `write` make `path` whole or not at all: it writes a sibling temporary file (of the same suffix, for
    writers that choose their format by it), renamed over `path`."""
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(temporary)
    os.replace(temporary, path)


def write_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all."""
    replace_whole(path, lambda temporary: temporary.write_text(text))


def default_run_dir(runs_root: str, benchmark: str, system: str, scenario: str, mode: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_root) / benchmark / system / scenario.lower()
    candidate, n = base / f"{stamp}-{mode}", 1
    while candidate.exists():
        n += 1
        candidate = base / f"{stamp}-{mode}-{n}"
    return candidate


def refuse_existing_run(path: Path) -> None:
    if path.is_file():
        raise UserError(f"output_dir {path} is a file; choose a directory that does not exist yet")
    if path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS):
        raise UserError(f"{path} already holds a run and is never overwritten; choose another output_dir=")
    if path.is_dir() and any(path.iterdir()):
        raise UserError(f"{path} is not empty; choose an output_dir= that does not exist yet or is empty")


# A staging directory's name says which process made it (`.NAME.staging-PID@HOST-XXXXXXXX`), so `llmkit clean` can
# tell one whose process is gone (killed outright, the machine lost) from one still being written.
STAGING_NAME = re.compile(r"^\..+\.staging-(?:(?P<pid>\d+)@(?P<host>[^/]+)-)?[^-]+$")


def make_staging(final: Path, prefix: str) -> Path:
    """A fresh staging directory beside `final` (its parents made first), named for this process."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}@{socket.gethostname()}-", dir=final.parent))
    except OSError as error:
        raise place_error(error, making=final) from None


class StagedDir:
    """A directory written in a staging area next to `final` and renamed onto it by `commit()`. The process's live
    ones are known (`discard_live`), so a failure that ends the process without unwinding leaves none behind."""

    _live: set[StagedDir] = set()

    def __init__(self, final: Path):
        refuse_existing_run(final)
        self.final = final
        self.path = make_staging(final, f".{final.name}.staging-")
        StagedDir._live.add(self)

    def commit(self) -> Path:
        refuse_existing_run(self.final)
        if self.final.is_dir():
            self.final.rmdir()  # empty, checked above; rename needs it gone or empty
        os.rename(self.path, self.final)
        StagedDir._live.discard(self)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        StagedDir._live.discard(self)

    @classmethod
    def discard_live(cls) -> None:
        """Discard every staging directory this process has not committed (before it ends abruptly)."""
        for staged in list(cls._live):
            staged.discard()
