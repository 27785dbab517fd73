"""Run untrusted programs: no network, a read-only filesystem but for their own directory, limits, clean kill.

Each program runs under bubblewrap (own network, PID, IPC and user namespaces; `/` read-only; a private /tmp; only
its work directory writable) with resource limits (CPU time, memory, processes, file size, open files) and a
wall-clock timeout after which its whole process tree is killed. When the evaluator runs as root, each worker slot
runs its programs as a uid of its own, so the process limit binds (the kernel never applies it to root) and one
program's fork bomb cannot starve another's.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SLOT_UID_BASE = 61000
OUTPUT_TAIL_BYTES = 2000


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 20.0
    compile_timeout_s: float = 100.0
    memory_mb: int = 2048
    max_processes: int = 64
    max_file_mb: int = 16
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
    """One worker slot: its own uid (as root) and work directories under `root`."""

    def __init__(self, slot: int, limits: Limits, root: Path):
        self.limits = limits
        self.root = root
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
        command = [
            "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--bind", str(workdir), str(workdir), "--unshare-all", "--die-with-parent", "--new-session",
            "--chdir", str(workdir), *argv,
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "TMPDIR": str(workdir),
               "LANG": "C.UTF-8", "NODE_PATH": str(_node_path())}
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
        """Kill the program's session, then anything its uid still runs (a fork bomb's stragglers)."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        if self.uid is not None:
            _kill_uid(self.uid)

    def cleanup(self, workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)


def _node_path() -> Path:
    from evaluation.mbxp.languages import node_modules_dir

    return node_modules_dir()


def _kill_uid(uid: int) -> None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
