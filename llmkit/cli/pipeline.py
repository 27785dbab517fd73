"""`llmkit pipeline [overrides]`: the main job, run for the composed config.

Steps: an Offline performance run, a Server performance run (first tokens streamed to loadgen), an Offline
accuracy run, each in its own directory under runs/<benchmark>/<system>/pipeline-<time>/, and the evaluation of the
accuracy run.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from llmkit.benchmarks import Scenario
from llmkit.config.app import hydra_app
from llmkit.config.schema import Mode, RunConfig
from llmkit.errors import UserError
from llmkit.rundir import refuse_existing_run

log = logging.getLogger(__name__)

STEPS = ((Scenario.Offline, Mode.performance), (Scenario.Server, Mode.performance), (Scenario.Offline, Mode.accuracy))


def _user_overrides() -> list[str]:
    """The user's overrides, less the keys each step sets itself."""
    from hydra.core.hydra_config import HydraConfig

    own = {"scenario", "mode", "output_dir", "evaluation.run_dir"}
    return [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].lstrip("+~") not in own]


def _run_step(name: str, command: list[str]) -> None:
    # Each loadgen run needs its own process (see sut.run), so every step is a command of its own.
    log.info("pipeline step: %s", name)
    step = subprocess.run([sys.executable, *command])
    if step.returncode != 0:
        raise UserError(f"pipeline step {name} failed (exit {step.returncode}); see above")


def run_pipeline(cfg: RunConfig) -> Path:
    root = Path(cfg.output_dir) if cfg.output_dir else (
        Path(cfg.runs_root) / cfg.benchmark.name / cfg.system.name / time.strftime("pipeline-%Y%m%d-%H%M%S")
    )
    refuse_existing_run(root)
    summary = []
    user = _user_overrides()
    for scenario, mode in STEPS:
        run_dir = root / f"{scenario.value.lower()}-{mode.value}"
        _run_step(f"{scenario.value} {mode.value}", [
            "-m", "sut", *user, f"scenario={scenario.value.lower()}", f"mode={mode.value}", f"output_dir={run_dir}",
        ])
        if mode is Mode.accuracy:
            _run_step("evaluation", ["-m", "evaluation", "accuracy", *user, f"evaluation.run_dir={run_dir}"])
        result = json.loads((run_dir / "result.json").read_text())
        summary.append({"step": f"{scenario.value} {mode.value}", "run_dir": str(run_dir), **result})
    (root / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(cfg, summary, root)
    return root


def _print_summary(cfg: RunConfig, summary: list[dict], root: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"llmkit pipeline: {cfg.benchmark.name} on {cfg.model.name}, {cfg.backend.name.value} backend")
    for column in ("step", "loadgen", "tokens/s", "p99 TTFT ms", "p99 TPOT ms", "samples"):
        table.add_column(column, no_wrap=True)
    for row in summary:
        perf = row["mode"] == Mode.performance.value
        table.add_row(
            row["step"], row.get("validity", "-") if perf else f"accuracy {row['accuracy']['verdict']}",
            f"{row['tokens_per_second']:.1f}" if perf else "-", str(row.get("ttft_p99_ms") or "-"),
            str(row.get("tpot_p99_ms") or "-"), str(row["sample_count"]),
        )
    console = Console(stderr=True, width=max(100, Console(stderr=True).width))
    console.print(table)
    for row in summary:
        console.print(f"{row['step']}: {row['run_dir']}", soft_wrap=True)
    for row in summary:
        if row.get("invalid_reason"):
            console.print(f"{row['step']} is INVALID: {row['invalid_reason']}")
    if cfg.model.tiny is not None:
        console.print(
            f"[bold]Note:[/bold] {cfg.model.name} has random weights: its answers are meaningless, so its accuracy "
            "FAILs by construction. The job exercises the real loadgen, tokenizer, SUT, token accounting and "
            "evaluation (MBXP programs included, in the sandbox)."
        )
    console.print(f"pipeline summary: {root / 'pipeline.json'}")


main = hydra_app(run_pipeline)
