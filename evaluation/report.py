"""The verdict and the reports: one table of metrics, their targets and pass/fail, and accuracy.txt."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from llmkit.benchmarks import Benchmark
from evaluation.metrics import scorers_for

PASS, FAIL, INCOMPLETE, NOT_EVALUATED, NO_TARGET = "pass", "fail", "incomplete", "not evaluated", "no target"


@dataclass(frozen=True)
class MetricRow:
    name: str
    subset: str
    aggregation: str
    samples: int
    value: float | None
    low: float | None  # pass threshold (inclusive)
    high: float | None  # upper bound, tokens_per_sample only
    status: str
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    overall: str  # PASS | FAIL | INCOMPLETE
    rows: list[MetricRow]

    def as_dict(self) -> dict:
        return {"overall": self.overall, "metrics": [asdict(r) for r in self.rows]}


def judge(benchmark: Benchmark, values: dict[str, float | None], samples: dict[str, int],
          incomplete: dict[str, str]) -> Verdict:
    targets = {t.metric: t for t in benchmark.accuracy_targets}
    rows = []
    for scorer in scorers_for(benchmark.name):
        for spec in scorer.metrics:
            value, target = values.get(spec.name), targets.get(spec.name)
            low = target.fraction * target.reference if target else None
            if value is None:
                status = NOT_EVALUATED
            elif target is None:
                status = NO_TARGET
            elif value >= low:
                status = PASS  # rows not evaluated count as failed, so the pass is certain
            else:
                status = INCOMPLETE if spec.name in incomplete else FAIL
            rows.append(MetricRow(spec.name, spec.subset, spec.aggregation, samples.get(spec.name, 0), value, low,
                                  None, status, incomplete.get(spec.name, "")))
    low, high = benchmark.tokens_per_sample_bounds
    tokens = values["tokens_per_sample"]
    rows.append(MetricRow("tokens_per_sample", "all answers", "output token ids / answers, 1 place",
                          samples.get("tokens_per_sample", 0), tokens, low, high,
                          PASS if tokens is not None and low <= tokens <= high else FAIL))
    if any(r.status == FAIL for r in rows):
        overall = "FAIL"
    elif incomplete or any(r.status in (INCOMPLETE, NOT_EVALUATED) for r in rows):
        overall = "INCOMPLETE"
    else:
        overall = "PASS"
    return Verdict(overall, rows)


def accuracy_txt(values: dict[str, float | int | None], log_sha256: str) -> str:
    """What the submission checker parses: a printed dict of plain numbers, then the log's hash."""
    plain = {k: (None if v is None else (int(v) if isinstance(v, int) else float(v))) for k, v in values.items()}
    return f"{plain}\nhash={log_sha256}\n"


def print_report(benchmark: Benchmark, verdict: Verdict, run_dir: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{benchmark.name} accuracy: {run_dir}")
    for column in ("metric", "rows", "value", "target", "status"):
        table.add_column(column, no_wrap=column != "status")
    colours = {PASS: "green", FAIL: "red", INCOMPLETE: "yellow", NOT_EVALUATED: "yellow", NO_TARGET: "white"}
    for row in verdict.rows:
        value = "-" if row.value is None else f"{row.value:.4f}"
        if row.high is not None:
            target = f"{row.low:.1f} .. {row.high:.1f}"
        else:
            target = "-" if row.low is None else f">= {row.low:.4f}"
        status = f"[{colours[row.status]}]{row.status}[/{colours[row.status]}]"
        table.add_row(row.name, str(row.samples), value, target, status + (f" ({row.note})" if row.note else ""))
    console = Console(stderr=True, width=max(110, Console(stderr=True).width))
    console.print(table)
    colour = {"PASS": "green", "FAIL": "red", "INCOMPLETE": "yellow"}[verdict.overall]
    console.print(f"verdict: [{colour}]{verdict.overall}[/{colour}] (each metric >= 99% of the reference, "
                  "tokens_per_sample within its band)")
