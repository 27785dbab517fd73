"""Ctrl-C and SIGTERM to a running `llmkit run`, sent to its process group as a terminal (or a batch system) does:
the run stops within 2 s with one line and 128 + the signal's number, and leaves neither a run directory nor its
staging directory."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, REPO

STOP_WITHIN_S = 2.0


def start_long_run(out, quick: list[str]) -> subprocess.Popen:
    """A Server run of the replay engine that would last a minute, started in its own session; returns once loadgen
    has started issuing."""
    overrides = [o for o in quick if not o.startswith(("loadgen.", "output_dir=", "max_new_tokens="))]
    run = subprocess.Popen(
        [str(BIN / "llmkit"), "run", *overrides, "backend=replay", "backend.ttft_ms=5", "backend.tpot_ms=1",
         "scenario=server", "scenario.target_qps=50", "loadgen.min_duration_ms=60000", "max_new_tokens=16",
         f"output_dir={out}"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    assert run.stderr is not None
    for line in run.stderr:
        if "loadgen" in line and "run of" in line:
            break
    else:
        pytest.fail(f"the run ended before loadgen started (exit {run.wait()})")
    time.sleep(1.0)  # well inside loadgen's test now
    return run


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_run_at_once_leaving_nothing(signum, quick, tmp_path):
    out = tmp_path / "runs" / "interrupted"
    run = start_long_run(out, quick)
    sent = time.monotonic()
    os.killpg(run.pid, signum)
    assert run.stderr is not None
    rest = run.stderr.read()
    code = run.wait(timeout=30)
    took = time.monotonic() - sent
    assert code == 128 + signum, rest[-2000:]
    assert took < STOP_WITHIN_S, f"took {took:.2f} s"
    said = [line for line in rest.splitlines() if "CRITICAL" in line]
    assert len(said) == 1 and f"{signal.Signals(signum).name} received: stopping" in said[0], rest[-2000:]
    assert "Traceback" not in rest and "Segmentation" not in rest
    assert not out.exists()
    assert not list(out.parent.glob(".*staging*"))


def start_in_session(command: list[str], until: str) -> subprocess.Popen:
    """Start `llmkit ...` in its own session; return once a stderr line holds `until` (and a second more)."""
    started = subprocess.Popen([str(BIN / "llmkit"), *command], cwd=REPO, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    assert started.stderr is not None
    for line in started.stderr:
        if until in line:
            break
    else:
        pytest.fail(f"ended before '{until}' (exit {started.wait()})")
    time.sleep(1.0)
    return started


@pytest.mark.parametrize("target, signum", [("parent", signal.SIGTERM), ("group", signal.SIGINT)],
                         ids=["SIGTERM-to-the-parent", "SIGINT-to-the-group"])
@pytest.mark.parametrize("command", ["pipeline", "sweep"])
def test_a_signal_to_a_pipeline_or_sweep_stops_its_running_step_too(command, target, signum, quick, tmp_path):
    """The child step is stopped with its parent (never orphaned to commit its run), and nothing is left."""
    import psutil

    runs = tmp_path / "runs"
    long = [o for o in quick if not o.startswith(("loadgen.", "runs_root="))] + [
        f"runs_root={runs}", "backend=replay", "backend.ttft_ms=5", "backend.tpot_ms=20", "backend.max_batch_size=1",
        "scenario.target_qps=50", "loadgen.min_duration_ms=60000"]  # one slot: even Offline lasts minutes
    if command == "pipeline":
        job = start_in_session(["pipeline", *long, f"output_dir={runs / 'pipeline'}"], "run of")
    else:
        job = start_in_session(["run", "-m", "scenario=offline,server", *long], "run of")
    children = psutil.Process(job.pid).children(recursive=True)
    assert children
    sent = time.monotonic()
    if target == "parent":
        os.kill(job.pid, signum)
    else:
        os.killpg(job.pid, signum)
    assert job.stderr is not None
    rest = job.stderr.read()
    code = job.wait(timeout=60)
    assert code == 128 + signum, rest[-2000:]
    assert time.monotonic() - sent < 15
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
    assert "Traceback" not in rest
    left = [p for p in runs.rglob("*") if p.is_dir() and (p.name.startswith(".") or (p / "result.json").exists())]
    assert not left, left


def test_an_interrupted_pipeline_resumes_skipping_its_finished_steps(quick, tmp_path):
    root = tmp_path / "runs" / "pipeline"
    fast = [*quick, "backend=replay", "scenario.target_qps=20", f"output_dir={root}"]
    job = start_in_session(["pipeline", *fast], "pipeline step: Offline evaluation")
    os.kill(job.pid, signal.SIGTERM)
    assert job.stderr is not None
    job.stderr.read()
    assert job.wait(timeout=60) == 143
    assert (root / "offline-accuracy" / "result.json").is_file() and not (root / "submission").exists()
    # Other overrides than the pipeline was started with are refused; the same ones go on where it stopped.
    other = subprocess.run([str(BIN / "llmkit"), "pipeline", *fast, "max_new_tokens=6", "resume=true"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "was started with other overrides" in other.stderr, other.stderr[-2000:]
    resumed = subprocess.run([str(BIN / "llmkit"), "pipeline", *fast, "resume=true"], cwd=REPO, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "pipeline step: Offline performance (finished before; skipped)" in resumed.stderr
    assert "pipeline step: Offline accuracy (finished before; skipped)" in resumed.stderr
    assert "Offline evaluation (finished before" not in resumed.stderr  # the interrupted step runs again
    assert (root / "submission").is_dir() and (root / "pipeline.json").is_file()


def test_clean_removes_only_the_staging_directories_of_gone_processes(tmp_path):
    """A killed run's staging directory (its process gone) is stale; one still being written is live and stays."""
    import socket

    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    runs = tmp_path / "runs" / "mixtral-8x7b"
    stale = runs / f".run1.staging-{gone.pid}@{host}-abcd1234"
    live = runs / f".run2.staging-{os.getpid()}@{host}-efgh5678"
    elsewhere = runs / ".run3.staging-42@another-node-ijkl9012"
    for directory in (stale, live, elsewhere):
        (directory / "logs").mkdir(parents=True)
        (directory / "logs" / "mlperf_log_detail.txt").write_text("x" * 1000)
    listed = subprocess.run([str(BIN / "llmkit"), "clean", str(tmp_path / "runs")], capture_output=True, text=True)
    assert listed.returncode == 0 and "1 stale; run llmkit clean --yes" in listed.stdout, listed.stdout
    assert stale.exists()  # listing removes nothing
    cleaned = subprocess.run([str(BIN / "llmkit"), "clean", "--yes", str(tmp_path / "runs")], capture_output=True,
                             text=True)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not stale.exists() and live.exists() and elsewhere.exists()
    assert "unknown (made on another-node)" in cleaned.stdout
    missing = subprocess.run([str(BIN / "llmkit"), "clean", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


def test_a_full_disk_is_named_and_leaves_nothing(quick, tmp_path):
    """A run whose disk fills up (a 40 KiB tmpfs) says so in one line, and leaves no half run behind."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the full-disk test (it mounts a tmpfs, as root)")
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(disk)], check=True)
    try:
        overrides = [o for o in quick if not o.startswith("runs_root=")]
        result = subprocess.run([str(BIN / "llmkit"), "run", *overrides, "backend=replay", f"runs_root={disk}",
                                 f"output_dir={disk / 'run'}"], cwd=REPO, capture_output=True, text=True, timeout=120)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, result.stderr[-2000:]
        assert lines[-1].startswith(f"llmkit: error: the disk holding {disk / 'run'} is full"), lines[-1]
        assert "Traceback" not in result.stderr
        assert not list(disk.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_3x_server_overload_completes_invalid(quick, tmp_path):
    """Three times what the engine can serve: the run ends (nothing hangs or is dropped) and loadgen says INVALID."""
    import json

    out = tmp_path / "overload"
    overrides = [o for o in quick if not o.startswith("loadgen.")]
    # 2 slots x 8 tokens at 5 ms each: ~50 queries/s; asked for 150/s over 3 s.
    result = subprocess.run([str(BIN / "llmkit"), "run", *overrides, "backend=replay", "backend.max_batch_size=2",
                             "backend.ttft_ms=5", "backend.tpot_ms=5", "scenario=server", "scenario.target_qps=150",
                             "loadgen.min_duration_ms=3000", "loadgen.min_query_count=1", f"output_dir={out}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["validity"] == "INVALID" and summary["ttft_p99_ms"] > 2000
    assert summary["sample_count"] >= 450  # every query issued was answered


def test_sigterm_to_a_pipeline_during_evaluation_leaves_no_sandbox_copy(quick, tmp_path):
    """The evaluation step unwinds on SIGTERM as on Ctrl-C: the MBXP sandbox's copies are removed."""
    import glob

    before = set(glob.glob("/tmp/llmkit-mbxp-*"))
    root = tmp_path / "runs" / "pipeline"
    job = start_in_session(["pipeline", *quick, "backend=replay", "scenario.target_qps=20", f"output_dir={root}"],
                           "pipeline step: Offline evaluation")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not set(glob.glob("/tmp/llmkit-mbxp-*")) - before:
        time.sleep(0.05)
    assert set(glob.glob("/tmp/llmkit-mbxp-*")) - before, "the evaluation never made its sandbox"
    os.kill(job.pid, signal.SIGTERM)
    assert job.stderr is not None
    rest = job.stderr.read()
    assert job.wait(timeout=60) == 143, rest[-2000:]
    assert "python -m evaluation interrupted (SIGTERM)" in rest and "Traceback" not in rest
    assert not set(glob.glob("/tmp/llmkit-mbxp-*")) - before


@pytest.mark.mpi
@pytest.mark.parametrize("target", ["parent", "group"])
def test_a_signal_stops_a_child_under_mpirun_every_rank_included(target, tmp_path):
    """run_child with a launcher, as `llmkit bench harness` runs a trtllm case in leader placement: SIGINT to the
    parent alone or to its group stops mpirun and every rank; the parent exits 130 with one line."""
    import sys

    import psutil

    from llmkit.children import venv_tool

    out = tmp_path / "out.txt"
    parent_script = tmp_path / "parent.py"
    parent_script.write_text(
        "from llmkit.children import run_child\n"
        f"with open({str(out)!r}, 'w') as output:\n"
        "    run_child(['-c', 'from mpi4py import MPI; import time; print(\"up\", flush=True); time.sleep(120)'],\n"
        f"              'a sleeping mpirun job', launcher=[{venv_tool('mpirun')!r}, '--allow-run-as-root',\n"
        "              '--oversubscribe', '-n', '2'], output=output)\n")
    parent = subprocess.Popen([sys.executable, str(parent_script)], cwd=REPO, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().count("up") == 2):
        assert time.monotonic() < deadline and parent.poll() is None, "the ranks did not start"
        time.sleep(0.2)
    ranks = psutil.Process(parent.pid).children(recursive=True)
    assert len(ranks) >= 3  # mpirun and its two ranks
    if target == "parent":
        os.kill(parent.pid, signal.SIGINT)
    else:
        os.killpg(parent.pid, signal.SIGINT)
    assert parent.stderr is not None
    said = parent.stderr.read()
    assert parent.wait(timeout=30) == 130, said[-2000:]
    assert "SIGINT received during a sleeping mpirun job" in said and "Traceback" not in said
    time.sleep(1.0)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks)
