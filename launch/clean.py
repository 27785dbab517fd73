"""`llmkit clean [--yes] [ROOT ...]`: find the staging directories (`.NAME.staging-*`) that no process is writing any
more, under the runs and artifacts roots (default: runs and artifacts, where they exist), and remove them with --yes.

The kit removes its own staging directory when a run fails or is stopped; one is left only when its process was
killed outright (SIGKILL, the OOM killer, a lost machine). A staging directory is stale when the process named in
it is gone from this host; one made on another host, or by a kit older than these names, is listed as unknown and
removed only with --all.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
from pathlib import Path

from llmkit.rundir import STAGING_NAME

DEFAULT_ROOTS = [Path("runs"), Path("artifacts")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_dirs(roots: list[Path]) -> list[tuple[Path, str]]:
    """Every staging directory under the roots, each with 'stale', 'live' or 'unknown (why)'."""
    found, host = [], socket.gethostname()
    for root in roots:
        for directory, subdirs, _ in os.walk(root):
            for name in list(subdirs):
                match = STAGING_NAME.match(name)
                if match is None:
                    continue
                subdirs.remove(name)  # never look inside one
                pid, made_on = match.group("pid"), match.group("host")
                if pid is None:
                    state = "unknown (made by an older kit)"
                elif made_on != host:
                    state = f"unknown (made on {made_on})"
                else:
                    state = "live" if _alive(int(pid)) else "stale"
                found.append((Path(directory) / name, state))
    return found


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(prog="llmkit clean", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: llmkit clean --yes runs artifacts")
    parser.add_argument("roots", nargs="*", type=Path, help="default: runs and artifacts, where they exist")
    parser.add_argument("--yes", action="store_true", help="remove the stale ones (without it: only list them)")
    parser.add_argument("--all", action="store_true", help="with --yes, remove the unknown ones too (never live ones)")
    args = parser.parse_args()
    missing = [str(root) for root in args.roots if not root.is_dir()]
    if missing:
        sys.stderr.write(f"llmkit: error: {', '.join(missing)} is not a directory; name the runs_root or "
                         "artifacts_root to clean\n")
        raise SystemExit(2)
    found = staging_dirs(args.roots or [root for root in DEFAULT_ROOTS if root.is_dir()])
    removable = [(path, state) for path, state in found if state == "stale" or (args.all and state != "live")]
    failed = []
    for path, state in found:
        verb, size = state, _size(path)
        if args.yes and (path, state) in removable:
            try:
                shutil.rmtree(path)
                verb = "removed"
            except OSError as error:
                verb = "not removed"
                failed.append(f"{path} ({error.strerror or error}{f' at {error.filename}' if error.filename else ''})")
        sys.stdout.write(f"{verb:>11}  {size / 2**20:9.1f} MiB  {path}\n")
    if failed:
        sys.stderr.write(f"llmkit: error: could not remove {', '.join(failed)}; fix that and run llmkit clean --yes "
                         "again\n")
        raise SystemExit(1)
    stale = sum(1 for _, state in found if state == "stale")
    if not found:
        sys.stdout.write("no staging directories\n")
    elif not args.yes and removable:
        sys.stdout.write(f"{stale} stale; run llmkit clean --yes to remove them\n")


if __name__ == "__main__":
    main()
