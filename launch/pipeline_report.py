"""The summary `llmkit pipeline` prints when it has finished: one row per run, where each is, the submission tree's
check."""
from __future__ import annotations

import json
from pathlib import Path

from llmkit.benchmarks import get_benchmark
from llmkit.config.schema import Mode, RunConfig


def print_summary(cfg: RunConfig, summary: list[dict], root: Path, tree: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"llmkit pipeline: {cfg.benchmark.name} on {cfg.model.name}, {cfg.backend.name} backend")
    for column in ("step", "verdict", "tokens/s", "p99 TTFT ms", "p99 TPOT ms", "samples"):
        table.add_column(column, no_wrap=True)
    for row in summary:
        perf = row["mode"] == Mode.performance.value and not row.get("compliance_test")
        if row.get("compliance_test"):
            verify = (Path(row["run_dir"]) / "TEST06" / "verify_accuracy.txt").read_text()
            verdict = "TEST06 pass" if "TEST06 verification complete" in verify else "TEST06 FAIL"
        else:
            verdict = row.get("validity", "-") if perf else f"accuracy {row['accuracy']['verdict']}"
        table.add_row(
            row["step"], verdict,
            f"{row['tokens_per_second']:.1f}" if perf else "-", str(row.get("ttft_p99_ms") or "-"),
            str(row.get("tpot_p99_ms") or "-"), str(row["sample_count"]),
        )
    console = Console(stderr=True, width=max(100, Console(stderr=True).width))
    console.print(table)
    for row in summary:
        console.print(f"{row['step']}: {row['run_dir']}", soft_wrap=True)
    for row in summary:
        if row.get("invalid_reason") and not row.get("compliance_test"):
            console.print(f"{row['step']} is INVALID: {row['invalid_reason']}")
    if cfg.model.tiny is not None:
        sandbox = " (MBXP programs included, in the sandbox)" if get_benchmark(cfg.benchmark.name).runs_code else ""
        console.print(
            f"[bold]Note:[/bold] {cfg.model.name} has random weights: its answers are meaningless, so its accuracy "
            "FAILs by construction. The job exercises the real loadgen, tokenizer, SUT, token accounting, "
            f"evaluation{sandbox}, TEST06 and packaging."
        )
    from evaluation.submission.package import report_path

    report = report_path(tree)
    check = json.loads(report.read_text())
    kinds = sorted({f["kind"] for f in check["findings"]})
    console.print(f"submission tree: {tree} ({'submittable' if check['submittable'] else 'not submittable'}; "
                  f"{len(check['findings'])} finding(s) of kind: {', '.join(kinds) or '-'}; report {report}; "
                  f"llmkit check {tree})")
    console.print(f"pipeline summary: {root / 'pipeline.json'}")
