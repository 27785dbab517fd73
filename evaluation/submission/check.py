"""`llmkit check TREE`: validate a submission tree and report every problem at once.

Loadgen's mlperf_log_detail.txt is read structurally (its :::MLLOG records), never the summary's prose. Each
finding has a kind, so a smoke run's tree can be told apart from a broken one: a smoke run must have `duration`
and `count` findings (and `accuracy` ones with a random-weight model), and nothing else.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from evaluation.submission.layout import (
    ACCURACY_FILES, MEASUREMENT_FILES, PERFORMANCE_FILES, SYSTEM_JSON_DIR, Entry, entries,
)
from evaluation.submission.system_json import system_findings
from llmkit.benchmarks import BENCHMARKS, Benchmark, Scenario
from llmkit.errors import UserError, exit_on_user_error

MEASUREMENT_KEYS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                    "weight_transformations")
MIN_DURATION_MS = 600_000
SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")
# The checker's accuracy.txt patterns, by metric.
ACCURACY_PATTERNS = {
    "rouge1": r"'rouge1':\s+'?([\d.]+)", "rouge2": r"'rouge2':\s+'?([\d.]+)", "rougeL": r"'rougeL':\s+'?([\d.]+)",
    "gsm8k": r"'gsm8k':\s([\d.]+)", "mbxp": r"'mbxp':\s([\d.]+)", "exact_match": r"'exact_match':\s([\d.]+)",
    "tokens_per_sample": r"'tokens_per_sample':\s([\d.]+)",
}
TEST06_LINES = ("EOS check pass: True", "Sample length check pass: True", "TEST06 verification complete")


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    message: str


@lru_cache(maxsize=1)
def official_seeds() -> dict[str, int]:
    """The seeds of loadgen's built-in mlperf.conf, read in a fresh process (loadgen applies it once per process)."""
    code = (
        "import json, tempfile, mlperf_loadgen as lg\n"
        "conf = tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False); conf.close()\n"
        "s = lg.TestSettings(); s.FromConfig(conf.name, 'mixtral-8x7b', 'Offline')\n"
        f"print(json.dumps({{k: getattr(s, k) for k in {SEED_KEYS!r}}}))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _benchmark_and_scenario(entry: Entry) -> tuple[Benchmark | None, Scenario | None]:
    interactive = entry.benchmark.endswith("-interactive")
    benchmark = BENCHMARKS.get(entry.benchmark.removesuffix("-interactive"))
    scenario = Scenario.Interactive if interactive else next(
        (s for s in Scenario if s.value == entry.scenario), None)
    return benchmark, scenario


def _detail(path: Path, findings: list[Finding]) -> dict | None:
    from sut.results import read_detail_log

    try:
        return read_detail_log(path)
    except UserError as error:
        findings.append(Finding("file", str(path), str(error)))
        return None


def _check_files(directory: Path, names: tuple[str, ...], findings: list[Finding]) -> None:
    for name in names:
        if not (directory / name).is_file():
            findings.append(Finding("file", str(directory / name), "required file is missing"))


def _check_performance(entry: Entry, benchmark: Benchmark, scenario: Scenario, findings: list[Finding]) -> None:
    where = str(entry.performance)
    detail = _detail(entry.performance / "mlperf_log_detail.txt", findings)
    if detail is None:
        return

    def add(kind: str, message: str) -> None:
        findings.append(Finding(kind, where, message))

    if detail.get("effective_min_duration_ms", 0) < MIN_DURATION_MS:
        add("duration", f"min_duration is {detail.get('effective_min_duration_ms')} ms; the rules need >= {MIN_DURATION_MS}")
    if detail.get("effective_performance_sample_count") != benchmark.performance_sample_count:
        add("count", f"performance_sample_count is {detail.get('effective_performance_sample_count')}; "
                     f"{benchmark.name} needs {benchmark.performance_sample_count}")
    if scenario is Scenario.Offline and detail.get("effective_min_query_count", 0) < benchmark.offline_min_query_count:
        add("count", f"min_query_count is {detail.get('effective_min_query_count')}; Offline needs "
                     f">= {benchmark.offline_min_query_count}")
    for key in SEED_KEYS:
        if detail.get(f"effective_{key}") != official_seeds()[key]:
            add("seed", f"{key} is {detail.get(f'effective_{key}')}, not mlperf.conf's {official_seeds()[key]}")
    if detail.get("requested_use_token_latencies") is not True:
        add("settings", "token latencies are not enabled (use_token_latencies)")
    if detail.get("effective_sample_concatenate_permutation") is not True:
        add("settings", "sample_concatenate_permutation (equal issue) is off")
    limits = benchmark.latency_limits.get(scenario)
    if limits is not None:
        for key, limit_ms, name in (("result_first_token_99.00_percentile_latency_ns", limits.ttft_ms, "TTFT"),
                                    ("result_time_per_output_token_99.00_percentile_ns", limits.tpot_ms, "TPOT")):
            value = detail.get(key)
            if value is None or value > limit_ms * 1e6:
                add("latency", f"p99 {name} {None if value is None else round(value / 1e6, 1)} ms is over the "
                               f"{limit_ms} ms limit")
    if detail.get("result_validity") != "VALID":
        if detail.get("result_perf_constraints_met") is False:
            kind, why = "latency", "latency constraints not met"
        elif detail.get("early_stopping_met") is False or detail.get("result_min_queries_met") is False:
            kind, why = "count", "too few queries (min query count or early stopping)"
        elif detail.get("result_min_duration_met") is False:
            kind, why = "duration", "min duration not met"
        else:
            kind, why = "validity", detail.get("result_invalid_reason") or "no reason given"
        add(kind, f"loadgen judged the run INVALID: {why}")


def _check_accuracy(entry: Entry, benchmark: Benchmark, findings: list[Finding]) -> None:
    path = entry.accuracy / "accuracy.txt"
    if not path.is_file():
        return
    text = path.read_text()
    for target in (*benchmark.accuracy_targets, None):
        name = target.metric if target else "tokens_per_sample"
        match = re.search(ACCURACY_PATTERNS[name], text)
        if match is None:
            findings.append(Finding("accuracy", str(path), f"no line matches the checker's pattern for {name}"))
            continue
        value = float(match.group(1))
        if target is None:
            low, high = benchmark.tokens_per_sample_bounds
            if not low <= value <= high:
                findings.append(Finding("accuracy", str(path), f"tokens_per_sample {value} is outside "
                                                               f"{low:.1f} .. {high:.1f}"))
        elif value < target.fraction * target.reference:
            findings.append(Finding("accuracy", str(path), f"{name} {value} is below 99% of {target.reference}"))
    if not re.search(r"^hash=[0-9a-f]{64}$", text, re.MULTILINE):
        findings.append(Finding("accuracy", str(path), "no hash=<sha256> line"))
    detail = _detail(entry.accuracy / "mlperf_log_detail.txt", findings)
    if detail is not None and detail.get("qsl_reported_total_count") != benchmark.validation.rows:
        findings.append(Finding("count", str(entry.accuracy), f"the accuracy run covered "
                                f"{detail.get('qsl_reported_total_count')} samples; {benchmark.name} has "
                                f"{benchmark.validation.rows}"))


def _check_test06(entry: Entry, scenario: Scenario, findings: list[Finding]) -> None:
    path = entry.test06 / "verify_accuracy.txt"
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    first = "First token check pass: Skipped" if scenario is Scenario.Offline else "First token check pass: True"
    for line in (first, *TEST06_LINES):
        if line not in lines:
            findings.append(Finding("test06", str(path), f"no line '{line}'"))


def _check_measurements(entry: Entry, findings: list[Finding]) -> None:
    path = entry.measurements / "measurements.json"
    if not path.is_file():
        return
    try:
        keys = json.loads(path.read_text()).keys()
    except (json.JSONDecodeError, AttributeError):
        findings.append(Finding("file", str(path), "is not a JSON object"))
        return
    for key in MEASUREMENT_KEYS:
        if key not in keys:
            findings.append(Finding("file", str(path), f"missing key {key}"))


def check_submitter(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    found = entries(root)
    if not found:
        findings.append(Finding("file", str(root / "results"), "no results/<system>/<benchmark>/<scenario> directories"))
    for system in sorted({e.system for e in found}):
        path = root / SYSTEM_JSON_DIR / f"{system}.json"
        if not path.is_file():
            findings.append(Finding("file", str(path), "required file is missing"))
            continue
        findings.extend(Finding("system", str(path), p) for p in system_findings(json.loads(path.read_text())))
    for entry in found:
        benchmark, scenario = _benchmark_and_scenario(entry)
        if benchmark is None or scenario is None:
            findings.append(Finding("file", str(entry.results), "unknown benchmark or scenario directory"))
            continue
        _check_files(entry.performance, PERFORMANCE_FILES, findings)
        _check_files(entry.accuracy, ACCURACY_FILES, findings)
        _check_files(entry.test06, ("verify_accuracy.txt",), findings)
        _check_files(entry.test06 / "accuracy", ("mlperf_log_accuracy.json",), findings)
        _check_files(entry.measurements, MEASUREMENT_FILES, findings)
        _check_performance(entry, benchmark, scenario, findings)
        _check_accuracy(entry, benchmark, findings)
        _check_test06(entry, scenario, findings)
        _check_measurements(entry, findings)
    return findings


def check_tree(tree: Path) -> list[Finding]:
    if not tree.is_dir():
        raise UserError(f"{tree} is not a directory; pass the submission tree (the folder holding closed/ or open/)")
    roots = [p for division in ("closed", "open") for p in sorted((tree / division).glob("*")) if p.is_dir()]
    if not roots:
        raise UserError(f"{tree} has no closed/<submitter> or open/<submitter> folder; is it a submission tree?")
    return [f for root in roots for f in check_submitter(root)]


def print_findings(findings: list[Finding], tree: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, width=max(120, Console(stderr=True).width))
    if not findings:
        console.print(f"[green]{tree}: no findings, the tree is submittable[/green]")
        return
    table = Table(title=f"llmkit check: {len(findings)} finding(s) in {tree}")
    for column in ("kind", "where", "finding"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        table.add_row(finding.kind, str(Path(finding.where).relative_to(tree)) if finding.where.startswith(str(tree))
                      else finding.where, finding.message)
    console.print(table)


def findings_json(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]


@exit_on_user_error
def main() -> None:
    from llmkit.log import setup_logging

    setup_logging()
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        raise UserError("usage: llmkit check TREE (the folder holding closed/)")
    tree = Path(sys.argv[1])
    findings = check_tree(tree)
    print_findings(findings, tree)
    raise SystemExit(1 if findings else 0)
