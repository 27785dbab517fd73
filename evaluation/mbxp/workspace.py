"""Each worker slot's writable area (the program's work directory, /tmp and /dev/shm), capped in total size.

As root, each slot's area is a tmpfs of `max_disk_mb` (and a cap on inodes), mounted in a mount namespace of the
evaluation's own, which a small holder process keeps alive: the host never sees these mounts, and they vanish with
the holder, even when the evaluation is killed. The sandboxes enter that namespace before bubblewrap starts (it
cannot size a tmpfs itself before 0.10); the evaluator reaches the files through /proc/<holder>/root.

Without root no tmpfs can be mounted: the areas are plain directories, each file capped by RLIMIT_FSIZE but not
their total. The same holds, with a warning, as root where no mount namespace can be made (a container without
CAP_SYS_ADMIN).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evaluation.mbxp.linux import PR_SET_PDEATHSIG, prctl

log = logging.getLogger(__name__)

SUBDIRS = ("work", "tmp", "shm")

# Runs as the holder: a private mount namespace with one size-capped tmpfs per slot, kept until it is killed.
_HOLDER = r"""
import ctypes, json, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
def check(result, what):
    if result != 0:
        print(f"error: {what}: {os.strerror(ctypes.get_errno())}", flush=True)
        sys.exit(1)
check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
check(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None), "making the mounts private")  # MS_REC | MS_PRIVATE
for target, options in json.loads(sys.argv[1]):
    check(libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0x2 | 0x4, options.encode()),  # MS_NOSUID | MS_NODEV
          f"mounting a tmpfs on {target}")
print("ready", flush=True)
while True:
    signal.pause()
"""


@dataclass(frozen=True)
class Area:
    """A slot's area: `inside` is its path where the sandboxes run, `outside` the same place as we see it."""

    inside: Path
    outside: Path
    uid: int | None

    def new_run(self, number: int) -> Path:
        """A fresh run directory holding empty work, tmp and shm directories; returns its `outside` path."""
        run = self.outside / f"run-{number}"
        run.mkdir(mode=0o700)
        for name in SUBDIRS:
            (run / name).mkdir(mode=0o700)
        if self.uid is not None:
            for path in (run, *(run / name for name in SUBDIRS)):
                os.chown(path, self.uid, self.uid)
        return run

    def inside_of(self, path: Path) -> Path:
        return self.inside / path.relative_to(self.outside)


class Workspaces:
    """The slots' areas, and the mount namespace the sandboxes must enter (None without root)."""

    def __init__(self, areas: list[Area], namespace_fd: int | None, capped: bool):
        self.areas, self.namespace_fd, self.capped = areas, namespace_fd, capped


def _pdeathsig() -> None:
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _start_holder(mounts: list[tuple[str, str]]) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-I", "-c", _HOLDER, json.dumps(mounts)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_pdeathsig)
    answer = holder.stdout.readline().strip()
    if answer != "ready":
        holder.kill()
        holder.wait()
        raise OSError(f"the sandbox mount namespace could not be set up ({answer or 'no answer'})")
    return holder


@contextlib.contextmanager
def open_workspaces(root: Path, uids: list[int | None], max_disk_mb: int, max_files: int) -> Iterator[Workspaces]:
    slots = [root / f"slot-{n}" for n in range(len(uids))]
    for slot, uid in zip(slots, uids):
        slot.mkdir(mode=0o700)
        if uid is not None:
            os.chown(slot, uid, uid)
    if os.geteuid() != 0:
        yield Workspaces([Area(slot, slot, uid) for slot, uid in zip(slots, uids)], None, capped=False)
        return
    mounts = [(str(slot), f"size={max_disk_mb}m,nr_inodes={max_files},mode=0700,uid={uid},gid={uid}")
              for slot, uid in zip(slots, uids)]
    try:
        holder = _start_holder(mounts)
    except OSError as error:
        log.warning("MBXP work directories are not size-capped: %s", error)
        yield Workspaces([Area(slot, slot, uid) for slot, uid in zip(slots, uids)], None, capped=False)
        return
    namespace_fd = None
    try:
        namespace_fd = os.open(f"/proc/{holder.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        view = Path(f"/proc/{holder.pid}/root")
        areas = [Area(slot, view / slot.relative_to("/"), uid) for slot, uid in zip(slots, uids)]
        yield Workspaces(areas, namespace_fd, capped=True)
    finally:
        if namespace_fd is not None:
            os.close(namespace_fd)
        holder.kill()
        holder.wait()
        holder.stdout.close()
