"""The submission tree: the checker on a clean tree and on planted defects; packaging from a real pipeline."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from evaluation.submission.check import check_tree, official_seeds
from evaluation.submission.layout import Entry
from evaluation.submission.system_json import system_json
from llmkit.benchmarks import MIXTRAL_8X7B
from llmkit.config.load import load
from llmkit.config.schema import SubmissionConfig, SubmissionLayout

PASSING_ACCURACY = ("{'rouge1': 45.9, 'rouge2': 23.5, 'rougeL': 30.8, 'rougeLsum': 42.0, 'gsm8k': 74.0, "
                    "'mbxp': 60.5, 'gen_len': 1000, 'gen_num': 15000, 'gen_tok_len': 2170000, "
                    "'tokens_per_sample': 144.7}\nhash=" + "ab" * 32 + "\n")


def mllog(values: dict) -> str:
    return "".join(f':::MLLOG {json.dumps({"key": k, "value": v, "time_ms": 0.0})}\n' for k, v in values.items())


def performance_detail(scenario: str) -> dict:
    seeds = official_seeds()
    detail = {
        "effective_scenario": scenario, "effective_min_duration_ms": 600000, "effective_min_query_count": 15000,
        "effective_performance_sample_count": 15000, "requested_use_token_latencies": True,
        "effective_sample_concatenate_permutation": True, "result_validity": "VALID",
        **{f"effective_{k}": v for k, v in seeds.items()},
    }
    if scenario == "Server":
        detail.update({"result_first_token_99.00_percentile_latency_ns": 1_500_000_000,
                       "result_time_per_output_token_99.00_percentile_ns": 150_000_000})
    return detail


def clean_tree(tree: Path, layout=SubmissionLayout.v6_0) -> Path:
    root = tree / "closed" / "acme"
    for scenario in ("Offline", "Server"):
        entry = Entry(root, layout, "cpu", "mixtral-8x7b", scenario)
        for directory in (entry.performance, entry.accuracy, entry.test06 / "accuracy", entry.measurements):
            directory.mkdir(parents=True, exist_ok=True)
        (entry.performance / "mlperf_log_summary.txt").write_text("Result is : VALID\n")
        (entry.performance / "mlperf_log_detail.txt").write_text(mllog(performance_detail(scenario)))
        (entry.accuracy / "accuracy.txt").write_text(PASSING_ACCURACY)
        (entry.accuracy / "mlperf_log_accuracy.json").write_text("[]")
        (entry.accuracy / "mlperf_log_summary.txt").write_text("accuracy\n")
        (entry.accuracy / "mlperf_log_detail.txt").write_text(mllog({"qsl_reported_total_count": 15000}))
        first = "Skipped" if scenario == "Offline" else "True"
        (entry.test06 / "verify_accuracy.txt").write_text(
            f"First token check pass: {first}\nEOS check pass: True\nSample length check pass: True\n"
            "TEST06 verification complete\n")
        (entry.test06 / "accuracy" / "mlperf_log_accuracy.json").write_text("[]")
        (entry.measurements / "measurements.json").write_text(json.dumps({
            "input_data_types": "int32", "retraining": "no", "starting_weights_filename": MIXTRAL_8X7B.checkpoint,
            "weight_data_types": "fp8", "weight_transformations": "quantization"}))
        (entry.measurements / "user.conf").write_text("")
        (entry.measurements / "README.md").write_text("# how\n")
    (root / "systems").mkdir()
    (root / "systems" / "cpu.json").write_text(json.dumps(system_json(load([]).system, SubmissionConfig(
        submitter="acme"))))
    return tree


@pytest.mark.parametrize("layout", list(SubmissionLayout))
def test_a_clean_tree_has_no_findings(tmp_path, layout):
    assert check_tree(clean_tree(tmp_path, layout)) == []


SERVER = "closed/acme/results/cpu/mixtral-8x7b/Server"


def _edit(tree: Path, relative: str, old: str, new: str) -> None:
    path = tree / relative
    path.write_text(path.read_text().replace(old, new))


def _detail(tree: Path, **changes) -> None:
    path = tree / SERVER / "performance/run_1/mlperf_log_detail.txt"
    path.write_text(mllog({**performance_detail("Server"), **changes}))


@pytest.mark.parametrize(
    ("plant", "kind", "text"),
    [
        (lambda t: (t / SERVER / "performance/run_1/mlperf_log_summary.txt").unlink(), "file", "missing"),
        (lambda t: _edit(t, f"{SERVER}/accuracy/accuracy.txt", "'gsm8k': 74.0", "'gsm8k' = 74.0"), "accuracy",
         "pattern for gsm8k"),
        (lambda t: _edit(t, f"{SERVER}/accuracy/accuracy.txt", "'mbxp': 60.5", "'mbxp': 50.5"), "accuracy",
         "below 99%"),
        (lambda t: _detail(t, effective_min_duration_ms=60000), "duration", "min_duration"),
        (lambda t: _detail(t, **{"result_first_token_99.00_percentile_latency_ns": 2_500_000_000}), "latency",
         "TTFT"),
        (lambda t: _detail(t, effective_qsl_rng_seed=1234), "seed", "qsl_rng_seed"),
        (lambda t: _detail(t, requested_use_token_latencies=False), "settings", "token latencies"),
        (lambda t: _edit(t, f"{SERVER}/TEST06/verify_accuracy.txt", "EOS check pass: True", "EOS check pass: False"),
         "test06", "EOS check pass: True"),
        (lambda t: _edit(t, "closed/acme/systems/cpu.json", '"cooling": "air"', '"cooling": ""'), "system",
         "cooling"),
        (lambda t: _edit(t, f"{SERVER}/measurements.json", '"retraining": "no", ', ""), "file", "retraining"),
    ],
)
def test_the_checker_flags_each_planted_defect(tmp_path, plant, kind, text):
    tree = clean_tree(tmp_path)
    plant(tree)
    findings = check_tree(tree)
    assert findings, "the defect went unnoticed"
    assert {f.kind for f in findings} == {kind}, findings
    assert any(text in f.message for f in findings), findings


def test_the_checker_reports_every_problem_at_once(tmp_path):
    tree = clean_tree(tmp_path)
    _detail(tree, effective_min_duration_ms=1000, effective_schedule_rng_seed=7)
    (tree / SERVER / "TEST06" / "verify_accuracy.txt").unlink()
    assert {f.kind for f in check_tree(tree)} == {"duration", "seed", "file"}
    result = run_cli("llmkit", "check", str(tree))
    assert result.returncode == 1 and "3 finding(s)" in result.stderr
    assert run_cli("llmkit", "check", str(tmp_path / "nothing")).returncode == 2


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
    check = json.loads((pipeline / "submission" / "submission_check.json").read_text())
    assert check["submittable"] is False
    # A smoke run's tree may only fall short where a smoke run must: durations and counts (and accuracy, since
    # the model has random weights).
    assert {f["kind"] for f in check["findings"]} <= {"duration", "count", "accuracy"}
    assert {f["kind"] for f in check["findings"]} >= {"duration", "count"}
    tree = pipeline / "submission" / "closed" / "llmkit-demo"
    accuracy_log = tree / "results/cpu/mixtral-8x7b/Offline/accuracy/mlperf_log_accuracy.json"
    full = (pipeline / "offline-accuracy" / "mlperf_log_accuracy.json").read_bytes()
    assert accuracy_log.read_bytes() == (full if len(full) <= 10 * 1024 else full[:4096] + b"\n...\n" + full[-4096:])
    system = json.loads((tree / "systems" / "cpu.json").read_text())
    assert len(system) == 35 and system["submitter"] == "llmkit-demo" and system["host_processor_core_count"]


def test_large_accuracy_logs_keep_their_first_and_last_4096_bytes(tmp_path):
    from evaluation.submission.package import copy_truncated_log

    source, small, large = tmp_path / "log.json", tmp_path / "small.json", tmp_path / "large.json"
    source.write_bytes(bytes(range(256)) * 8)
    copy_truncated_log(source, small)
    assert small.read_bytes() == source.read_bytes()
    source.write_bytes(bytes(range(256)) * 100)
    copy_truncated_log(source, large)
    data = source.read_bytes()
    assert large.read_bytes() == data[:4096] + b"\n...\n" + data[-4096:]


def test_packaging_twice_never_overwrites_and_bad_runs_are_clear_errors(pipeline, tmp_path):
    tree = pipeline / "submission"
    before = (tree / "submission_check.json").read_bytes()
    again = run_cli("llmkit", "package", f"submission.pipeline_dir={pipeline}", f"submission.output_dir={tree}")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert (tree / "submission_check.json").read_bytes() == before
    v51 = run_cli("llmkit", "package", f"submission.pipeline_dir={pipeline}", "submission.layout=v5_1",
                  f"submission.output_dir={tmp_path / 'v51'}")
    assert v51.returncode == 0, v51.stderr[-2000:]
    assert (tmp_path / "v51/closed/llmkit-demo/compliance/cpu/mixtral-8x7b/Server/TEST06/verify_accuracy.txt").is_file()
    assert (tmp_path / "v51/closed/llmkit-demo/measurements/cpu/mixtral-8x7b/Server/measurements.json").is_file()
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
                       "benchmark=llama3.1-405b", "model=tiny-llama3", "scenario=offline")
    assert log_only.returncode == 2 and "never overwritten" in log_only.stderr  # same TEST06/ beside the log
