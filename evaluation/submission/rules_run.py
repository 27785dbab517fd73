"""The rules for one (system, benchmark, scenario) of a tree: its performance, accuracy, TEST06 and measurements files.

Loadgen's mlperf_log_detail.txt is read structurally (its :::MLLOG records), never the summary's prose. The rules are
those of the round's submission checker (tools/submission in mlcommons/inference), for the closed and open divisions.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from evaluation.submission.layout import ACCURACY_FILES, MEASUREMENT_SIDE_FILES, OPTIONAL_LOG_FILES, PERFORMANCE_FILES, Entry
from llmkit.benchmarks import MIN_DURATION_MS, Benchmark, Scenario
from llmkit.config.schema import Division
from llmkit.errors import UserError
from llmkit.rounds import SEED_KEYS, V5_1, seed_mismatches

MEASUREMENT_KEYS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                    "weight_transformations")
ACCURACY_LOG_LIMIT = 10 * 1024  # the checker's MAX_ACCURACY_LOG_SIZE for accuracy/mlperf_log_accuracy.json
# The checker's accuracy.txt patterns, by metric (each is matched against every line).
ACCURACY_PATTERNS = {
    "rouge1": r"'rouge1':\s+'?([\d.]+)", "rouge2": r"'rouge2':\s+'?([\d.]+)", "rougeL": r"'rougeL':\s+'?([\d.]+)",
    "gsm8k": r"'gsm8k':\s([\d.]+)", "mbxp": r"'mbxp':\s([\d.]+)", "exact_match": r"'exact_match':\s([\d.]+)",
    "tokens_per_sample": r"'tokens_per_sample':\s([\d.]+)",
}
FIRST_TOKEN_LINES = ("First token check pass: True", "First token check pass: Skipped")
TEST06_LINES = ("EOS check pass: True", "Sample length check pass: True")


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    message: str


def implementation_of(measurements: Path, system: str, scenario: str) -> str:
    """v5.1's implementation name: the measurements file is <system>_<implementation>[_<scenario>].json."""
    name = measurements.name.removesuffix(".json").removeprefix(system).lstrip("_")
    return name.removesuffix(f"_{scenario}")


def json_object(path: Path) -> dict | None:
    """The JSON object in `path`, or None when it is not one (not JSON, not UTF-8, or another JSON value)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class EntryCheck:
    """Every rule for one entry; findings accumulate in `findings`."""

    def __init__(self, entry: Entry, benchmark: Benchmark, scenario: Scenario, division: Division,
                 findings: list[Finding]):
        self.entry, self.benchmark, self.scenario, self.division = entry, benchmark, scenario, division
        self.findings = findings

    def add(self, kind: str, where: Path, message: str) -> None:
        self.findings.append(Finding(kind, str(where), message))

    def run(self) -> None:
        entry = self.entry
        self.files(entry.performance, PERFORMANCE_FILES)
        self.files(entry.accuracy, ACCURACY_FILES)
        self.files(entry.measurements, MEASUREMENT_SIDE_FILES)
        if self.division is Division.closed:  # the open division needs no compliance runs
            self.files(entry.test06, ("verify_accuracy.txt",))
            self.test06()
        self.performance()
        self.accuracy()
        self.measurements()

    def files(self, directory: Path, names: tuple[str, ...]) -> None:
        for name in names:
            path = directory / name
            if not path.is_file():
                self.add("file", path, "required file is missing")
            elif path.stat().st_size == 0 and name in MEASUREMENT_SIDE_FILES:
                self.add("file", path, "is empty; the checker needs its content")
        exact = names in (PERFORMANCE_FILES, ACCURACY_FILES)
        if exact and self.entry.round.name is V5_1 and directory.is_dir():
            extra = sorted(p.name for p in directory.iterdir() if p.name not in names and p.name not in OPTIONAL_LOG_FILES)
            if extra:
                self.add("layout", directory, f"holds {', '.join(extra)}, which v5.1's checker rejects (its file "
                                              "lists must match exactly); remove them")

    def detail(self, path: Path) -> dict | None:
        from llmkit.loadgen_log import read_detail_log

        if not path.is_file():
            return None  # reported as a missing file
        try:
            return read_detail_log(path)
        except UserError as error:
            self.add("file", path, str(error))
            return None

    def performance(self) -> None:
        where = self.entry.performance
        detail = self.detail(where / "mlperf_log_detail.txt")
        if detail is None:
            return
        benchmark, scenario = self.benchmark, self.scenario
        if detail.get("effective_min_duration_ms", 0) < MIN_DURATION_MS:
            self.add("duration", where, f"min_duration is {detail.get('effective_min_duration_ms')} ms; the rules "
                                        f"need >= {MIN_DURATION_MS}")
        if (detail.get("effective_performance_sample_count") or 0) < benchmark.performance_sample_count:
            self.add("count", where, f"performance_sample_count is {detail.get('effective_performance_sample_count')}; "
                                     f"{benchmark.name} needs {benchmark.performance_sample_count}")
        # Loadgen always runs Offline as one query (min_query_count 1): the rule is on the samples in that query.
        # v6.0's checker applies it to the closed division, v5.1's to every division.
        spq_applies = self.division is Division.closed or self.entry.round.name is V5_1
        if scenario is Scenario.Offline and spq_applies:
            samples = detail.get("effective_samples_per_query") or 0
            if samples < benchmark.offline_min_query_count:
                self.add("count", where, f"the Offline query holds {samples} samples; {benchmark.name} needs "
                                         f">= {benchmark.offline_min_query_count} (samples per query)")
        self.seeds(detail, where)
        if detail.get("requested_use_token_latencies") is not True:
            self.add("settings", where, "token latencies are not enabled (use_token_latencies)")
        if detail.get("effective_sample_concatenate_permutation") is not True:
            self.add("settings", where, "sample_concatenate_permutation (equal issue) is off")
        self.latencies(detail, where)
        if detail.get("result_validity") != "VALID":
            if detail.get("result_perf_constraints_met") is False:
                kind, why = "latency", "latency constraints not met"
            elif detail.get("early_stopping_met") is False or detail.get("result_min_queries_met") is False:
                kind, why = "count", "too few queries (min query count or early stopping)"
            elif detail.get("result_min_duration_met") is False:
                kind, why = "duration", "min duration not met"
            else:
                kind, why = "validity", detail.get("result_invalid_reason") or "no reason given"
            self.add(kind, where, f"loadgen judged the run INVALID: {why}")

    def seeds(self, detail: dict, where: Path) -> None:
        seeds = {key: detail.get(f"effective_{key}") for key in SEED_KEYS}
        for mismatch in seed_mismatches(self.entry.round, seeds):
            self.add("seed", where, f"{mismatch}; run with the loadgen release of that round "
                                    f"({self.entry.round.loadgen_fix()})")

    def latencies(self, detail: dict, where: Path) -> None:
        limits = self.benchmark.latency_limits.get(self.scenario)
        if limits is None:
            return
        for key, limit_ms, name in (("result_first_token_99.00_percentile_latency_ns", limits.ttft_ms, "TTFT"),
                                    ("result_time_per_output_token_99.00_percentile_ns", limits.tpot_ms, "TPOT")):
            value = detail.get(key)
            if value is None or value > limit_ms * 1e6:
                shown = None if value is None else round(value / 1e6, 1)
                self.add("latency", where, f"p99 {name} {shown} ms is over the {self.scenario.value} limit of "
                                           f"{limit_ms} ms")

    def accuracy(self) -> None:
        where = self.entry.accuracy
        path = where / "accuracy.txt"
        log = where / "mlperf_log_accuracy.json"
        if log.is_file() and log.stat().st_size > ACCURACY_LOG_LIMIT:
            self.add("file", log, f"is {log.stat().st_size} bytes; the checker allows {ACCURACY_LOG_LIMIT} "
                                  "(keep the first and last 4096 bytes, as llmkit package does)")
        if path.is_file():
            self.accuracy_values(path)
        detail = self.detail(where / "mlperf_log_detail.txt")
        if detail is not None:
            self.seeds(detail, where)
            covered = detail.get("effective_accuracy_sample_count", detail.get("qsl_reported_total_count"))
            if covered != self.benchmark.validation.rows:
                self.add("count", where, f"the accuracy run covered {covered} samples; {self.benchmark.name} has "
                                         f"{self.benchmark.validation.rows}")

    def accuracy_values(self, path: Path) -> None:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        targets = {t.metric: t for t in self.benchmark.accuracy_targets}
        for name in (*targets, "tokens_per_sample"):
            value = next((float(m.group(1)) for line in lines if (m := re.search(ACCURACY_PATTERNS[name], line))),
                         None)
            if value is None:
                self.add("accuracy", path, f"no line matches the checker's pattern for {name}")
            elif self.division is Division.open:
                continue  # the open division has no accuracy targets
            elif name == "tokens_per_sample":
                low, high = self.benchmark.tokens_per_sample_bounds
                if not low <= value <= high:
                    self.add("accuracy", path, f"tokens_per_sample {value} is outside {low:.1f} .. {high:.1f}")
            elif value < targets[name].fraction * targets[name].reference:
                self.add("accuracy", path, f"{name} {value} is below 99% of {targets[name].reference}")
        if self.division is Division.closed and not any(re.fullmatch(r"hash=[0-9a-f]{64}", line) for line in lines):
            self.add("accuracy", path, "no hash=<sha256> line")

    def test06(self) -> None:
        path = self.entry.test06 / "verify_accuracy.txt"
        if not path.is_file():
            return
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        first = FIRST_TOKEN_LINES[1] if self.scenario is Scenario.Offline else FIRST_TOKEN_LINES[0]
        for line in (first, *TEST06_LINES):
            if line not in lines:
                self.add("test06", path, f"no line '{line}'")

    def implementation_code(self, measurements: Path) -> None:
        """v5.1's checker looks for code/<benchmark>/<implementation>, named by the measurements file."""
        entry = self.entry
        implementation = implementation_of(measurements, entry.system, entry.scenario)
        code = entry.root / entry.round.code_dir / entry.benchmark / implementation
        if not implementation or not code.is_dir():
            self.add("file", code, f"v5.1 needs the code of implementation '{implementation}' (named by "
                                   f"{measurements.name}) in {entry.round.code_dir}/{entry.benchmark}/")

    def measurements(self) -> None:
        path = self.entry.find_measurements()
        if path is None:
            wanted = self.entry.measurements / self.entry.measurements_name()
            self.add("file", wanted, "required measurements file is missing" + (
                f" (v5.1 names it {self.entry.system}*.json)" if self.entry.round.separate_compliance_tree else ""))
            return
        if self.entry.round.separate_compliance_tree:
            self.implementation_code(path)
        values = json_object(path)
        if values is None:
            self.add("file", path, "is not a JSON object")
            return
        for key in MEASUREMENT_KEYS:
            if key not in values:
                self.add("file", path, f"missing key {key}")
            elif not values[key]:
                self.add("file", path, f"key {key} is empty; the checker needs a value")
