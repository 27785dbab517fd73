"""`mpirun -n 3 python -m sut`: loadgen on rank 0, data-parallel hf instances on ranks 1 and 2."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import BIN, run_cli

pytestmark = pytest.mark.mpi

MPIRUN = [str(BIN / "mpirun") if (BIN / "mpirun").exists() else (shutil.which("mpirun") or "mpirun"),
          "--allow-run-as-root", "--oversubscribe"]


def mpirun(n: int, *args: str, env: dict | None = None, timeout: float = 240):
    extra = [item for key in (env or {}) for item in ("-x", key)]
    return run_cli(*MPIRUN, *extra, "-np", str(n), sys.executable, "-m", "sut", *args, env=env, timeout=timeout)


def test_three_ranks_serve_two_data_parallel_instances(quick, tmp_path):
    out = tmp_path / "mpi-run"
    result = mpirun(3, *quick, "system.dp=2", "scenario=server", "scenario.target_qps=20", f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[rank 1]" in result.stderr and "[rank 2]" in result.stderr
    assert "on 2 backend instance(s)" in result.stderr
    summary = json.loads((out / "result.json").read_text())
    assert summary["sample_count"] > 0 and summary["ttft_p99_ms"] > 0
    # Only rank 0 writes: exactly one run directory, nothing else under tmp_path/runs.
    assert not (tmp_path / "runs").exists()


def test_rank_count_that_does_not_add_up_is_explained(quick):
    result = mpirun(3, *quick)
    assert result.returncode != 0
    assert "mpirun started 3 ranks" in result.stderr and "system.dp=2" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dying_rank_ends_the_job_instead_of_hanging(quick, tmp_path):
    result = mpirun(3, *quick, "system.dp=2", f"output_dir={tmp_path / 'dead'}",
                    env={"LLMKIT_TEST_KILL_RANK": "1"}, timeout=120)
    assert result.returncode != 0
    assert not (tmp_path / "dead" / "result.json").exists()
