"""An evaluation's sandbox slots: their uids, cgroups and areas, held for the evaluation and released after it."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from evaluation.mbxp.cgroups import open_cgroups
from evaluation.mbxp.identities import lease_uids
from evaluation.mbxp.linux import reaping_orphans, tasks_of_uid
from evaluation.mbxp.sandbox import Limits, Sandbox
from evaluation.mbxp.workspace import open_workspaces

log = logging.getLogger(__name__)


def stage_packages(source: Path, root: Path) -> Path | None:
    """A world-readable copy of the npm packages under the sandboxes' root, or None if there are none.

    The virtual environment may sit in a directory only its owner can enter (mktemp -d, /root), which the slot
    uids could not read.
    """
    if not source.is_dir():
        return None
    target = root / "node_modules"
    # No @types: tsc would find @types/node in the packages directory above the work directory and compile MBXP's
    # tests cleanly, which the reference does not count as compiled (see runner.run_problem).
    shutil.copytree(source, target, symlinks=True,
                    ignore=lambda directory, names: ["@types"] if Path(directory) == source else [])
    for directory, _, files in os.walk(target):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | 0o444)
    return target


@contextlib.contextmanager
def open_sandboxes(workers: int, limits: Limits, packages: Path | None = None) -> Iterator[list[Sandbox]]:
    """Up to `workers` sandboxes (fewer when other evaluations hold the uids), with `packages` staged for them."""
    root = Path(tempfile.mkdtemp(prefix="llmkit-mbxp-"))
    os.chmod(root, 0o711)  # slot uids may traverse to their own areas and the packages, not list them
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        staged = stage_packages(packages, root) if packages is not None else None
        uids: list[int | None] = stack.enter_context(lease_uids(workers)) if os.geteuid() == 0 else [None] * workers
        cgroups = stack.enter_context(open_cgroups())
        spaces = stack.enter_context(open_workspaces(root, uids, limits.max_disk_mb, limits.max_files))
        stack.enter_context(reaping_orphans())
        if cgroups is None:
            log.warning("no cgroup can be made here for MBXP programs: their memory is limited by RLIMIT_AS, which "
                        "does not count tmpfs files")
        log.info("MBXP sandboxes: %d slots, uids %s, memory limit by %s, work areas %s", len(uids),
                 uids if uids[0] is not None else "(ours)", f"cgroup v{cgroups.version}" if cgroups else "RLIMIT_AS",
                 f"capped at {limits.max_disk_mb} MB" if spaces.capped else "not size-capped")
        # Without root every program runs under our uid (see Sandbox.process_limit); our pool threads count too.
        shared = None if os.geteuid() == 0 else tasks_of_uid(os.getuid()) + len(uids) * (limits.max_processes + 1)
        yield [Sandbox(n, limits, area, uid, cgroups, spaces.namespace_fd, staged, root / f"slot-{n}.out", shared)
               for n, (area, uid) in enumerate(zip(spaces.areas, uids))]
