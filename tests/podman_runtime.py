"""Podman for the container tests, set up for real on this machine and cached between runs of the suite.

- podman, runc and debootstrap come from Debian (apt-get, as root) when missing;
- CONTAINERS_CONF: podman 4.3 here works only with runc and ulimits within root's hard limits;
- the base is Debian bookworm made by debootstrap (minbase) from the mirror apt uses, since no image registry is
  reachable: bookworm because its Python 3.11 is what the torch CPU wheel on this machine is built for. The rootfs
  tarball and the imported image are kept (~/.cache/llmkit/podman, or $LLMKIT_CACHE/podman), so only a first run
  pays for debootstrap;
- the image is containers/Dockerfile built on that base with KIT_BASE=debian: the kit's pinned CPU dependencies
  from PyPI, torch as the CPU wheel (pip download on this host, cached in ~/.cache/llmkit/wheels) given in the
  build context's containers/site/. Podman's layer cache keeps the dependency and runtime layers between runs.

`podman_or_reason()` returns a ready `Podman` or the reason it cannot be set up; each step's seconds are kept in
`Podman.timings` and written to <cache>/timings.json.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("LLMKIT_CACHE", Path.home() / ".cache" / "llmkit"))
BASE_IMAGE = "localhost/llmkit-test-base:bookworm"
IMAGE = "localhost/llmkit-test:latest"
PACKAGES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
CONTAINERS_CONF = """[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
"""


class SetupError(Exception):
    pass


@dataclass
class Podman:
    conf: Path
    timings: dict[str, float] = field(default_factory=dict)
    commit: str = ""  # the commit the image was built from (its org.opencontainers.image.revision)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and result.returncode != 0:
            raise SetupError(f"podman {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")
        return result

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)


def _run(command: list[str], timeout: float, what: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise SetupError(f"{what} failed (exit {result.returncode}): {(result.stderr or result.stdout)[-2000:]}")
    return result


def _install_packages(podman: Podman) -> None:
    missing = [package for command, package in PACKAGES.items() if shutil.which(command) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SetupError(f"{', '.join(missing)} missing and installing them needs root")
    if shutil.which("apt-get") is None:
        raise SetupError(f"{', '.join(missing)} missing and there is no apt-get to install them")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"], 900, "apt-get update", env=env)
    _run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", *missing],
         900, f"apt-get install {' '.join(missing)}", env=env)
    podman.timed("apt-get install " + " ".join(missing), started)


def debian_mirror() -> str:
    """The Debian mirror apt uses (deb822 sources or sources.list), else deb.debian.org."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for uri in re.findall(r"^URIs:\s*(\S+)", path.read_text(), flags=re.M):
            if uri.rstrip("/").endswith("/debian"):
                return uri
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for uri in re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", sources.read_text(), flags=re.M):
            return uri
    return "http://deb.debian.org/debian"


def _base_image(podman: Podman) -> None:
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    tarball = CACHE / "podman" / "debian-bookworm-minbase.tar"
    if not tarball.exists():
        started = time.monotonic()
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
        try:
            _run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), debian_mirror()], 1200, "debootstrap")
            for cached in (rootfs / "var/cache/apt/archives").glob("*.deb"):
                cached.unlink()
            partial = tarball.with_suffix(".partial")
            _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], 600, "tar of the Debian rootfs")
            partial.rename(tarball)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        podman.timed("debootstrap bookworm minbase", started)
    started = time.monotonic()
    podman("import", "--quiet", str(tarball), BASE_IMAGE, timeout=600)
    podman.timed("podman import of the base", started)


def _torch_wheel() -> Path:
    """The torch CPU wheel the kit pins, as this host's pip gives it (cached)."""
    wheels = CACHE / "wheels"
    pin = next(line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
               if line.startswith("torch=="))
    version = pin.split("==", 1)[1]
    found = sorted(wheels.glob(f"torch-{version}*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), pin], 1200,
             f"pip download {pin}")
        found = sorted(wheels.glob(f"torch-{version}*.whl"))
    if not found or "+cpu" not in found[0].name:
        raise SetupError(f"pip download {pin} gave no CPU wheel ({[p.name for p in found]}); the image must not "
                         "carry the CUDA build")
    return found[0]


def build_context(directory: Path) -> Path:
    """The working tree's files (tracked and not ignored), plus containers/site/: the torch CPU wheel and, where
    this host trusts an extra CA for HTTPS, its bundle."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, directory / name)
    site = directory / "containers" / "site"
    site.mkdir(parents=True, exist_ok=True)
    wheel = _torch_wheel()
    shutil.copy2(wheel, site / wheel.name)
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
    if bundle and Path(bundle).is_file():
        shutil.copy2(bundle, site / "ca-certificates.crt")
    return directory


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def build_image(podman: Podman, context: Path) -> None:
    started = time.monotonic()
    podman.commit = commit()
    result = podman("build", "--network=host", "--layers", "-f", "containers/Dockerfile",
                    "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "KIT_BASE=debian",
                    "--build-arg", f"LLMKIT_COMMIT={podman.commit}", "--target", "evaluation", "-t", IMAGE,
                    str(context), timeout=2400, check=False)
    podman.timed("podman build (evaluation target)", started)
    (CACHE / "podman" / "build.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SetupError(f"podman build failed: {(result.stdout + result.stderr)[-3000:]}")


def podman_or_reason(context: Path) -> Podman | str:
    if os.geteuid() != 0:
        return "podman is set up here as root (rootful, runc); this user is not root"
    (CACHE / "podman").mkdir(parents=True, exist_ok=True)
    conf = CACHE / "podman" / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    podman = Podman(conf)
    try:
        _install_packages(podman)
        _base_image(podman)
        build_image(podman, build_context(context))
    except (SetupError, subprocess.TimeoutExpired, OSError) as error:
        return f"podman could not be set up: {error}"
    finally:
        (CACHE / "podman" / "timings.json").write_text(json.dumps(podman.timings, indent=2) + "\n")
    return podman
