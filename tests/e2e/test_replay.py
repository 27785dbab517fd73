"""The replay backend: every scenario through the real loadgen, accuracy of the reference's own answers, TEST06,
and MPI like any backend."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli
from test_mpi import mpirun


def test_replay_offline_and_server_report_engine_figures(quick, tmp_path):
    for scenario in ("offline", "server"):
        out = tmp_path / scenario
        result = run_cli("llmkit", "run", *quick, "backend=replay", f"scenario={scenario}", "scenario.target_qps=50",
                         "backend.ttft_ms=20", "backend.tpot_ms=2", "backend.max_batch_size=4", "system.dp=2",
                         f"output_dir={out}")
        assert result.returncode == 0, result.stderr[-2000:]
        summary = json.loads((out / "result.json").read_text())
        engine = summary["engine"]
        assert engine["instances"] == 2 and len(summary["placement"]["instances"]) == 2
        assert engine["tokens"] == summary["output_tokens"] and engine["tokens_per_second"] > 0
        assert engine["ttft_p99_ms"] >= 20.0  # the configured TTFT, plus any wait for one of the 4 slots
        if scenario == "server":
            assert summary["ttft_p99_ms"] >= engine["ttft_p99_ms"]


def test_replay_answers_score_as_the_reference_and_pass_test06(quick, tmp_path):
    accuracy = tmp_path / "accuracy"
    run = run_cli("llmkit", "run", *quick, "max_new_tokens=null", "backend=replay", "mode=accuracy",
                  f"output_dir={accuracy}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run_cli("llmkit", "evaluate", str(accuracy)).returncode == 0
    values = json.loads((accuracy / "result.json").read_text())["accuracy"]["values"]
    assert values["rouge1"] == 100.0 and values["gsm8k"] == 100.0
    test06 = tmp_path / "test06"
    result = run_cli("llmkit", "test06", *quick, "backend=replay", "benchmark=llama3.1-405b", "model=tiny-llama3",
                     "scenario=interactive", "scenario.target_qps=50", f"output_dir={test06}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TEST06 verification complete" in (test06 / "TEST06" / "verify_accuracy.txt").read_text()


@pytest.mark.mpi
def test_replay_under_mpi(quick, tmp_path):
    out = tmp_path / "mpi"
    result = mpirun(3, *quick, "backend=replay", "system.dp=2", "scenario=server", "scenario.target_qps=50",
                    f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["sample_count"] > 0
    # The instances' engine figures travel from the worker ranks to rank 0.
    assert summary["engine"]["instances"] == 2 and summary["engine"]["tokens"] == summary["output_tokens"]


def test_latency_histogram_percentiles_within_its_bin_width():
    import numpy as np

    from sut.backends.latency import RELATIVE_STEP, LatencyHistogram

    values = np.random.default_rng(0).lognormal(np.log(0.25), 0.5, 20000)
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(float(value))
    for q in (50, 90, 99, 99.9):
        exact = float(np.percentile(values, q, method="inverted_cdf"))
        assert exact <= histogram.percentile(q) <= exact * (1 + 2 * RELATIVE_STEP)
    assert histogram.count == 20000 and LatencyHistogram().percentile(99) is None
    histogram.add(0.0)  # below the range: the first bin
    histogram.add(1e6)  # above it: the last bin
    assert histogram.count == 20002
    # Instances' histograms merge into one over every request (not the largest of their p99s).
    fast, slow = LatencyHistogram(), LatencyHistogram()
    for value in values[:19800]:
        fast.add(0.001)
    for value in values[19800:]:
        slow.add(1.0)
    merged = LatencyHistogram.merged([fast, slow])
    assert merged.count == 20000 and merged.percentile(99) < 0.0011 < slow.percentile(99)
