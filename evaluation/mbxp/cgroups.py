"""A cgroup per program: a memory limit that counts everything, CPU accounting, and a kill of exactly its processes.

The memory limit counts what RLIMIT_DATA misses: shared anonymous memory, tmpfs files, page cache and kernel
memory. Two layouts are supported:

- cgroup v2 with the memory controller: `memory.max` (and `memory.swap.max` 0), `memory.events` for OOM kills,
  `cpu.stat` for CPU time. The program cgroups live under our own cgroup when it already delegates memory,
  else (as root) under the hierarchy's root, since our own cgroup usually holds processes and so cannot delegate.
- cgroup v1: the memory hierarchy (`memory.limit_in_bytes`, plus `memory.memsw.limit_in_bytes` where swap is
  accounted, and the `oom_kill` count of `memory.oom_control`), under our own memory cgroup; with the cpuacct
  hierarchy as well where we may write there, for CPU time.

Where neither can be written (not root and nothing delegated), `open_cgroups` yields None and the sandbox falls back
to RLIMIT_AS.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evaluation.mbxp.linux import is_live, signal_quietly

log = logging.getLogger(__name__)


def _mounts() -> list[tuple[Path, str, set[str]]]:
    """(mount point, fs type, super options) of each cgroup filesystem."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], set(fields[separator + 3].split(","))
        if fstype in ("cgroup", "cgroup2"):
            found.append((Path(fields[4]), fstype, options))
    return found


def _own_paths() -> dict[str, str]:
    """Our cgroup path per v1 controller, and under "" the v2 one."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _write(path: Path, value: str) -> None:
    with path.open("w") as f:
        f.write(value)


def _read_key(path: Path, key: str) -> int:
    """The value of `key` in a flat keyed file (memory.events, memory.oom_control, cpu.stat), 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (FileNotFoundError, ValueError):
        pass
    return 0


@dataclass(frozen=True)
class ProgramCgroup:
    """One program's cgroup: `memory` (v1 memory or v2) and, where available, `cpu` (v1 cpuacct or the same v2)."""

    version: int
    memory: Path
    cpu: Path | None

    def directories(self) -> list[Path]:
        return [self.memory] + ([self.cpu] if self.cpu is not None and self.cpu != self.memory else [])

    def join(self) -> None:
        """Move the calling process here (run in the child before exec, still as root)."""
        for directory in self.directories():
            _write(directory / "cgroup.procs", str(os.getpid()))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.memory / "cgroup.procs").read_text().split() if is_live(int(p))]
        except FileNotFoundError:
            return []

    def kill(self, grace_s: float = 5.0) -> None:
        """SIGKILL every live process in the cgroup (only ours: nothing else is ever put in it)."""
        deadline = time.monotonic() + grace_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                signal_quietly(pid)
            time.sleep(0.01)

    def out_of_memory(self) -> bool:
        if self.version == 2:
            return _read_key(self.memory / "memory.events", "oom_kill") > 0
        return _read_key(self.memory / "memory.oom_control", "oom_kill") > 0

    def cpu_seconds(self) -> float | None:
        if self.cpu is None:
            return None
        if self.version == 2:
            return _read_key(self.cpu / "cpu.stat", "usage_usec") / 1e6
        try:
            return int((self.cpu / "cpuacct.usage").read_text()) / 1e9
        except (FileNotFoundError, ValueError):
            return None

    def remove(self) -> None:
        for directory in self.directories():
            for _ in range(50):  # a just-killed process may take a moment to leave
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                log.warning("could not remove the sandbox cgroup %s", directory)


class Cgroups:
    """The evaluation's parent cgroup(s); `create` makes one program's cgroup with its memory limit."""

    def __init__(self, version: int, memory: Path, cpu: Path | None):
        self.version, self.memory, self.cpu = version, memory, cpu
        self._numbers = itertools.count(1)  # next() is atomic: slots create theirs from several threads

    def create(self, name: str, memory_bytes: int) -> ProgramCgroup:
        leaf = f"{name}-{next(self._numbers)}"
        cgroup = ProgramCgroup(self.version, self.memory / leaf, None if self.cpu is None else self.cpu / leaf)
        try:
            for directory in cgroup.directories():
                directory.mkdir()
            if self.version == 2:
                _write(cgroup.memory / "memory.max", str(memory_bytes))
                if (cgroup.memory / "memory.swap.max").exists():
                    _write(cgroup.memory / "memory.swap.max", "0")
            else:
                _write(cgroup.memory / "memory.limit_in_bytes", str(memory_bytes))
                if (cgroup.memory / "memory.memsw.limit_in_bytes").exists():
                    _write(cgroup.memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def directories(self) -> list[Path]:
        return [self.memory] + ([self.cpu] if self.cpu is not None and self.cpu != self.memory else [])


def _v2_parent(mount: Path, own: str) -> Path | None:
    """Where program cgroups with a memory limit may be made in this cgroup2 hierarchy, or None."""
    candidates = [mount / own.lstrip("/")]
    if os.geteuid() == 0:
        candidates.append(mount)
    for base in candidates:
        try:
            if "memory" in (base / "cgroup.subtree_control").read_text().split():
                return base
        except OSError:
            continue
    return None


def _make_v2(mount: Path, own: str, name: str) -> Cgroups | None:
    base = _v2_parent(mount, own)
    if base is None:
        return None
    parent = base / name
    parent.mkdir()
    try:
        _write(parent / "cgroup.subtree_control", "+memory")
    except OSError:
        parent.rmdir()
        raise
    return Cgroups(2, parent, parent)


def _make_v1(mounts: list[tuple[Path, str, set[str]]], own: dict[str, str], name: str) -> Cgroups | None:
    def hierarchy(controller: str) -> Path | None:
        for mount, fstype, options in mounts:
            if fstype == "cgroup" and controller in options and controller in own:
                return mount / own[controller].lstrip("/")
        return None

    memory_base = hierarchy("memory")
    if memory_base is None:
        return None
    memory = memory_base / name
    memory.mkdir()
    cpu = None
    cpu_base = hierarchy("cpuacct")
    if cpu_base is not None:
        cpu = memory if cpu_base == memory_base else cpu_base / name
        try:
            if cpu != memory:
                cpu.mkdir()
        except OSError:
            cpu = None  # no CPU accounting; a SIGKILL is then told apart by the rest (see sandbox.Sandbox.run)
    return Cgroups(1, memory, cpu)


@contextlib.contextmanager
def open_cgroups() -> Iterator[Cgroups | None]:
    """The evaluation's cgroups, removed at the end; None where this machine or user has none to give."""
    name = f"llmkit-mbxp-{os.getpid()}-{secrets.token_hex(4)}"
    mounts, own = _mounts(), _own_paths()
    attempts = [lambda mount=mount: _make_v2(mount, own[""], name)
                for mount, fstype, _ in mounts if fstype == "cgroup2" and "" in own]
    attempts.append(lambda: _make_v1(mounts, own, name))
    cgroups = None
    for attempt in attempts:
        try:
            cgroups = attempt()
        except OSError as error:
            log.debug("no sandbox cgroups here: %s", error)
        if cgroups is not None:
            break
    try:
        yield cgroups
    finally:
        if cgroups is not None:
            for directory in cgroups.directories():
                with contextlib.suppress(OSError):
                    directory.rmdir()
