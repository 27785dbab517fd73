"""The Linux calls the sandbox makes through libc (Python 3.11 has no os.setns), and /proc process helpers."""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

CLONE_NEWNS = 0x00020000
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), "prctl")


def signal_quietly(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stat_of(pid_dir: Path) -> tuple[str, int] | None:
    """(state, parent pid) of a /proc/<pid> entry, or None once it is gone."""
    try:
        fields = pid_dir.joinpath("stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1])


def is_live(pid: int) -> bool:
    stat = stat_of(Path(f"/proc/{pid}"))
    return stat is not None and stat[0] != "Z"


def children_of(pid: int) -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and (stat := stat_of(entry)) is not None and stat[1] == pid]


def live_pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or entry.stat().st_uid != uid:
                continue
        except FileNotFoundError:
            continue
        if is_live(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def tasks_of_uid(uid: int) -> int:
    """How many tasks (threads included, as RLIMIT_NPROC counts them) run under `uid`."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += sum(1 for _ in (entry / "task").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return count


def kill_uid(uid: int, grace_s: float = 5.0) -> None:
    """SIGKILL whatever of `uid` still runs. Only for a uid this evaluation holds (see identities.lease_uids)."""
    deadline = time.monotonic() + grace_s
    while (pids := live_pids_of_uid(uid)) and time.monotonic() < deadline:
        for pid in pids:
            signal_quietly(pid)
        time.sleep(0.02)


def reap_orphans(uid: int) -> None:
    """Wait for our children that run as `uid`: orphaned namespace inits, which only this slot's uid owns."""
    for pid in children_of(os.getpid()):
        try:
            if Path(f"/proc/{pid}").stat().st_uid != uid:
                continue
            signal_quietly(pid)
            os.waitpid(pid, 0)
        except (FileNotFoundError, ChildProcessError):
            continue


@contextlib.contextmanager
def reaping_orphans():
    """Make this process the reaper of orphans in its subtree while sandboxes run (root only)."""
    if os.geteuid() != 0:
        yield
        return
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0)
