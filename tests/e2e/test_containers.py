"""containers/: the Dockerfile built for real with podman on a Debian bookworm base (the TensorRT-LLM base cannot be
pulled here), the main job run in it through containers/run.sh with its outputs on the host, and the bad-input
errors of run.sh and enroot.sh. Set-up and caching: tests/podman_runtime.py. Under CI (CI=true) a podman that
cannot be set up fails these tests; elsewhere they are skipped with the reason."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from conftest import REPO
from podman_runtime import IMAGE, Podman, podman_or_reason

RUN_SH = REPO / "containers" / "run.sh"
ENROOT_SH = REPO / "containers" / "enroot.sh"
IMAGE_USER = "10001:10001"


@pytest.fixture(scope="session")
def podman(tmp_path_factory) -> Podman:
    ready = podman_or_reason(tmp_path_factory.mktemp("build-context"))
    if isinstance(ready, str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the container tests: {ready}")
        pytest.skip(ready)
    return ready


def run_sh(podman: Podman, cwd: Path, *args: str, timeout: float = 120, **env: str):
    name = f"llmkit-test-{uuid.uuid4().hex[:8]}"
    environment = {**podman.env, "LLMKIT_ENGINE": "podman", "LLMKIT_IMAGE": IMAGE, "LLMKIT_GPUS": "none",
                   "LLMKIT_RUN_ARGS": f"--name {name}", **env}
    try:
        return subprocess.run(["bash", str(RUN_SH), *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env=environment)
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


def test_the_main_job_runs_in_the_container_and_writes_its_runs_on_the_host(podman, tmp_path):
    result = run_sh(podman, tmp_path, "pipeline", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    pipelines = list((tmp_path / "runs" / "mixtral-8x7b" / "cpu").glob("pipeline-*"))
    assert len(pipelines) == 1, pipelines
    root = pipelines[0]
    summary = json.loads((root / "pipeline.json").read_text())
    assert [row["step"] for row in summary] == [
        f"{scenario} {step}" for scenario in ("Offline", "Server") for step in ("performance", "accuracy", "TEST06")]
    for row in summary:
        # The run directories are the container's paths under /workspace, which is where runs/ is mounted.
        run_dir = tmp_path / row["run_dir"]
        assert (run_dir / "result.json").is_file() and (run_dir / "mlperf_log_detail.txt").is_file(), run_dir
    for scenario in ("offline", "server"):
        accuracy = json.loads((root / f"{scenario}-accuracy" / "result.json").read_text())["accuracy"]
        assert accuracy["incomplete"] == {}, accuracy["incomplete"]  # MBXP ran in the sandbox, in the container
        assert "mbxp" in accuracy["values"]
        assert (root / f"{scenario}-test06" / "TEST06" / "verify_accuracy.txt").is_file()
    assert (root / "submission" / "closed" / "llmkit-demo").is_dir()
    assert json.loads((root / "submission.check.json").read_text())["findings"]
    assert (tmp_path / "artifacts" / "models" / "tiny-mixtral").is_dir()
    # run.sh runs as the caller's user id: what the job wrote belongs to the caller.
    assert {path.stat().st_uid for path in root.rglob("*")} == {os.getuid()}
    assert podman("ps", "--all", "--quiet").stdout.strip() == ""


def test_the_image_is_labelled_with_the_commit_and_runs_llmkit_as_a_non_root_user(podman, tmp_path):
    config = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Config"]
    assert config["Labels"]["org.opencontainers.image.revision"] == podman.commit != ""
    assert config["Labels"]["org.opencontainers.image.base.name"] == "localhost/llmkit-test-base:bookworm"
    assert config["Entrypoint"] == ["llmkit"] and config["User"] == IMAGE_USER
    whoami = podman("run", "--rm", "--pull=never", "--network=none", "--entrypoint", "id", IMAGE, "-u")
    assert whoami.stdout.strip() == IMAGE_USER.split(":")[0]
    usage = podman("run", "--rm", "--pull=never", "--network=none", IMAGE)
    assert "pipeline" in usage.stdout and "usage: llmkit" in usage.stdout
    # The image keeps the kit's pins (a Debian base takes them all): torch is the CPU build.
    versions = podman("run", "--rm", "--pull=never", "--network=none", "--entrypoint", "python", IMAGE, "-c",
                      "import torch, transformers; print(torch.__version__, transformers.__version__)")
    assert versions.stdout.split() == ["2.13.0+cpu", "4.57.3"]


def test_another_user_id_writes_to_the_mounted_runs_directory(podman, tmp_path):
    runs = tmp_path / "elsewhere"
    runs.mkdir()
    uid, gid = (int(part) for part in IMAGE_USER.split(":"))
    os.chown(runs, uid, gid)
    result = run_sh(podman, tmp_path, "sample-data", "mixtral-8x7b", "runs/sample.pkl", LLMKIT_USER=IMAGE_USER,
                    LLMKIT_RUNS=str(runs))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (runs / "sample.pkl").stat().st_uid == uid


@pytest.mark.parametrize("setting, value, expected", [
    ("LLMKIT_IMAGE", "localhost/llmkit-no-such-image:1", r"image 'localhost/llmkit-no-such-image:1' is not in "
                                                         r"podman's local store; build it \(docker build .*\), pull it, or set "
                                                         r"LLMKIT_IMAGE to an image you have"),
    ("LLMKIT_MODELS", "/nonexistent/models", r"LLMKIT_MODELS=/nonexistent/models does not exist; create the "
                                             r"directory or point LLMKIT_MODELS at an existing one"),
    ("LLMKIT_ENGINE", "nerdctl", r"LLMKIT_ENGINE=nerdctl is not supported; use docker or podman"),
])
def test_run_sh_bad_input_is_one_sentence_and_exit_2(podman, tmp_path, setting, value, expected):
    result = run_sh(podman, tmp_path, "--help", **{setting: value})
    assert result.returncode == 2
    assert re.fullmatch(f"run.sh: {expected}\n", result.stderr), result.stderr
    assert result.stdout == ""


def enroot_sh(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LLMKIT_")}
    return subprocess.run(["bash", str(ENROOT_SH), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**environment, **env, "PATH": "/usr/bin:/bin"})


def test_enroot_flags_are_the_mounts_and_workdir_of_run_sh(tmp_path):
    models, sqsh = tmp_path / "models", tmp_path / "llmkit.sqsh"
    models.mkdir()
    sqsh.write_bytes(b"hsqs")
    result = enroot_sh(tmp_path, "flags", "llmkit.sqsh", LLMKIT_MODELS=str(models), LLMKIT_CONTAINER_NAME="llmkit")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"--container-image={sqsh} --container-mounts={models}:/models:ro,{tmp_path}/artifacts:/workspace/artifacts,"
        f"{tmp_path}/runs:/workspace/runs --container-workdir=/workspace --container-name=llmkit\n")
    registry = enroot_sh(tmp_path, "flags", "nvcr.io/nvidia/tensorrt-llm/release:1.2.1")
    assert registry.stdout.startswith("--container-image=nvcr.io#nvidia/tensorrt-llm/release:1.2.1 ")
    exported = enroot_sh(tmp_path, "export", "llmkit.sqsh")
    shell = subprocess.run(["bash", "-c", exported.stdout + 'printf "%s" "$LLMKIT_SRUN_CONTAINER_FLAGS"'],
                           capture_output=True, text=True, check=True)
    assert shell.stdout == enroot_sh(tmp_path, "flags", "llmkit.sqsh").stdout.rstrip("\n")


@pytest.mark.parametrize("args, env, expected", [
    (("flags", "missing.sqsh"), {}, "the squashfs image missing.sqsh does not exist; make it with "
                                    "containers/enroot.sh import IMAGE missing.sqsh"),
    (("flags", "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"), {"LLMKIT_DATA": "/nonexistent/data"},
     "LLMKIT_DATA=/nonexistent/data does not exist; create the directory or point LLMKIT_DATA at an existing one"),
    (("import", "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"), {},
     "enroot is not installed here; run this on a node that has enroot (with pyxis for srun), or import there"),
])
def test_enroot_sh_bad_input_is_one_sentence_and_exit_2(tmp_path, args, env, expected):
    result = enroot_sh(tmp_path, *args, **env)
    assert (result.returncode, result.stderr, result.stdout) == (2, f"enroot.sh: {expected}\n", "")


def test_the_dockerfile_copies_every_package_of_the_kit():
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = set(re.findall(r"^COPY (\S+)/ /opt/llmkit/src/\1/$", (REPO / "containers" / "Dockerfile").read_text(),
                            flags=re.M))
    assert {pattern.rstrip("*") for pattern in packages["include"]} | {"conf"} <= copied


def test_the_pip_plan_keeps_the_base_images_packages(tmp_path):
    # A "base image" package outside the interpreter's prefix: the plan keeps it at its version, never the kit's.
    base = tmp_path / "base"
    dist = base / "torch-2.10.0a0+nv25.12.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.10.0a0+nv25.12\n")
    out = tmp_path / "plan"
    result = subprocess.run(
        [sys.executable, str(REPO / "containers" / "pip_plan.py"), str(REPO / "requirements.txt"),
         str(REPO / "constraints.txt"), str(out)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(base)})
    assert result.returncode == 0, result.stderr
    assert "torch" not in {line.split("==")[0] for line in (out / "requirements.txt").read_text().split()}
    constraints = (out / "constraints.txt").read_text().splitlines()
    assert "torch==2.10.0a0+nv25.12" in constraints and "torch==2.13.0" not in constraints
    assert "transformers==4.57.3" in (out / "requirements.txt").read_text().splitlines()
    assert (out / "base-packages.txt").read_text() == "torch==2.10.0a0+nv25.12  # the kit pins torch==2.13.0\n"
