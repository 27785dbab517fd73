"""The bench scripts: bad arguments are one sentence before anything runs, failures exit non-zero, and assumed
figures are marked as such."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from llmkit.errors import UserError


def _main(monkeypatch, module, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", [module.__name__, *argv])
    with pytest.raises(SystemExit) as stopped:
        module.main()
    return stopped.value.code


def test_hf_refuses_zero_samples_in_one_sentence(monkeypatch, capsys):
    import bench.hf

    monkeypatch.setattr(bench.hf, "setup_logging", lambda: None)
    assert _main(monkeypatch, bench.hf, "--samples", "0") == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_hf_fails_on_a_backend_error_and_on_differing_outputs(monkeypatch, tmp_path, caplog):
    import bench.hf

    class Failing:  # an HFBackend whose first batch fails
        def __init__(self, spec):
            pass

        def start(self, on_first, on_final, on_error):
            self.on_error = on_error

        def submit(self, batch):
            self.on_error(None, "CUDA out of memory")

        def stop(self):
            pass

    monkeypatch.setattr(bench.hf, "HFBackend", Failing)
    requests = [bench.hf.GenerationRequest(i, np.array([1, 2], dtype=np.int32), 4, 1, (2,)) for i in range(2)]
    with pytest.raises(SystemExit) as stopped:
        bench.hf.batched("unused", requests, 2, "mixtral-8x7b")
    assert stopped.value.code == 1 and "CUDA out of memory" in caplog.text

    monkeypatch.setattr(bench.hf, "setup_logging", lambda: None)  # caplog sees the records
    monkeypatch.setattr(bench.hf, "ensure_tiny_checkpoint", lambda *a: tmp_path)
    monkeypatch.setattr(bench.hf, "sequential", lambda checkpoint, requests: (1.0, {0: [1, 2], 1: [3]}))
    monkeypatch.setattr(bench.hf, "batched", lambda *a: (0.5, {0: [1, 2], 1: [4]}))
    out = tmp_path / "hf.json"
    assert _main(monkeypatch, bench.hf, "--samples", "2", "--json", str(out)) == 1
    assert json.loads(out.read_text())["identical_outputs"] is False and "for 1 of 2 requests" in caplog.text


def test_harness_checks_its_outputs_and_engine_before_any_case_runs(monkeypatch, tmp_path, capsys):
    import bench.harness

    monkeypatch.setattr(bench.harness, "run_case", lambda case: pytest.fail("a case ran"))
    assert _main(monkeypatch, bench.harness, "--out", str(tmp_path / "missing" / "figures.json")) == 2
    assert "--out" in capsys.readouterr().err
    assert _main(monkeypatch, bench.harness, "--out", str(tmp_path / "f.json"), "--plot", str(tmp_path / "f.png"),
                 "--backend", "trtllm", "--engine-dir", str(tmp_path)) == 2
    assert "holds no TensorRT-LLM engine" in capsys.readouterr().err


def test_assumed_engine_latencies_are_marked_in_the_figures_and_the_table(tmp_path, capsys):
    from bench.harness import Case, engine_figures
    from bench.harness_report import ASSUMED_NOTE, report

    case = Case("mixtral Server 1x", "mixtral-8x7b", "server", 1, 430, 145, 250.0, 25.0, backend="trtllm")
    assumed = engine_figures(case, {"tokens_per_second": 100.0})
    assert assumed["latencies"] == "assumed" and assumed["ttft_p99_ms"] == 250.0
    assert engine_figures(case, {"ttft_p99_ms": 240.0})["latencies"] == "reported"
    result = {"validity": "VALID", "tokens_per_second": 99.0, "ttft_p99_ms": 251.0, "tpot_p99_ms": 25.5,
              "engine": assumed}
    out, plot = tmp_path / "figures.json", tmp_path / "plot.png"
    report({"ceiling": [], "shaped": [{"case": vars(case), "result": result}], "soak": None}, out, plot)
    assert json.loads(out.read_text())["shaped"][0]["engine_latencies"] == "assumed" and plot.is_file()
    assert ASSUMED_NOTE.split(",")[0] in " ".join(capsys.readouterr().out.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json", "plot.png"]  # no temporary file left


def test_trtllm_adapter_shows_a_dash_without_first_tokens_and_refuses_an_empty_load():
    from bench.trtllm_adapter import measure, table_row

    row = measure(0.05, 3)  # too few new requests for any burst to hold a first token
    assert row["first_tokens_p99_ms"] is None and table_row(row)[4] == "-"
    with pytest.raises(UserError, match="loads of at least 0.0049"):
        measure(0.001, 3)
    with pytest.raises(UserError, match="--iterations 0"):
        measure(1, 0)
