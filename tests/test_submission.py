"""The submission tree: the checker on a clean tree and on planted defects; packaging from a real pipeline."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from evaluation.submission.check import check_tree
from evaluation.submission.layout import Entry
from evaluation.submission.package import report_path
from evaluation.submission.system_json import system_json
from llmkit.benchmarks import MIXTRAL_8X7B
from llmkit.config.load import load
from llmkit.config.schema import Division, SubmissionConfig
from llmkit.rounds import ROUNDS, SubmissionRound, V5_1, V6_0, get_round

PASSING_ACCURACY = ("{'rouge1': 45.9, 'rouge2': 23.5, 'rougeL': 30.8, 'rougeLsum': 42.0, 'gsm8k': 74.0, "
                    "'mbxp': 60.5, 'gen_len': 1000, 'gen_num': 15000, 'gen_tok_len': 2170000, "
                    "'tokens_per_sample': 144.7}\nhash=" + "ab" * 32 + "\n")


def mllog(values: dict) -> str:
    return "".join(f':::MLLOG {json.dumps({"key": k, "value": v, "time_ms": 0.0})}\n' for k, v in values.items())


def performance_detail(scenario: str, round_=V6_0) -> dict:
    seeds = get_round(round_).seeds
    detail = {
        # Loadgen runs Offline as one query of samples_per_query samples.
        "effective_scenario": scenario, "effective_min_duration_ms": 600000, "effective_min_query_count": 1,
        "effective_samples_per_query": 15000 if scenario == "Offline" else 1,
        "effective_performance_sample_count": 15000, "requested_use_token_latencies": True,
        "effective_sample_concatenate_permutation": True, "result_validity": "VALID",
        **{f"effective_{k}": v for k, v in seeds.items()},
    }
    if scenario == "Server":
        detail.update({"result_first_token_99.00_percentile_latency_ns": 1_500_000_000,
                       "result_time_per_output_token_99.00_percentile_ns": 150_000_000})
    return detail


def clean_tree(tree: Path, round_=V6_0, division="closed") -> Path:
    root = tree / division / "acme"
    for scenario in ("Offline", "Server"):
        entry = Entry(root, get_round(round_), "cpu", "mixtral-8x7b", scenario)
        for directory in (entry.performance, entry.accuracy, entry.test06 / "accuracy", entry.measurements):
            directory.mkdir(parents=True, exist_ok=True)
        (entry.performance / "mlperf_log_summary.txt").write_text("Result is : VALID\n")
        (entry.performance / "mlperf_log_detail.txt").write_text(mllog(performance_detail(scenario, round_)))
        (entry.accuracy / "accuracy.txt").write_text(PASSING_ACCURACY)
        (entry.accuracy / "mlperf_log_accuracy.json").write_text("[]")
        (entry.accuracy / "mlperf_log_summary.txt").write_text("accuracy\n")
        (entry.accuracy / "mlperf_log_detail.txt").write_text(mllog({"qsl_reported_total_count": 15000}))
        first = "Skipped" if scenario == "Offline" else "True"
        (entry.test06 / "verify_accuracy.txt").write_text(
            f"First token check pass: {first}\nEOS check pass: True\nSample length check pass: True\n"
            "TEST06 verification complete\n")
        (entry.test06 / "accuracy" / "mlperf_log_accuracy.json").write_text("[]")
        (entry.measurements / entry.measurements_name()).write_text(json.dumps({
            "input_data_types": "int32", "retraining": "no", "starting_weights_filename": MIXTRAL_8X7B.checkpoint,
            "weight_data_types": "fp8", "weight_transformations": "quantization"}))
        (entry.measurements / "user.conf").write_text("# settings\n")
        (entry.measurements / "README.md").write_text("# how\n")
    (root / "systems").mkdir()
    (root / "systems" / "cpu.json").write_text(json.dumps(system_json(load([]).system, SubmissionConfig(
        submitter="acme", division=Division(division)))))
    (root / "documentation").mkdir()
    (root / "documentation" / "calibration.md").write_text("# Calibration\n")
    code = root / get_round(round_).code_dir
    code = code / "mixtral-8x7b" / "llmkit" if get_round(round_).separate_compliance_tree else code
    code.mkdir(parents=True)
    (code / "README.md").write_text("# code\n")
    return tree


@pytest.mark.parametrize("round_", list(SubmissionRound))
def test_a_clean_tree_has_no_findings(tmp_path, round_):
    assert check_tree(clean_tree(tmp_path, round_)) == []
    assert check_tree(tmp_path, get_round(round_)) == []


SERVER = "closed/acme/results/cpu/mixtral-8x7b/Server"


def _edit(tree: Path, relative: str, old: str, new: str) -> None:
    path = tree / relative
    path.write_text(path.read_text().replace(old, new))


def _detail(tree: Path, **changes) -> None:
    path = tree / SERVER / "performance/run_1/mlperf_log_detail.txt"
    path.write_text(mllog({**performance_detail("Server"), **changes}))


def _offline(tree: Path, **changes) -> None:
    path = tree / SERVER.replace("Server", "Offline") / "performance/run_1/mlperf_log_detail.txt"
    path.write_text(mllog({**performance_detail("Offline"), **changes}))


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
        # The v6.1 seeds (loadgen 6.0.16 and later) are not v6.0's.
        (lambda t: _detail(t, effective_qsl_rng_seed=2085463073848966840), "seed", "v6.0's 2465351861681999779"),
        (lambda t: _offline(t, effective_samples_per_query=14999), "count", "samples per query"),
        (lambda t: _edit(t, "closed/acme/systems/cpu.json", '"accelerators_per_node": "0"',
                         '"accelerators_per_node": 0'), "system", "accelerators_per_node"),
        (lambda t: _edit(t, "closed/acme/systems/cpu.json", '"status": "available"', '"status": "ready"'), "system",
         "status"),
        (lambda t: (t / "submission_check.json").write_text("{}"), "layout", "outside the division folders"),
        (lambda t: shutil.rmtree(t / "closed/acme/documentation"), "file", "calibration"),
        (lambda t: shutil.rmtree(t / "closed/acme/src"), "file", "src/"),
        (lambda t: shutil.rmtree(t / "closed/acme/results/cpu/mixtral-8x7b/Server"), "scenario", "needs Server"),
        (lambda t: (t / SERVER / "performance/run_1/.scratch").write_text("x"), "layout", "hidden names"),
        (lambda t: (t / SERVER / "performance/run_2").mkdir(), "layout", "empty folder"),
        (lambda t: (t / SERVER / "accuracy/mlperf_log_accuracy.json").write_bytes(b"x" * 20000), "file",
         "allows 10240"),
        (lambda t: shutil.move(t / "closed/acme/results/cpu/mixtral-8x7b",
                               t / "closed/acme/results/cpu/gptj-99"), "layout", "llmkit checks mixtral-8x7b, "
                                                                                  "llama3.1-405b"),
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


def test_the_pinned_loadgen_carries_the_default_rounds_seeds(tmp_path):
    # Loadgen layers its built-in mlperf.conf once per process: read the seeds in a fresh one.
    code = ("import mlperf_loadgen as lg, json, sys; s = lg.TestSettings(); s.FromConfig(sys.argv[1], 'mixtral-8x7b', "
            "'Offline'); print(json.dumps({k: getattr(s, k) for k in ('qsl_rng_seed', 'sample_index_rng_seed', "
            "'schedule_rng_seed')}))")
    (tmp_path / "user.conf").write_text("")
    output = run_cli(sys.executable, "-c", code, str(tmp_path / "user.conf"))
    assert json.loads(output.stdout) == ROUNDS[V6_0].seeds, output.stderr[-500:]


def test_the_checker_demands_the_rounds_seeds_not_the_installed_loadgens(tmp_path):
    tree = clean_tree(tmp_path / "tree")  # v6.0 seeds and layout
    findings = check_tree(tree, get_round(V5_1))
    assert {f.kind for f in findings} == {"seed", "layout", "file"}
    assert any("v5.1's 1780908523862526354" in f.message for f in findings)
    assert check_tree(clean_tree(tmp_path / "v51", V5_1)) == []
    result = run_cli("llmkit", "check", str(tree), "--round", "v5.1")
    assert result.returncode == 1 and "seed" in result.stderr


def test_offline_is_judged_by_samples_per_query_and_the_open_division_needs_no_compliance(tmp_path):
    tree = clean_tree(tmp_path / "closed-tree")
    # A real Offline run: loadgen's min_query_count is 1, its one query holds every sample.
    _offline(tree, effective_min_query_count=1, effective_samples_per_query=15000)
    assert check_tree(tree) == []
    open_tree = clean_tree(tmp_path / "open-tree", division="open")
    root = open_tree / "open" / "acme"
    for scenario in ("Offline", "Server"):
        shutil.rmtree(root / "results/cpu/mixtral-8x7b" / scenario / "TEST06")
    (root / "documentation" / "calibration.md").unlink()
    (root / "documentation").rmdir()
    path = root / "results/cpu/mixtral-8x7b/Offline/performance/run_1/mlperf_log_detail.txt"
    path.write_text(mllog({**performance_detail("Offline"), "effective_samples_per_query": 100}))
    _edit(open_tree, "open/acme/results/cpu/mixtral-8x7b/Server/accuracy/accuracy.txt", "'mbxp': 60.5", "'mbxp': 5.5")
    assert check_tree(open_tree) == []


def test_legacy_interactive_folders_are_named_with_the_fix(tmp_path):
    tree = clean_tree(tmp_path)
    legacy = tree / "closed/acme/results/cpu/llama3.1-405b-interactive/Server"
    shutil.copytree(tree / SERVER, legacy)
    findings = [f for f in check_tree(tree) if "interactive" in f.where]
    assert [f.kind for f in findings] == ["layout"]
    assert "results/cpu/llama3.1-405b/Interactive/" in findings[0].message


def test_v51_refuses_a_measurements_file_named_measurements_json(tmp_path):
    tree = clean_tree(tmp_path, V5_1)
    folder = tree / "closed/acme/measurements/cpu/mixtral-8x7b/Server"
    (folder / "cpu_llmkit_Server.json").rename(folder / "measurements.json")
    findings = check_tree(tree)
    assert [f.kind for f in findings] == ["file"] and "cpu*.json" in findings[0].message


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


def test_large_accuracy_logs_keep_their_first_and_last_4096_bytes(tmp_path):
    from evaluation.submission.package import copy_truncated_log

    source, small, large = tmp_path / "log.json", tmp_path / "small.json", tmp_path / "large.json"
    source.write_bytes(bytes(range(256)) * 8)
    copy_truncated_log(source, small)
    assert small.read_bytes() == source.read_bytes()
    source.write_bytes(bytes(range(256)) * 100)
    copy_truncated_log(source, large)
    data = source.read_bytes()
    # truncate_accuracy_log.py writes "\n\n...\n\n" between the first and last 4096 bytes (8199 bytes in all).
    assert large.read_bytes() == data[:4096] + b"\n\n...\n\n" + data[-4096:]
    assert len(large.read_bytes()) == 8199


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
                       "benchmark=llama3.1-405b", "model=tiny-llama3", "scenario=offline")
    assert log_only.returncode == 2 and "never overwritten" in log_only.stderr  # same TEST06/ beside the log
    # Verifying a log needs its benchmark and scenario, not a model that fits them.
    elsewhere = tmp_path / "log-only"
    elsewhere.mkdir()
    shutil.copyfile(run / "mlperf_log_accuracy.json", elsewhere / "mlperf_log_accuracy.json")
    no_model = run_cli("llmkit", "test06", "verify", str(elsewhere / "mlperf_log_accuracy.json"),
                       "benchmark=llama3.1-405b", "scenario=offline")
    assert no_model.returncode == 0, no_model.stderr[-2000:]
    assert (elsewhere / "TEST06" / "verify_accuracy.txt").read_text().startswith("First token check pass: Skipped")


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
