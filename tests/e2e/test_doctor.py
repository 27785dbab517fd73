"""`llmkit doctor`: the checks run for real on this machine, on fake GPU nodes (tests/fakes: nvidia-smi, trtllm-build
and TensorRT-LLM's package metadata) and against a real one-node Slurm cluster (tests/slurm_cluster.py)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import run_cli
from fakes import SITE, fake_toolchain_env
from launch.doctor_checks import Status, Target, check_slurm, check_trtllm
from llmkit.config.load import load

H200X8 = "8x NVIDIA H200|9.0|143771"
CONTAINER = "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
WIDE = {"COLUMNS": "400"}  # one table line per row


def table(stdout: str) -> dict[str, tuple[str, str, str]]:
    """check -> (status, found, fix) from the rich table (continuation lines joined)."""
    rows: dict[str, list[str]] = {}
    last = None
    for line in stdout.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:
            last = cells[0]
            rows[last] = cells[1:]
        elif last is not None:
            rows[last] = [f"{a} {b}".strip() for a, b in zip(rows[last], cells[1:])]
    return {name: (cells[0], cells[1], cells[2]) for name, cells in rows.items()}


def doctor(*overrides: str, env: dict | None = None, tmp_path: Path):
    return run_cli("llmkit", "doctor", f"runs_root={tmp_path / 'runs'}", *overrides, env={**WIDE, **(env or {})})


@pytest.mark.mpi  # the doctor's 2-rank hello
def test_the_cpu_system_can_run_here_and_the_gpu_checks_say_why_they_are_skipped(tmp_path):
    result = doctor(f"artifacts_root={tmp_path / 'art'}", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = table(result.stdout)
    assert list(rows) == ["python", "pins", "loadgen", "MPI", "GPUs", "TensorRT-LLM", "NCCL", "MBXP", "disk", "Slurm"]
    for name in ("python", "loadgen", "MPI", "MBXP", "disk"):
        assert rows[name][0] == "ok", rows[name]
    assert rows["pins"][0] in ("ok", "warn") and "pinned packages as pinned" in rows["pins"][1]
    assert "2 ranks said hello through mpirun" in rows["MPI"][1]
    assert "with the v6.0 round's seeds" in rows["loadgen"][1]
    assert rows["GPUs"] == ("skipped", "system=cpu runs on the CPU and needs no GPU", "")
    assert rows["TensorRT-LLM"][:2] == ("skipped", "backend=hf does not use TensorRT-LLM")
    assert rows["NCCL"][0] == rows["Slurm"][0] == "skipped"
    assert "bubblewrap runs a program" in rows["MBXP"][1]
    # Progress: a line per check as it starts and ends, on stderr.
    assert "checking NCCL" in result.stderr and "this config can run here" in result.stderr


@pytest.fixture(scope="module")
def h200_engine(artifacts, tmp_path_factory) -> Path:
    """An engine of tiny-mixtral for h200x8 (bf16, tp 1), built by the trtllm-build double on a fake 8x H200 node."""
    root = tmp_path_factory.mktemp("doctor-artifacts")
    built = run_cli("llmkit", "build", "system=h200x8", "precision=bf16", f"artifacts_root={root}",
                    f"model.path={artifacts / 'models' / 'tiny-mixtral'}", "calibration.num_samples=4",
                    "calibration.max_length=32", "calibration.batch_size=2", "quantize.gate_samples=2",
                    "quantize.min_greedy_agreement=0", env=fake_toolchain_env(H200X8))
    assert built.returncode == 0, built.stderr[-3000:]
    return root


def test_a_fake_8x_h200_node_can_serve_h200x8_with_trtllm_and_its_engine(h200_engine, artifacts, tmp_path,
                                                                        monkeypatch):
    overrides = ["system=h200x8", "backend=trtllm", "precision=bf16", f"artifacts_root={h200_engine}",
                 f"model.path={artifacts / 'models' / 'tiny-mixtral'}"]
    result = doctor(*overrides, env=fake_toolchain_env(H200X8), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = table(result.stdout)
    assert rows["GPUs"][0] == "ok"
    assert rows["GPUs"][1].startswith("8 x NVIDIA H200, 143771 MiB, SM90, driver 590.48.01, CUDA 13.1; system=h200x8 "
                                      "needs 8 here (dp 8 x tp 1 x pp 1)")
    status, found, _ = rows["TensorRT-LLM"]
    assert status == "ok" and "tensorrt_llm 1.2.1, tensorrt 10.14.1" in found and "fits this run" in found
    assert rows["disk"][0] == "ok"
    # The run's batch above the engine's: check_engine's refusal, with its fix (in this process, on the same node).
    for key, value in fake_toolchain_env(H200X8).items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(SITE))
    bigger = check_trtllm(Target(load([*overrides, "backend.max_batch_size=4096"])))
    assert bigger.status is Status.fail and "was built for batches of 3072 but the run asks for 4096" in bigger.found
    assert "build.flags.max_batch_size=4096" in bigger.fix


def test_a_gpu_system_on_a_node_with_too_few_gpus_cannot_run(tmp_path):
    result = doctor("system=h200x8", "backend=trtllm", f"artifacts_root={tmp_path / 'empty'}",
                    env=fake_toolchain_env("2x NVIDIA H200|9.0|143771"), tmp_path=tmp_path)
    assert result.returncode == 1
    rows = table(result.stdout)
    status, found, fix = rows["GPUs"]
    assert status == "FAIL" and "2 x NVIDIA H200" in found and "system=h200x8 needs 8 here" in found
    assert "a node with 8 GPUs" in fix and "system.devices_per_node=2 system.tp=1 system.pp=1 system.dp=2" in fix
    assert "GPUs failed" in result.stderr
    # No engine built yet is a warning naming llmkit build.
    status, found, fix = rows["TensorRT-LLM"]
    assert status == "warn" and found.startswith("tensorrt_llm 1.2.1, tensorrt 10.14.1") and "no engine yet" in found
    assert "run llmkit build with the same overrides first" in fix
    # Two GPUs: the all-reduce is tried, and the CPU build of torch says why it cannot run.
    assert rows["NCCL"][0] == "skipped" and "has no CUDA" in rows["NCCL"][1]


def test_backend_trtllm_without_tensorrt_llm_names_the_container(tmp_path):
    env = fake_toolchain_env(H200X8)
    env["PYTHONPATH"] = os.pathsep.join(p for p in env["PYTHONPATH"].split(os.pathsep) if p != str(SITE))
    result = doctor("system=h200x8", "backend=trtllm", f"artifacts_root={tmp_path / 'art'}", env=env,
                    tmp_path=tmp_path)
    assert result.returncode == 1
    status, found, fix = table(result.stdout)["TensorRT-LLM"]
    assert status == "FAIL" and "needs TensorRT-LLM 1.2.1" in found and CONTAINER in fix
    assert table(result.stdout)["GPUs"][0] == "ok"


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for argv in (["system=h20x8"], ["-m", "system=h200x8,b200x8"]):
        result = doctor(*argv, tmp_path=tmp_path)
        assert result.returncode == 2 and result.stdout == ""
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("llmkit: error: ")
    assert "did you mean 'h200x8'" in doctor("system=h20x8", tmp_path=tmp_path).stderr


@pytest.fixture(scope="module")
def slurm():
    from slurm_cluster import install_reason, start_cluster

    reason = install_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Slurm tests: {reason}")
        pytest.skip(reason)
    # Under /tmp itself: munged runs as munge and cannot pass pytest's private /tmp/pytest-of-<user>.
    directory = Path(tempfile.mkdtemp(prefix="llmkit-doctor-slurm-"))
    cluster = start_cluster(directory, partition="gpu")
    # A fresh cluster numbers its jobs from 1, and slurmstepd's PMIx refuses a step whose /tmp/spmix_appdir_<uid>_
    # <job>.<step> an earlier cluster left behind ("File exists"): use up such job ids first.
    for _ in range(5):
        if cluster.run("srun", "--mpi=pmix", "-n", "1", "true").returncode == 0:
            break
    yield cluster
    cluster.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.mpi
@pytest.mark.slurm
def test_under_a_slurm_launcher_sinfo_the_partition_and_an_srun_mpi_hello_are_checked(slurm, monkeypatch, tmp_path):
    result = doctor("hydra/launcher=slurm", "hydra.launcher.partition=gpu", f"artifacts_root={tmp_path / 'art'}",
                    env=slurm.env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = table(result.stdout)
    assert rows["Slurm"][:2] == ("ok", "partition gpu is up")
    assert rows["MPI"][0] == "ok" and rows["MPI"][1].startswith("2 ranks said hello through srun --mpi=pmix -n 2 -p gpu")
    for key, value in slurm.env.items():
        monkeypatch.setenv(key, value)
    cfg = load([])
    missing = check_slurm(Target(cfg, "slurm", "gpu-large"))
    assert missing.status is Status.fail and "partition gpu-large is not among sinfo's: gpu" in missing.found
    assert check_slurm(Target(cfg, "slurm", None)).found.endswith("the default (gpu)")


def test_where_sinfo_fails_the_slurm_check_fails(tmp_path, monkeypatch):
    (tmp_path / "slurm.conf").write_text("ClusterName=nowhere\n")  # no controller: sinfo exits 1 at once
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))
    cfg = load([])
    result = check_slurm(Target(cfg, "slurm", "gpu"))
    assert result.status is Status.fail and result.fix.startswith("run on a login node")
    assert check_slurm(Target(cfg, "basic")).status is Status.skipped
    # llmkit slurm's script: a slurm.partition makes it a Slurm launch without the Hydra launcher.
    assert check_slurm(Target(load(["slurm.partition=gpu"]), "basic", "gpu")).status is Status.fail
