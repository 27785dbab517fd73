"""Sandbox uids that belong to one evaluation only, so that concurrent evaluations never touch each other's programs.

As root, every worker slot runs its programs under a uid of its own (the kernel applies the process limit per uid
and never to root). A uid is taken from a fixed range by holding an exclusive flock on its lock file for the whole
evaluation; the kernel drops the lock when the evaluation exits, however it ends. Whatever still runs under a uid
when we take it is a leftover of an evaluation that is gone, and is killed.
"""
from __future__ import annotations

import contextlib
import fcntl
import grp
import logging
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

from evaluation.mbxp.linux import kill_uid
from llmkit.errors import UserError

log = logging.getLogger(__name__)

# 61000-61183: above systemd-homed's uids (60001-60513) and below systemd's DynamicUser range (61184-65519).
UID_FIRST = 61000
UID_COUNT = 184
UIDS = range(UID_FIRST, UID_FIRST + UID_COUNT)


def lock_dir() -> Path:
    base = Path("/run/lock")
    return (base / "llmkit-mbxp") if base.is_dir() else Path("/tmp/llmkit-mbxp-locks")


def _has_account(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


def _trusted_dir() -> Path:
    directory = lock_dir()
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise UserError(f"{directory} must be a directory owned by root and writable by root only (it holds the MBXP "
                        f"sandbox uid locks); remove it and evaluate again")
    return directory


@contextlib.contextmanager
def lease_uids(count: int) -> Iterator[list[int]]:
    """Up to `count` free sandbox uids, held until the context ends (root only)."""
    directory = _trusted_dir()
    held: list[tuple[int, int]] = []
    try:
        for uid in UIDS:
            if len(held) == count:
                break
            if _has_account(uid):
                continue
            fd = os.open(directory / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append((uid, fd))
        if not held:
            raise UserError(f"all {UID_COUNT} MBXP sandbox uids ({UIDS.start}-{UIDS.stop - 1}) are held by other "
                            f"evaluations; wait for one to finish or lower evaluation.workers")
        if len(held) < count:
            log.warning("only %d of %d MBXP sandbox uids are free (other evaluations hold the rest); running %d "
                        "worker slots", len(held), count, len(held))
        for uid, _ in held:
            kill_uid(uid)
        yield [uid for uid, _ in held]
    finally:
        for _, fd in held:
            os.close(fd)
