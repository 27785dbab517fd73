"""The checker on a clean tree of each round and on planted defects, one rule at a time; the accuracy log's truncation."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from evaluation.submission.check import check_tree
from evaluation.submission.layout import Entry
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
        seeds = {f"effective_{k}": v for k, v in get_round(round_).seeds.items()}
        (entry.accuracy / "mlperf_log_detail.txt").write_text(mllog({"qsl_reported_total_count": 15000, **seeds}))
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
        # The accuracy run's seeds are checked too.
        (lambda t: (t / SERVER / "accuracy/mlperf_log_detail.txt").write_text(mllog({
            "qsl_reported_total_count": 15000, "effective_qsl_rng_seed": 1})), "seed", "qsl_rng_seed is 1"),
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


def test_a_gitkeep_is_the_one_hidden_name_allowed(tmp_path):
    tree = clean_tree(tmp_path)
    (tree / SERVER / "performance/run_1/.gitkeep").write_text("")
    assert check_tree(tree) == []


def test_v51_wants_the_code_of_the_implementation_its_measurements_file_names(tmp_path):
    tree = clean_tree(tmp_path, V5_1)
    shutil.rmtree(tree / "closed/acme/code/mixtral-8x7b/llmkit")
    (tree / "closed/acme/code/mixtral-8x7b/README.md").write_text("# code\n")
    findings = check_tree(tree)
    assert {f.kind for f in findings} == {"file"}
    assert all("implementation 'llmkit'" in f.message for f in findings)


def test_v51_refuses_a_measurements_file_named_measurements_json(tmp_path):
    tree = clean_tree(tmp_path, V5_1)
    folder = tree / "closed/acme/measurements/cpu/mixtral-8x7b/Server"
    (folder / "cpu_llmkit_Server.json").rename(folder / "measurements.json")
    findings = check_tree(tree)
    assert [f.kind for f in findings] == ["file"] and "cpu*.json" in findings[0].message


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
