"""End-to-end SUT runs through the real loadgen on a tiny model (CPU)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B, Scenario
from llmkit.config.load import load
from llmkit.data.sample import sample_frame
from llmkit.errors import UserError
from llmkit.loadgen_log import read_detail_log
from sut.run import run_benchmark


def run_benchmark_cli(overrides: list[str]):
    """One loadgen run in its own process, as loadgen requires; returns the run directory."""
    from pathlib import Path

    run_dir = Path(next(o for o in overrides if o.startswith("output_dir=")).split("=", 1)[1])
    result = run_cli("llmkit", "run", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def accuracy_entries(run_dir):
    return json.loads((run_dir / "mlperf_log_accuracy.json").read_text())


def test_offline_performance_is_valid_and_writes_the_run(quick, tmp_path):
    # Two hf instances in this one process.
    run_dir = run_benchmark_cli(quick + ["system.dp=2", f"output_dir={tmp_path / 'offline'}"])
    result = json.loads((run_dir / "result.json").read_text())
    assert result["placement"] == {"mode": "one process", "world_size": 1, "instances": [
        {"index": 0, "ranks": [0], "devices": ["cpu"]}, {"index": 1, "ranks": [0], "devices": ["cpu"]}]}
    assert result["valid"] is True and result["validity"] == "VALID"
    assert result["scenario"] == "Offline" and result["mode"] == "performance"
    assert result["tokens_per_second"] > 0 and result["samples_per_second"] > 0
    assert result["sample_count"] >= len(sample_frame(MIXTRAL_8X7B))
    assert result["compliant"] is False and any("max_new_tokens" in r for r in result["noncompliant_because"])
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "user.conf", "config.yaml"):
        assert (run_dir / name).is_file()
    assert "mixtral-8x7b.Offline.min_duration = 100" in (run_dir / "user.conf").read_text()
    detail = read_detail_log(run_dir / "mlperf_log_detail.txt")
    assert detail["effective_scenario"] == "Offline"
    assert detail["requested_use_token_latencies"] is True
    assert not list(run_dir.parent.glob(".*staging*"))


def test_server_reports_first_tokens(quick, tmp_path):
    run_dir = run_benchmark_cli(quick + ["scenario=server", "scenario.target_qps=20", f"output_dir={tmp_path / 's'}"])
    result = json.loads((run_dir / "result.json").read_text())
    assert result["scenario"] == "Server"
    assert result["ttft_p99_ms"] is not None and result["ttft_p99_ms"] > 0
    assert result["tpot_p99_ms"] is not None and result["tpot_p99_ms"] > 0
    # A smoke run's few dozen queries cannot bound a p99: loadgen's early stopping says so.
    assert result["valid"] is False and "early stopping" in result["invalid_reason"]


def test_accuracy_run_answers_every_sample_once_with_token_counts(quick, tmp_path):
    run_dir = run_benchmark_cli(quick + ["mode=accuracy", f"output_dir={tmp_path / 'acc'}"])
    entries = accuracy_entries(run_dir)
    frame = sample_frame(MIXTRAL_8X7B)
    assert sorted(e["qsl_idx"] for e in entries) == list(range(len(frame)))
    for entry in entries:
        ids = np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.int32)
        assert entry["token_count"] == ids.size
        assert 2 <= ids.size <= 8
        assert ids.max() < MIXTRAL_8X7B.vocab_size
    assert json.loads((run_dir / "result.json").read_text())["sample_count"] == len(frame)


def test_interactive_runs_under_the_interactive_model_name(quick, tmp_path):
    overrides = quick + ["benchmark=llama3.1-405b", "model=tiny-llama3", "scenario=interactive",
                         "scenario.target_qps=20", f"output_dir={tmp_path / 'i'}"]
    run_dir = run_benchmark_cli(overrides)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["loadgen_model"] == "llama3_1-405b-interactive"
    detail = read_detail_log(run_dir / "mlperf_log_detail.txt")
    assert detail["effective_scenario"] == "Server"
    limits = LLAMA3_1_405B.latency_limits[Scenario.Interactive]
    assert detail["requested_server_ttft_latency"] == limits.ttft_ms * 1_000_000
    assert detail["requested_server_tpot_latency"] == limits.tpot_ms * 1_000_000
    assert "llama3_1-405b-interactive.Server.target_qps = 20.0" in (run_dir / "user.conf").read_text()


def test_existing_run_is_never_overwritten(quick, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "result.json").write_text('{"keep": true}')
    with pytest.raises(UserError, match="already holds a run"):
        run_benchmark(load(quick + [f"output_dir={target}"]))  # refused before loadgen starts
    result = run_cli("llmkit", "run", *quick, f"output_dir={target}")
    assert result.returncode == 2 and "never overwritten" in result.stderr and "Traceback" not in result.stderr
    assert json.loads((target / "result.json").read_text()) == {"keep": True}


def test_missing_checkpoint_and_dataset_are_clear_errors(quick, tmp_path):
    result = run_cli("llmkit", "run", *quick, "model=checkpoint", f"model.path={tmp_path / 'nowhere'}")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run_cli("llmkit", "run", *quick, "dataset=official", f"dataset.path={tmp_path / 'none.pkl'}")
    assert result.returncode == 2 and "dataset file" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("result.json"))


def test_a_second_loadgen_run_in_one_process_is_refused(quick, tmp_path, monkeypatch):
    import sut.run

    monkeypatch.setattr(sut.run, "_loadgen_runs_in_this_process", 1)
    with pytest.raises(RuntimeError, match="only to the first run of a process"):
        run_benchmark(load(quick + [f"output_dir={tmp_path / 'second'}"]))


def test_a_failed_start_stops_the_instances_started_before_it(quick, tmp_path, monkeypatch):
    """Instance 1 failing to start (an engine out of memory, a warm-up error) stops instance 0 and itself before the
    error goes on: no engine thread or Executor is left running, and no run is written."""
    import sut.run
    from sut.backends import create_backend

    monkeypatch.setattr(sut.run, "_loadgen_runs_in_this_process", 0)  # loadgen never starts here
    stopped: list[int] = []

    def second_fails(spec):
        backend, index = create_backend(spec), spec.instance
        stop = backend.stop
        backend.stop = lambda: (stopped.append(index), stop())
        if index == 1:
            def refuse(*callbacks):
                raise RuntimeError("instance 1 cannot start")
            backend.start = refuse
        return backend

    monkeypatch.setattr(sut.run, "create_backend", second_fails)
    target = tmp_path / "failed-start"
    with pytest.raises(RuntimeError, match="instance 1 cannot start"):
        run_benchmark(load(quick + ["backend=replay", "system.dp=2", f"output_dir={target}"]))
    assert stopped == [0, 1] and not target.exists()


def test_sweep_runs_each_job_in_its_own_process(quick, tmp_path):
    result = run_cli("llmkit", "run", "-m", *quick, "mode=performance,accuracy")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted((tmp_path / "runs" / "mixtral-8x7b" / "cpu" / "offline").iterdir())
    assert sorted(r.name.rsplit("-", 1)[-1] for r in runs) == ["accuracy", "performance"]
    for run in runs:
        detail = read_detail_log(run / "mlperf_log_detail.txt")
        assert detail["requested_use_token_latencies"] is True  # mlperf.conf applied in every job
    assert list((tmp_path / "runs" / "sweeps").glob("*/multirun.yaml"))
