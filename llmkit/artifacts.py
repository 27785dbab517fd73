"""Content-keyed artifacts: a directory per key of everything that determines it, with a manifest.json.

A stage builds into a staging directory that is renamed into place when complete, so a half-built artifact is never
trusted; an artifact whose key exists is reused unless forced; forcing keeps the previous one beside it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from llmkit.errors import UserError, place_error
from llmkit.rundir import make_staging

# The override that rebuilds an artifact of each kind over an existing one (the old one is kept beside it).
FORCE_KEYS = {"calibration": "calibration.force", "checkpoints": "quantize.force", "engines": "build.force"}
log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VERSIONED_PACKAGES = ("llmkit", "torch", "transformers", "tokenizers", "sentencepiece", "tiktoken", "nvidia-modelopt")


def content_key(inputs: dict) -> str:
    """A short stable hash of the inputs (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def remembered_sha256(files: list[Path], memo: Path) -> dict[Path, str]:
    """Each file's sha256, remembered in `memo` by its path, size and modification time, so a file of hundreds of GB
    is read once, not on every run. The memo is best effort: where it cannot be written, the next call hashes again."""
    try:
        known = json.loads(memo.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        known = {}
    digests = {}
    for path in files:
        stat = path.stat()
        stamp = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if stamp not in known:
            known[stamp] = file_sha256(path)
        digests[path] = known[stamp]
    staged = memo.with_name(f".{memo.name}.{os.getpid()}")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(json.dumps(known, indent=0))
        os.replace(staged, memo)
    except OSError:
        staged.unlink(missing_ok=True)
    return digests


def files_fingerprint(files: list[Path], memo: Path) -> str:
    """sha256 over the files' names and contents (each file's digest remembered in `memo`)."""
    digest = hashlib.sha256()
    for path, sha in sorted(remembered_sha256(files, memo).items()):
        digest.update(f"{path.name}:{sha}\n".encode())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    found = {}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{directory} has no {MANIFEST}, so it is not a finished llmkit artifact") from None
    except json.JSONDecodeError:
        raise UserError(f"{path} is damaged (not JSON); rebuild the artifact with force=true") from None


def _readable(tree: Path) -> None:
    """Give a staged artifact the umask's permissions (mkdtemp and some writers make them owner-only), so another
    user, such as a container's, can read it."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def artifact_path(root: Path, kind: str, inputs: dict) -> Path:
    return root / kind / content_key(inputs)


def build_or_reuse(root: Path, kind: str, inputs: dict, build: Callable[[Path], dict], force: bool = False,
                   staging: Path | None = None) -> Path:
    """The artifact for `inputs` under root/kind/<key>, built by `build(staging_dir) -> manifest facts` if needed.
    `staging` names the staging directory when other processes write into it too (a multi-rank build)."""
    key = content_key(inputs)
    final = root / kind / key
    if final.is_dir() and not force:
        manifest = read_manifest(final)
        if manifest.get("inputs") == json.loads(json.dumps(inputs, default=str)):
            log.info("reusing %s artifact %s", kind, final)
            return final
        raise UserError(f"{final} holds another {kind} artifact under the same key; remove it or pass "
                        f"{FORCE_KEYS.get(kind, 'force')}=true")
    if staging is None:
        staging = make_staging(final, f".{key}.staging-")
    else:
        try:
            staging.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise place_error(error, making=final) from None
    started = time.perf_counter()
    try:
        facts = build(staging)
        manifest = {"kind": kind, "key": key, "inputs": inputs, "versions": versions(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "build_seconds": round(time.perf_counter() - started, 3), **facts}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        _readable(staging)
        if final.exists():  # forced: the previous artifact is kept, never overwritten
            os.rename(final, final.with_name(f"{key}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"))
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("built %s artifact %s", kind, final)
    return final
