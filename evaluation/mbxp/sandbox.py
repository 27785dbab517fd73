"""Run untrusted programs: no network, a read-only filesystem but for their own directory, limits, clean kill.

Each program runs under bubblewrap (own network, PID, IPC and user namespaces; `/` read-only; a private /tmp; only
its work directory writable) with resource limits (CPU time, memory, processes, file size, open files) and a
wall-clock timeout after which its whole process tree is killed. When the evaluator runs as root, each worker slot
runs its programs as a uid of its own, so the process limit binds (the kernel never applies it to root) and one
program's fork bomb cannot starve another's.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SLOT_UID_BASE = 61000
# Programs see the system's runtimes only (a caller's PATH may hold directories the slot uids cannot read).
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_TAIL_BYTES = 2000


@dataclass(frozen=True)
class Limits:
    """Per-program limits; the defaults live in EvaluationConfig (runner.limits_of builds these from it)."""

    timeout_s: float
    compile_timeout_s: float
    memory_mb: int
    max_processes: int
    max_file_mb: int
    max_open_files: int = 256


@dataclass(frozen=True)
class Execution:
    returncode: int | None  # None when killed at the timeout
    timed_out: bool
    output: str  # the tail of stdout+stderr


def sandbox_unavailable() -> str | None:
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed; model-written code is never run without a sandbox"
    return None


class Sandbox:
    """One worker slot: its own uid (as root) and work directories under `root`.

    `node_modules` (JavaScript packages the programs may require) must lie where the slot uids can read it: the
    runner stages a copy under `root`, since the virtual environment may sit in a directory only its owner can enter.
    """

    def __init__(self, slot: int, limits: Limits, root: Path, node_modules: Path | None = None):
        self.limits = limits
        self.root = root
        self.node_modules = node_modules
        self.uid = SLOT_UID_BASE + slot if os.geteuid() == 0 else None

    def workdir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="mbxp-", dir=self.root))
        if self.uid is not None:
            os.chown(path, self.uid, self.uid)
        return path

    def _limit(self, timeout: float):
        limits, uid = self.limits, self.uid

        def apply() -> None:
            cpu = int(timeout) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_mb << 20,) * 2)
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes,) * 2)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb << 20,) * 2)
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return apply

    def run(self, argv: tuple[str, ...], workdir: Path, timeout: float) -> Execution:
        # The private /tmp hides everything under the host's /tmp: the staged packages are bound again after it.
        packages = ["--ro-bind", str(self.node_modules), str(self.node_modules)] if self.node_modules else []
        command = [
            "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", *packages,
            "--bind", str(workdir), str(workdir), "--unshare-all", "--die-with-parent", "--new-session",
            "--chdir", str(workdir), *argv,
        ]
        env = {"PATH": SANDBOX_PATH, "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
               "NODE_PATH": str(self.node_modules or "")}
        log_path = workdir.parent / f"{workdir.name}.out"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=self._limit(timeout))
            try:
                returncode, timed_out = process.wait(timeout=timeout), False
            except subprocess.TimeoutExpired:
                returncode, timed_out = None, True
            finally:
                self._kill(process)
        output = _tail(log_path)
        log_path.unlink(missing_ok=True)
        return Execution(returncode, timed_out, output)

    def _kill(self, process: subprocess.Popen) -> None:
        """End the program's whole tree and leave no zombie behind.

        Killing the namespace's init (the outer bwrap's child) makes the kernel kill and reap everything in the
        PID namespace. The outer bwrap exits without reaping that init, so it is orphaned: to us when we are the
        child subreaper (see `reaping_orphans`), and we reap it, since until then it counts against the slot's
        process limit.
        """
        for child in _children(process.pid):
            _signal(child)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal(-process.pid)
            process.wait()
        if self.uid is not None:
            _kill_uid(self.uid)
            _reap_orphans(self.uid)

    def cleanup(self, workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stat(pid_dir: Path) -> tuple[str, int] | None:
    """(state, parent pid) of a /proc/<pid> entry, or None once it is gone."""
    try:
        fields = pid_dir.joinpath("stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and (stat := _stat(entry)) is not None and stat[1] == pid]


def _live_pids_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or entry.stat().st_uid != uid:
                continue
        except FileNotFoundError:
            continue
        stat = _stat(entry)
        if stat is not None and stat[0] != "Z":
            pids.append(int(entry.name))
    return pids


PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def reaping_orphans():
    """Make this process the reaper of orphans in its subtree while sandboxes run (root only, Linux)."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _reap_orphans(uid: int) -> None:
    """Wait for our children that run as `uid`: orphaned namespace inits, which only this slot's uid owns."""
    for pid in _children(os.getpid()):
        try:
            if Path(f"/proc/{pid}").stat().st_uid != uid:
                continue
            _signal(pid)
            os.waitpid(pid, 0)
        except (FileNotFoundError, ChildProcessError):
            continue


def _kill_uid(uid: int, grace_s: float = 5.0) -> None:
    """SIGKILL whatever of `uid` still runs (nothing should: the namespace is gone)."""
    deadline = time.monotonic() + grace_s
    while (pids := _live_pids_of(uid)) and time.monotonic() < deadline:
        for pid in pids:
            _signal(pid)
        time.sleep(0.02)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
