"""Run untrusted programs: no network, a narrow read-only view of the host, capped memory and disk, clean kill.

Each program runs under bubblewrap in its own network, PID, IPC, UTS and user namespaces. It sees only what the
runtimes need, read-only: /usr (with the /bin, /sbin and /lib* links or directories), a few /etc entries (the
dynamic linker's cache and configuration, alternatives, localtime, php and python configuration) and the staged
npm packages; /home, /root, /run, /var, /srv, /opt, /mnt, the host's /tmp and the checkout do not exist there. Its
writable places are its work directory, /tmp and /dev/shm, all in its slot's area (see workspace.py); the rest of
the sandbox's root and /dev are read-only.

Limits, per program:
- memory: a cgroup limit that counts everything (anonymous and shared memory, tmpfs files, page cache, kernel
  memory; see cgroups.py); without usable cgroups (not root and nothing delegated), RLIMIT_AS.
- disk: the slot's area is a tmpfs of `max_disk_mb` and `max_files` inodes (root only; without root, plain
  directories where only each file is capped, by RLIMIT_FSIZE).
- processes: RLIMIT_NPROC, which counts every task of a uid and never binds root. As root each slot has a uid of
  its own, so `max_processes` holds per program; without root all programs share our uid, so the evaluation's
  programs together get `max_processes` per slot beyond the tasks we already run.
- CPU time (RLIMIT_CPU), file size (RLIMIT_FSIZE), open files (RLIMIT_NOFILE), no core dumps; and a wall-clock
  timeout after which its whole tree is killed.

As root, each slot runs its programs under a uid that no other evaluation holds (identities.py), and its processes
are killed through its own cgroup, its PID namespace and its uid: nothing of another evaluation is ever touched.
A program that dies of a signal that neither we nor its limits sent (`Execution.outside_signal`) is reported as such,
so that the runner can run it again rather than score it as a failure.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from evaluation.mbxp.cgroups import Cgroups, ProgramCgroup
from evaluation.mbxp.linux import CLONE_NEWNS, children_of, kill_uid, reap_orphans, setns, signal_quietly
from evaluation.mbxp.workspace import Area

# Programs see the system's runtimes only (a caller's PATH may hold directories the sandbox does not show).
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_TAIL_BYTES = 2000
# Where the sandbox sees its work directory and the staged npm packages.
WORK = Path("/mbxp/work")
PACKAGES = Path("/mbxp/node_modules")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "php", "php.ini", "php.d")
# Signals a program does not send itself in the normal course: when one ends it and we did not send it (timeout,
# cleanup) and its limits did not (the OOM killer at the cgroup limit, RLIMIT_CPU), something outside did.
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


@dataclass(frozen=True)
class Limits:
    """Per-program limits; the configurable ones come from EvaluationConfig (runner.limits_of builds these)."""

    timeout_s: float
    compile_timeout_s: float
    memory_mb: int
    max_processes: int
    max_file_mb: int
    max_open_files: int = 256
    # The total of the work directory, /tmp and /dev/shm (as root), and how many files they may hold.
    max_disk_mb: int = 64
    max_files: int = 8192


@dataclass(frozen=True)
class Execution:
    returncode: int | None  # None when killed at the timeout
    timed_out: bool
    output: str  # the tail of stdout+stderr
    out_of_memory: bool = False  # the OOM killer ended it at its cgroup's memory limit
    outside_signal: int | None = None  # it died of this signal, which neither we nor its limits sent


def sandbox_unavailable() -> str | None:
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed; model-written code is never run without a sandbox"
    return None


def ending_signal(returncode: int | None) -> int | None:
    """The signal the program died of: bwrap exits with 128+N when its child dies of signal N (so a program that
    exits with such a code looks the same), and Popen reports -N when bwrap itself dies of it."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + signal.NSIG:
        return returncode - 128
    return None


def cpu_limit_s(timeout: float) -> int:
    """RLIMIT_CPU's soft limit for a step with this wall-clock timeout (the hard one is a second more)."""
    return int(timeout) + 1


def outside_signal(returncode: int | None, timed_out: bool, out_of_memory: bool, cpu_seconds: float | None,
                   cpu_limit: int) -> int | None:
    """The signal that ended the program when it came from outside the evaluation, else None.

    Ours are the kill at the timeout, the OOM killer at the cgroup's memory limit and RLIMIT_CPU (SIGXCPU, then
    SIGKILL for a program that ignores it; told apart by the CPU time its cgroup used, where it has one).
    """
    sig = ending_signal(returncode)
    if sig not in OUTSIDE_SIGNALS or timed_out or out_of_memory:
        return None
    if sig == signal.SIGKILL and cpu_seconds is not None and cpu_seconds >= cpu_limit:
        return None
    return sig


@lru_cache(maxsize=1)
def _host_binds() -> tuple[str, ...]:
    """The host paths the runtimes need, read-only (links stay links)."""
    args: list[str] = []
    etc = [f"/etc/{name}" for name in ETC_ENTRIES] + sorted(map(str, Path("/etc").glob("python3*")))
    for path in [*SYSTEM_DIRS, *etc]:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return tuple(args)


def filesystem_view(run: Path, packages: Path | None) -> list[str]:
    """bubblewrap's arguments for the program's view of the host, with `run` its area's run directory."""
    args = [*_host_binds(), "--dev", "/dev", "--proc", "/proc", "--bind", str(run / "tmp"), "/tmp",
            "--bind", str(run / "shm"), "/dev/shm", "--bind", str(run / "work"), str(WORK)]
    if packages is not None:
        args += ["--ro-bind", str(packages), str(PACKAGES)]
    return args + ["--remount-ro", "/dev", "--remount-ro", "/"]


class Interrupted(Exception):
    """The evaluation was stopped (Ctrl-C): the slot runs nothing more."""


class Sandbox:
    """One worker slot: its uid (as root), its area, its cgroups; one program at a time.

    `packages` (the staged npm packages) must lie where the slot's uid can read them.
    """

    def __init__(self, slot: int, limits: Limits, area: Area, uid: int | None, cgroups: Cgroups | None,
                 namespace_fd: int | None, packages: Path | None, log_path: Path, process_limit: int | None = None):
        self.slot, self.limits, self.area, self.uid = slot, limits, area, uid
        self.cgroups, self.namespace_fd, self.packages, self.log_path = cgroups, namespace_fd, packages, log_path
        # RLIMIT_NPROC counts every task of the uid: the slot's own uid as root; without root, our uid, so the
        # pool passes the tasks we already have plus what all its slots may add.
        self.process_limit = process_limit if process_limit is not None else limits.max_processes
        self._runs = 0
        self._running: subprocess.Popen | None = None
        self._interrupted = False

    def interrupt(self) -> None:
        """Stop the slot from another thread: its running program's tree is killed and no other starts."""
        self._interrupted = True
        process = self._running
        if process is not None:
            for child in children_of(process.pid):
                signal_quietly(child)
            signal_quietly(-process.pid)

    def workdir(self) -> Path:
        """A fresh work directory (as the evaluator sees it), in a fresh run directory of the slot's area."""
        self._runs += 1
        return self.area.new_run(self._runs) / "work"

    def cleanup(self, workdir: Path) -> None:
        shutil.rmtree(workdir.parent, ignore_errors=True)

    def _prepare(self, timeout: float, cgroup: ProgramCgroup | None):
        limits, uid, namespace_fd, processes = self.limits, self.uid, self.namespace_fd, self.process_limit
        cpu, memory = cpu_limit_s(timeout), limits.memory_mb << 20

        def apply() -> None:
            if cgroup is not None:
                cgroup.join()
            if namespace_fd is not None:
                setns(namespace_fd, CLONE_NEWNS)
            # At the soft CPU limit the program gets SIGXCPU; only one that ignores it meets the SIGKILL after.
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            if cgroup is None:
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_NPROC, (processes,) * 2)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb << 20,) * 2)
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return apply

    def run(self, argv: tuple[str, ...], workdir: Path, timeout: float) -> Execution:
        if self._interrupted:
            raise Interrupted()
        command = ["bwrap", *filesystem_view(self.area.inside_of(workdir.parent), self.packages),
                   "--unshare-all", "--die-with-parent", "--new-session", "--chdir", str(WORK), *argv]
        env = {"PATH": SANDBOX_PATH, "HOME": str(WORK), "TMPDIR": "/tmp", "LANG": "C.UTF-8",
               "NODE_PATH": str(PACKAGES) if self.packages else ""}
        cgroup = self.cgroups.create(f"slot{self.slot}", self.limits.memory_mb << 20) if self.cgroups else None
        try:
            with self.log_path.open("wb") as log:
                process = subprocess.Popen(command, cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True,
                                           preexec_fn=self._prepare(timeout, cgroup))
                self._running = process
                try:
                    returncode, timed_out = process.wait(timeout=timeout), False
                except subprocess.TimeoutExpired:
                    returncode, timed_out = None, True
                finally:
                    self._running = None
                    self._kill(process, cgroup)
            out_of_memory = cgroup is not None and cgroup.out_of_memory()
            cpu_seconds = cgroup.cpu_seconds() if cgroup is not None else None
        finally:
            if cgroup is not None:
                cgroup.remove()
        if self._interrupted:
            raise Interrupted()  # killed by us: not a result, and not an outside kill to run again
        outside = outside_signal(returncode, timed_out, out_of_memory, cpu_seconds, cpu_limit_s(timeout))
        return Execution(returncode, timed_out, _tail(self.log_path), out_of_memory, outside)

    def _kill(self, process: subprocess.Popen, cgroup: ProgramCgroup | None) -> None:
        """End the program's whole tree and leave no zombie behind.

        Killing the namespace's init (the outer bwrap's child) makes the kernel kill and reap everything in the
        PID namespace. The outer bwrap exits without reaping that init, so it is orphaned: to us when we are the
        child subreaper (see linux.reaping_orphans), and we reap it, since until then it counts against the
        slot's process limit. The program's cgroup, and as root its uid, which this evaluation alone holds, catch
        anything else.
        """
        for child in children_of(process.pid):
            signal_quietly(child)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            signal_quietly(-process.pid)
            process.wait()
        if cgroup is not None:
            cgroup.kill()
        if self.uid is not None:
            if cgroup is None:
                kill_uid(self.uid)
            reap_orphans(self.uid)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
