"""`mpirun -n N python -m sut`: loadgen on rank 0, backend instances placed on the other ranks (sut/placement.py)."""
from __future__ import annotations

import json
import re
import shutil
import sys

import pytest

from conftest import BIN, run_cli

pytestmark = pytest.mark.mpi

MPIRUN = [str(BIN / "mpirun") if (BIN / "mpirun").exists() else (shutil.which("mpirun") or "mpirun"),
          "--allow-run-as-root", "--oversubscribe"]


def mpirun(n: int, *args: str, env: dict | None = None, timeout: float = 240):
    extra = [item for key in (env or {}) for item in ("-x", key)]
    return run_cli(*MPIRUN, *extra, "-np", str(n), sys.executable, "-m", "sut", *args, env=env, timeout=timeout)


def test_two_worker_ranks_host_two_hf_instances_each(quick, tmp_path):
    out = tmp_path / "mpi-run"
    result = mpirun(3, *quick, "system.dp=4", "scenario=server", "scenario.target_qps=20", f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["sample_count"] > 0 and summary["ttft_p99_ms"] > 0
    placement = summary["placement"]
    assert placement["mode"] == "instances per rank" and placement["world_size"] == 3
    assert [i["ranks"] for i in placement["instances"]] == [[1], [1], [2], [2]]
    # Only rank 0 writes: exactly one run directory, nothing else under tmp_path/runs.
    assert not (tmp_path / "runs").exists()


def test_a_replay_instance_spans_two_ranks_and_only_its_leader_is_fed(quick, tmp_path):
    out = tmp_path / "leader"
    result = mpirun(3, *quick, "backend=replay", "system.tp=2", "scenario=server", "scenario.target_qps=50",
                    "backend.ttft_ms=5", "backend.tpot_ms=1", f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["placement"]["mode"] == "instances spanning ranks"
    assert summary["placement"]["instances"] == [{"index": 0, "ranks": [1, 2], "devices": ["cpu", "cpu"]}]
    # The engine figures come back from the leader rank under mpirun too.
    assert summary["engine"]["instances"] == 1 and summary["engine"]["tokens"] == summary["output_tokens"]


def test_rank_count_that_does_not_add_up_names_the_launches_that_fit(quick):
    result = mpirun(3, *quick)  # one hf instance: two worker ranks cannot share it
    assert result.returncode != 0
    assert "the launcher started 3 ranks" in result.stderr and "launch -n 2 (one rank per instance)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dying_rank_ends_the_job_with_the_rank_named(quick, tmp_path):
    result = mpirun(3, *quick, "system.dp=2", f"output_dir={tmp_path / 'dead'}",
                    env={"LLMKIT_TEST_KILL_RANK": "1"}, timeout=120)
    assert result.returncode != 0
    # Whichever sees it first ends the job naming the rank: rank 0 (its connection closed), or mpirun, with the
    # process that died ([<job>,<rank>]) and the exit code it died of.
    assert re.search(r"rank 1 \(instances 0\) closed its connection to rank 0|"
                     r"Process name: \[\S+,1\]\s+Exit code:\s+9", result.stderr), result.stderr[-2000:]
    assert not (tmp_path / "dead" / "result.json").exists()


def test_rank_0_failing_ends_the_job_instead_of_leaving_the_workers_waiting(quick, tmp_path):
    """An exception on rank 0 after the workers got their spec: the job ends at once, saying so, instead of rank 0's
    MPI_Finalize and the workers waiting for each other until the launcher's timeout."""
    result = mpirun(3, *quick, "system.dp=2", f"output_dir={tmp_path / 'failed'}",
                    env={"LLMKIT_TEST_KILL_RANK": "0"}, timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "rank 0 failed (RuntimeError: LLMKIT_TEST_KILL_RANK=0) before its worker ranks were stopped" in result.stderr
    assert not (tmp_path / "failed").exists()


def test_a_stopped_rank_ends_the_job_naming_it(quick, tmp_path):
    """kill -STOP of a worker rank (a wedged process looks the same): rank 0 hears no heartbeat from it and ends the
    job naming it, within the silence allowed (30 s by default; 3 s here)."""
    import os
    import signal
    import subprocess
    import time

    import psutil

    out = tmp_path / "stopped"
    env = {**os.environ, "LLMKIT_TEST_RANK_SILENCE_S": "3"}
    command = [*MPIRUN, "-x", "LLMKIT_TEST_RANK_SILENCE_S", "-np", "3", sys.executable, "-m", "sut",
               *[o for o in quick if not o.startswith("loadgen.")], "backend=replay", "system.dp=2",
               "backend.ttft_ms=5", "backend.tpot_ms=1", "scenario=server", "scenario.target_qps=20",
               "loadgen.min_duration_ms=120000", f"output_dir={out}"]
    job = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                           start_new_session=True)
    assert job.stderr is not None
    try:
        for line in job.stderr:
            if "run of" in line:
                break
        time.sleep(1.0)
        ranks = {}
        for child in psutil.Process(job.pid).children(recursive=True):
            try:
                rank = child.environ().get("OMPI_COMM_WORLD_RANK")
            except psutil.Error:
                continue
            if rank is not None and "sut" in " ".join(child.cmdline()):
                ranks[rank] = child
        os.kill(ranks["2"].pid, signal.SIGSTOP)
        stopped = time.monotonic()
        rest = job.stderr.read()
        code = job.wait(timeout=60)
        took = time.monotonic() - stopped
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert code != 0
    assert re.search(r"rank 2 \(instances 1\) has given no sign of life for \d+ s", rest), rest[-2000:]
    assert took < 3 + 10, f"took {took:.1f} s"
    assert not out.exists() and not list(out.parent.glob(".*staging*"))
