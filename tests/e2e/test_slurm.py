"""Slurm, for real: a one-node cluster on 127.0.0.1 (tests/slurm_cluster.py) running submitit sweeps, an srun MPI
world, the sbatch script of `llmkit slurm`, a cancelled job, and the one-sentence errors of bad cluster input."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from slurm_cluster import install_reason, start_cluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

QUIET = {"HYDRA_FULL_ERROR": ""}
# Two slurmd on this host emulate a two-node cluster (tests/slurm_cluster.py gives each its own PMIx directory).
NODES = ("n1", "n2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = install_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Slurm tests: {reason}")
        pytest.skip(reason)
    # Not under pytest's own temporary root, which only root may enter: munged runs as the munge user.
    directory = Path(tempfile.mkdtemp(prefix="llmkit-slurm-"))
    started = start_cluster(directory, nodes=NODES)
    yield started
    started.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def slurm_env(cluster):
    cluster.wait_idle()
    return cluster.env


def llmkit(*args: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return run_cli("llmkit", *args, env={**env, **QUIET}, timeout=timeout)


def test_a_sweep_submits_one_job_per_combination_and_reports_each_run_directory(slurm_env, quick, tmp_path):
    result = llmkit("run", "-m", "hydra/launcher=slurm", "scenario=offline,server", *quick, env=slurm_env)
    assert result.returncode == 0, result.stderr[-3000:]
    reported = re.findall(r"^job (\d) \((.*)\): (\S+)$", result.stdout, re.M)
    assert [job for job, _, _ in reported] == ["0", "1"]
    for (_, overrides, run_dir), scenario in zip(reported, ("offline", "server")):
        assert f"scenario={scenario}" in overrides
        summary = json.loads((Path(run_dir) / "result.json").read_text())
        assert summary["scenario"].lower() == scenario and summary["sample_count"] > 0
    # Each job ran in a Slurm job of its own, whose submitit logs are kept under the sweep directory.
    assert len(list((tmp_path / "runs" / "sweeps").glob("*/.submitit/*_*/*_log.err"))) == 2


def test_a_failed_job_is_reported_with_its_logs_and_the_sweep_exits_2(slurm_env, quick, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a run directory")
    good = tmp_path / "good"
    result = llmkit("run", "-m", "hydra/launcher=slurm", f"output_dir={good},{taken}", *quick, env=slurm_env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert (good / "result.json").is_file()  # the other job ran to the end and is reported
    assert re.search(rf"^job 0 \(output_dir={good} .*\): {good}$", result.stdout, re.M)
    failure = re.search(r"^job 1 .* failed: output_dir \S+ is a file; .* \(logs: (\S+\.out) (\S+\.err)\)$",
                        result.stdout, re.M)
    assert failure, result.stdout
    assert Path(failure.group(1)).is_file() and "is a file" in Path(failure.group(2)).read_text()
    assert "1 job(s) of the sweep failed" in result.stderr and "Traceback" not in result.stderr


def test_srun_gives_the_sut_one_mpi_world_from_slurm(slurm_env, quick, tmp_path):
    out = tmp_path / "srun"
    result = run_cli("srun", "--mpi=pmix", "-n", "2", sys.executable, "-m", "sut", *quick, f"output_dir={out}",
                     env=slurm_env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["validity"] == "VALID"
    assert summary["placement"] == {"mode": "instances per rank", "world_size": 2,
                                    "instances": [{"index": 0, "ranks": [1], "devices": ["cpu"]}]}
    assert "[rank 1]" in result.stderr  # the ranks came from Slurm/PMIx, not a singleton


def test_srun_three_ranks_host_two_instances(slurm_env, quick, tmp_path):
    """Loadgen on rank 0 and an instance on each of ranks 1 and 2, one MPI world from Slurm's PMIx (with an MPI
    library built on the same PMIx as Slurm: Debian's Open MPI here, see tests/slurm_cluster.py)."""
    out = tmp_path / "srun3"
    result = run_cli("srun", "--mpi=pmix", "-n", "3", sys.executable, "-m", "sut", *quick, "system.dp=2",
                     f"output_dir={out}", env=slurm_env, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["validity"] == "VALID"
    assert [i["ranks"] for i in summary["placement"]["instances"]] == [[1], [2]]


def _wait_gone(cluster_env: dict, job: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True,
                                env={**os.environ, **cluster_env})
        if not queued.stdout.strip():
            return
        time.sleep(1)
    raise TimeoutError(f"Slurm job {job} still queued after {timeout} s")


def test_the_sbatch_script_of_a_submission_run_completes(slurm_env, quick, tmp_path):
    script = tmp_path / "run.sbatch"
    overrides = [*quick, "backend=replay", "benchmark=llama3.1-405b", "model=tiny-llama3", "slurm.partition=debug",
                 f"slurm.script={script}", f"output_dir={tmp_path / 'pipeline'}", "slurm.submit=true"]
    result = llmkit("slurm", *overrides, env=slurm_env)
    assert result.returncode == 0, result.stderr[-3000:]
    job = re.search(r"submitted: Slurm job (\d+)", result.stdout).group(1)
    text = script.read_text()
    assert "#SBATCH --partition=debug" in text and text.count("\nsrun ") == 9  # 2 x (perf, acc, eval, TEST06) + pkg
    _wait_gone(slurm_env, job)
    log = (tmp_path / f"run-{job}.out").read_text()
    assert "llmkit slurm: done" in log, log[-3000:]
    check = json.loads((tmp_path / "pipeline" / "submission.check.json").read_text())
    assert {f["kind"] for f in check["findings"]} <= {"accuracy", "count", "duration"}
    # Never over an existing script.
    again = llmkit("slurm", *overrides[:-2], f"output_dir={tmp_path / 'other'}", env=slurm_env)
    assert again.returncode == 2 and "already exists and is never overwritten" in again.stderr


def test_a_cancelled_job_leaves_no_half_run_directory(slurm_env, quick, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "runs" / "cancelled"
    long = [o for o in quick if not o.startswith("loadgen.min_duration_ms")] + ["loadgen.min_duration_ms=120000"]
    submitted = subprocess.run(
        ["sbatch", "--parsable", f"--output={tmp_path / 'job.out'}", "--wrap",
         f"srun {sys.executable} -m sut {' '.join(long)} output_dir={out}"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **slurm_env})
    job = submitted.stdout.strip()
    assert submitted.returncode == 0 and job, submitted.stderr
    deadline = time.monotonic() + 120
    while not list(runs.glob(".cancelled.staging-*/user.conf")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list(runs.glob(".cancelled.staging-*")), (tmp_path / "job.out").read_text()[-2000:]
    subprocess.run(["scancel", job], check=True, env={**os.environ, **slurm_env})
    _wait_gone(slurm_env, job, timeout=60)
    # scancel's SIGTERM reaches the run, which discards its staging directory (llmkit.interrupts) on its way out.
    assert not out.exists()
    assert not list(runs.iterdir())


def test_bad_cluster_input_is_one_sentence_and_exit_2(slurm_env, quick, tmp_path):
    wrong = llmkit("run", "-m", "hydra/launcher=slurmm", "scenario=offline,server", *quick, env=slurm_env)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1] == (
        "llmkit: error: 'slurmm' is not a hydra/launcher config (did you mean 'slurm'?); choose hydra/launcher= one "
        "of: basic, local, slurm")
    partition = llmkit("run", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=nope", "scenario=offline",
                       *quick, env=slurm_env)
    assert partition.returncode == 2
    assert re.search(r"llmkit: error: sbatch refused the sweep's jobs \(.*invalid partition.*\); fix the hydra\."
                     r"launcher", partition.stderr), partition.stderr[-2000:]
    option = llmkit("run", "-m", "hydra/launcher=slurm", "+hydra.launcher.additional_parameters.bogus=1",
                    "scenario=offline", *quick, env=slurm_env)
    assert option.returncode == 2 and "sbatch refused the sweep's jobs" in option.stderr, option.stderr[-2000:]
    script = tmp_path / "bad.sbatch"
    refused = llmkit("slurm", *quick, "slurm.partition=nope", "slurm.submit=true", f"slurm.script={script}",
                     env=slurm_env)
    assert refused.returncode == 2
    assert re.search(r"llmkit: error: sbatch refused \S+bad.sbatch: .*invalid partition.*; fix the slurm\.\* setting",
                     refused.stderr), refused.stderr
    assert script.is_file()  # what was written stays


def test_multi_node_script_launches_one_rank_per_node_plus_loadgen(slurm_env, quick, tmp_path):
    script = tmp_path / "multi.sbatch"
    result = llmkit("slurm", *quick, "system=h200x8", "system.nodes=2", "system.dp=2", "backend=replay",
                    "benchmark=llama3.1-405b", "model=tiny-llama3", f"slurm.script={script}",
                    "containers.image=registry/llmkit:latest", "containers.mounts=[/data:/data]",
                    "containers.workdir=/work", env=slurm_env)
    assert result.returncode == 0, result.stderr[-3000:]
    text = script.read_text()
    assert "#SBATCH --nodes=2" in text and "#SBATCH --ntasks=3" in text and "#SBATCH --gpus-per-node=8" in text
    sut = [line for line in text.splitlines() if " -m sut " in line]
    assert len(sut) == 4 and all(line.startswith(
        "srun --ntasks=3 --nodes=2 --mpi=pmix --container-image=registry/llmkit:latest --container-mounts=/data:/data "
        "--container-workdir=/work python -m sut ") for line in sut)
    package = [line for line in text.splitlines() if "evaluation package" in line]
    assert package[0].startswith("srun --ntasks=1 --nodes=1 --container-image=")


def test_the_sut_spans_two_nodes_one_worker_rank_per_node(slurm_env, quick, tmp_path):
    """The kit's multi-node launch for real: `srun -N 2 -n 3` gives one MPI world over both emulated nodes (ranks 0
    and 1 on n1, rank 2 on n2): loadgen on rank 0, an instance on each worker rank."""
    hello = run_cli("srun", "--mpi=pmix", "-N", "2", "-n", "3", sys.executable, "-c",
                    "import os; from mpi4py import MPI; c = MPI.COMM_WORLD; "
                    "print(c.Get_rank(), c.Get_size(), os.environ['SLURMD_NODENAME'])", env=slurm_env, timeout=120)
    assert hello.returncode == 0, hello.stderr[-2000:]
    assert sorted(hello.stdout.split("\n")[:-1]) == ["0 3 n1", "1 3 n1", "2 3 n2"]
    out = tmp_path / "two-nodes"
    overrides = [o for o in quick if not o.startswith("loadgen.")]
    result = run_cli("srun", "--mpi=pmix", "-N", "2", "-n", "3", sys.executable, "-m", "sut", *overrides,
                     "system=h200x8", "system.nodes=2", "system.dp=2", "system.tp=1", "system.pp=1", "backend=replay",
                     "benchmark=llama3.1-405b", "model=tiny-llama3", "loadgen.min_duration_ms=0",
                     "loadgen.min_query_count=9", f"output_dir={out}", env=slurm_env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["placement"]["world_size"] == 3
    assert [i["ranks"] for i in summary["placement"]["instances"]] == [[1], [2]]
    assert summary["sample_count"] >= 9 and "[rank 2]" in result.stderr


def test_a_build_stage_sweep_runs_as_slurm_jobs_too(slurm_env, artifacts, tmp_path):
    """Every stage's sweep goes through the same launcher: `llmkit build -m` (a dry run: no GPU needed) as two jobs."""
    result = llmkit("build", "-m", "hydra/launcher=slurm", "system=h100x8,h200x8", "benchmark=llama3.1-405b",
                    "model=tiny-llama3", "build.dry_run=true", f"runs_root={tmp_path / 'runs'}",
                    f"artifacts_root={artifacts}", env=slurm_env)
    assert result.returncode == 0, result.stderr[-3000:]
    done = re.findall(r"^job (\d) \((system=h[12]00x8 .*)\): done$", result.stdout, re.M)
    assert [job for job, _ in done] == ["0", "1"], result.stdout
    assert len(list((tmp_path / "runs" / "sweeps").glob("*/.submitit/*_*/*_log.out"))) == 2
