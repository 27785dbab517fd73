"""Packaging from a real pipeline: the smoke tree, both rounds' layouts, Interactive, the open division, never
overwriting, and TEST06 verification of finished runs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from evaluation.submission.package import report_path


@pytest.fixture(scope="module")
def pipeline(artifacts, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "run"
    result = run_cli("llmkit", "pipeline", f"artifacts_root={artifacts}", "max_new_tokens=8",
                     "loadgen.min_duration_ms=100", "loadgen.min_query_count=1", "scenario.target_qps=20",
                     f"output_dir={out}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "random weights" in result.stderr
    return out


def test_the_pipeline_runs_every_step_and_packages_a_smoke_tree(pipeline):
    summary = json.loads((pipeline / "pipeline.json").read_text())
    assert [s["step"] for s in summary] == [f"{scenario} {step}" for scenario in ("Offline", "Server")
                                            for step in ("performance", "accuracy", "TEST06")]
    assert summary[0]["valid"] is True
    assert summary[4]["accuracy"]["verdict"] == "FAIL"  # random weights
    for scenario in ("offline", "server"):
        assert (pipeline / f"{scenario}-accuracy" / "accuracy.txt").read_text().startswith("{'rouge1': ")
        verify = (pipeline / f"{scenario}-test06" / "TEST06" / "verify_accuracy.txt").read_text()
        assert "TEST06 verification complete" in verify
    # The report lies beside the tree: the checkers reject any file outside the division folders.
    assert not (pipeline / "submission" / "submission_check.json").exists()
    assert sorted(p.name for p in (pipeline / "submission").iterdir()) == ["closed"]
    check = json.loads(report_path(pipeline / "submission").read_text())
    assert check["submittable"] is False and check["round"] == "v6.0"
    # A smoke run's tree may only fall short where a smoke run must: durations and counts (and accuracy, since
    # the model has random weights).
    assert {f["kind"] for f in check["findings"]} <= {"duration", "count", "accuracy"}
    assert {f["kind"] for f in check["findings"]} >= {"duration", "count"}
    tree = pipeline / "submission" / "closed" / "llmkit-demo"
    accuracy_log = tree / "results/cpu/mixtral-8x7b/Offline/accuracy/mlperf_log_accuracy.json"
    full = (pipeline / "offline-accuracy" / "mlperf_log_accuracy.json").read_bytes()
    assert accuracy_log.read_bytes() == (full if len(full) <= 10 * 1024 else full[:4096] + b"\n\n...\n\n" + full[-4096:])
    system = json.loads((tree / "systems" / "cpu.json").read_text())
    assert len(system) == 35 and system["submitter"] == "llmkit-demo" and system["host_processor_core_count"]
    assert system["accelerators_per_node"] == "0"  # the checker's truthiness test rejects the integer 0
    assert (tree / "documentation" / "calibration.md").read_text().startswith("# Calibration")
    assert (tree / "src" / "README.md").is_file()


def test_packaging_twice_never_overwrites_and_bad_runs_are_clear_errors(pipeline, tmp_path):
    tree = pipeline / "submission"
    before = report_path(tree).read_bytes()
    again = run_cli("llmkit", "package", f"submission.pipeline_dir={pipeline}", f"submission.output_dir={tree}")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert report_path(tree).read_bytes() == before
    v51 = run_cli("llmkit", "package", f"submission.pipeline_dir={pipeline}", "submission.round=v5.1",
                  f"submission.output_dir={tmp_path / 'v51'}")
    assert v51.returncode == 0, v51.stderr[-2000:]
    root = tmp_path / "v51/closed/llmkit-demo"
    assert (root / "compliance/cpu/mixtral-8x7b/Server/TEST06/verify_accuracy.txt").is_file()
    # v5.1's checker takes the first <system>*.json there; it refuses a file named measurements.json.
    assert [p.name for p in (root / "measurements/cpu/mixtral-8x7b/Server").glob("*.json")] == \
        ["cpu_llmkit_Server.json"]
    assert (root / "code/mixtral-8x7b/llmkit/README.md").is_file()
    v51_kinds = {f["kind"] for f in json.loads(report_path(tmp_path / "v51").read_text())["findings"]}
    # The runs were made with v6.0's loadgen: packaged for v5.1, their seeds are the wrong round's.
    assert "seed" in v51_kinds and v51_kinds <= {"duration", "count", "accuracy", "seed"}
    missing = run_cli("llmkit", "package", f"submission.runs=[{tmp_path / 'nowhere'}]",
                      f"submission.output_dir={tmp_path / 'x'}")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    failed = tmp_path / "failed"
    shutil.copytree(pipeline, failed, ignore=shutil.ignore_patterns("submission"))
    verify = failed / "server-test06" / "TEST06" / "verify_accuracy.txt"
    verify.write_text(verify.read_text().replace("complete", "failed"))
    refused = run_cli("llmkit", "package", f"submission.pipeline_dir={failed}", f"submission.output_dir={tmp_path / 'y'}")
    assert refused.returncode == 2 and "TEST06 failed" in refused.stderr
    assert not (tmp_path / "y").exists()


def test_test06_verify_on_an_existing_run(pipeline, tmp_path):
    run = tmp_path / "test06-copy"
    shutil.copytree(pipeline / "server-test06", run, ignore=shutil.ignore_patterns("TEST06"))
    result = run_cli("llmkit", "test06", "verify", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "TEST06" / "verify_accuracy.txt").read_text().splitlines()[0] == "First token check pass: True"
    again = run_cli("llmkit", "test06", "verify", f"path={run}")
    assert again.returncode == 2 and "never overwritten" in again.stderr
    log_only = run_cli("llmkit", "test06", "verify", str(run / "mlperf_log_accuracy.json"),
                       "benchmark=llama3.1-405b", "scenario=offline")
    assert log_only.returncode == 2 and "never overwritten" in log_only.stderr  # same TEST06/ beside the log
    model = run_cli("llmkit", "test06", "verify", str(run / "mlperf_log_accuracy.json"), "benchmark=llama3.1-405b",
                    "model=tiny-llama3", "scenario=offline")
    assert model.returncode == 2 and "'model=tiny-llama3' has no effect on llmkit test06 verify" in model.stderr
    # Verifying a log needs its benchmark and scenario, not a model that fits them.
    elsewhere = tmp_path / "log-only"
    elsewhere.mkdir()
    shutil.copyfile(run / "mlperf_log_accuracy.json", elsewhere / "mlperf_log_accuracy.json")
    no_model = run_cli("llmkit", "test06", "verify", str(elsewhere / "mlperf_log_accuracy.json"),
                       "benchmark=llama3.1-405b", "scenario=offline")
    assert no_model.returncode == 0, no_model.stderr[-2000:]
    assert (elsewhere / "TEST06" / "verify_accuracy.txt").read_text().startswith("First token check pass: Skipped")
    # A run that llmkit test06 made is verified again into another directory, never over its own TEST06/.
    redo = run_cli("llmkit", "test06", "verify", str(pipeline / "server-test06"),
                   f"evaluation.test06_dir={tmp_path / 'again'}")
    assert redo.returncode == 0, redo.stderr[-2000:]
    assert (tmp_path / "again" / "verify_accuracy.txt").read_text().endswith("TEST06 verification complete\n")
    # A run that is not a TEST06 run is refused, and nothing is written into it.
    performance = pipeline / "server-performance"
    before = sorted(p.name for p in performance.iterdir())
    wrong = run_cli("llmkit", "test06", "verify", str(performance))
    assert wrong.returncode == 2 and "is not a TEST06 run" in wrong.stderr, wrong.stderr[-2000:]
    assert sorted(p.name for p in performance.iterdir()) == before


def _as_interactive(source: Path, target: Path) -> Path:
    """A copy of a mixtral Server run, relabelled as a llama3.1-405b Interactive one (packaging reads the labels)."""
    from omegaconf import OmegaConf

    shutil.copytree(source, target)
    config = OmegaConf.load(target / "config.yaml")
    config.benchmark.name, config.scenario.name = "llama3.1-405b", "Interactive"
    config.model.name, config.model.tiny = "tiny-llama3", "llama3"
    OmegaConf.save(config, target / "config.yaml")
    result = json.loads((target / "result.json").read_text())
    result.update(benchmark="llama3.1-405b", scenario="Interactive", loadgen_model="llama3_1-405b-interactive")
    (target / "result.json").write_text(json.dumps(result))
    return target


def test_interactive_results_are_a_scenario_folder_of_llama3_1_405b(pipeline, tmp_path):
    runs = [_as_interactive(pipeline / f"server-{kind}", tmp_path / f"interactive-{kind}")
            for kind in ("performance", "accuracy", "test06")]
    out = tmp_path / "tree"
    result = run_cli("llmkit", "package", f"submission.runs=[{','.join(map(str, runs))}]",
                     f"submission.output_dir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    results = out / "closed/llmkit-demo/results/cpu"
    assert [p.name for p in results.iterdir()] == ["llama3.1-405b"]
    assert [p.name for p in (results / "llama3.1-405b").iterdir()] == ["Interactive"]
    assert (results / "llama3.1-405b/Interactive/TEST06/verify_accuracy.txt").is_file()
    findings = json.loads(report_path(out).read_text())["findings"]
    assert not [f for f in findings if f["kind"] == "layout"], findings
    # Interactive is held to its own limits (4.5 s TTFT, 80 ms TPOT), and the closed division also wants Offline.
    assert {"scenario"} <= {f["kind"] for f in findings}


def test_an_open_submission_packages_without_compliance_runs(pipeline, tmp_path):
    runs = [pipeline / f"{scenario}-{kind}" for scenario in ("offline", "server") for kind in ("performance", "accuracy")]
    out = tmp_path / "open-tree"
    result = run_cli("llmkit", "package", f"submission.runs=[{','.join(map(str, runs))}]", "submission.division=open",
                     f"submission.output_dir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(out.rglob("TEST06"))
    kinds = {f["kind"] for f in json.loads(report_path(out).read_text())["findings"]}
    assert kinds <= {"duration", "count"}, kinds  # no accuracy targets and no compliance in the open division
    closed = run_cli("llmkit", "package", f"submission.runs=[{','.join(map(str, runs))}]",
                     f"submission.output_dir={tmp_path / 'closed-tree'}")
    assert closed.returncode == 2 and "TEST06" in closed.stderr
