"""`llmkit pipeline [overrides]`: the main job, run for the composed config.

For Offline and Server (first tokens streamed to loadgen): a performance run, an accuracy run and its evaluation,
and compliance TEST06, each in its own directory under runs/<benchmark>/<system>/pipeline-<time>/; then the
submission tree packaged from them (submission/) and its check report.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from llmkit.benchmarks import Scenario
from llmkit.children import run_child
from llmkit.config.app import hydra_app, task_overrides
from llmkit.config.schema import Mode, RunConfig
from llmkit.errors import UserError
from llmkit.rundir import refuse_existing_run, write_atomic

log = logging.getLogger(__name__)

SCENARIOS = (Scenario.Offline, Scenario.Server)


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]  # after the Python interpreter: `-m <stage> ...`
    loadgen: bool = False  # a SUT run: launched with the job's ranks under srun (launch/slurm_script.py)
    # What the step leaves when it has finished (a resumed pipeline skips it): a file, None for none.
    leaves: Path | None = None


# The overrides a pipeline was started with, kept in its directory so `resume=true` goes on with the same ones.
OVERRIDES_FILE = "pipeline-overrides.json"


def _run_step(step: Step) -> None:
    # Each loadgen run needs its own process (see sut.run), so every step is a command of its own; a signal to the
    # pipeline stops the step too (llmkit.children).
    log.info("pipeline step: %s", step.name)
    code = run_child(step.argv, f"pipeline step {step.name}")
    if code != 0:
        raise UserError(f"pipeline step {step.name} failed (exit {code}); see above")


def step_overrides(excluding: set[str] = frozenset()) -> tuple[list[str], list[str], list[str]]:
    """The job's overrides for the SUT steps, the evaluation step and the packaging step; refuses mode= and
    scenario=, which the pipeline sets itself."""
    for override in task_overrides(set()):
        if override.split("=", 1)[0].lstrip("+~") in ("scenario", "mode"):
            raise UserError(f"'{override}' has no effect on llmkit pipeline, which runs Offline and Server in both "
                            "modes itself; drop it (scenario.* settings still apply)")
    user = task_overrides({"output_dir", "evaluation.run_dir", "submission.pipeline_dir", "submission.output_dir",
                           "resume", *excluding})
    user = [o for o in user if o.split("=", 1)[0].lstrip("+~").split(".")[0] not in excluding]
    # The evaluation and packaging steps take only their own settings (they read each run's config).
    evaluation = [o for o in user if o.split("=", 1)[0].startswith("evaluation.")]
    submission = [o for o in user if o.split("=", 1)[0].startswith("submission.")]
    return user, evaluation, submission


def run_dirs(root: Path, scenario: Scenario) -> tuple[Path, Path, Path]:
    name = scenario.value.lower()
    return tuple(root / f"{name}-{kind}" for kind in ("performance", "accuracy", "test06"))  # type: ignore[return-value]


def pipeline_steps(root: Path, user: list[str], evaluation: list[str], submission: list[str]) -> list[Step]:
    """The main job's steps, in order: per scenario a performance, an accuracy run, its evaluation and TEST06; then
    the package step."""
    steps = []
    for scenario in SCENARIOS:
        name = scenario.value.lower()
        performance, accuracy, test06 = run_dirs(root, scenario)
        steps += [
            Step(f"{scenario.value} performance", ["-m", "sut", *user, f"scenario={name}", "mode=performance",
                                                   f"output_dir={performance}"], loadgen=True,
                 leaves=performance / "result.json"),
            Step(f"{scenario.value} accuracy", ["-m", "sut", *user, f"scenario={name}", "mode=accuracy",
                                                f"output_dir={accuracy}"], loadgen=True, leaves=accuracy / "result.json"),
            Step(f"{scenario.value} evaluation", ["-m", "evaluation", "accuracy", *evaluation,
                                                  f"evaluation.run_dir={accuracy}"], leaves=accuracy / "accuracy.txt"),
            Step(f"{scenario.value} TEST06", ["-m", "evaluation", "test06", *user, f"scenario={name}",
                                              f"output_dir={test06}"], loadgen=True,
                 leaves=test06 / "TEST06" / "verify_accuracy.txt"),
        ]
    steps.append(Step("package", ["-m", "evaluation", "package", *submission, f"submission.pipeline_dir={root}",
                                  f"submission.output_dir={root / 'submission'}"], leaves=root / "submission"))
    return steps


def _finished(step: Step) -> bool:
    """Whether a resumed pipeline may skip the step. An evaluation is finished once its verdict is in result.json
    (accuracy.txt comes first: one without the other is the pipeline's own cut evaluation, done again)."""
    if step.leaves is None or not step.leaves.exists():
        return False
    from evaluation.accuracy import evaluated  # the evaluation's own rule (imported only when resuming)

    if step.leaves.name == "accuracy.txt" and not evaluated(step.leaves.parent):
        step.leaves.unlink()  # the pipeline's own evaluation, cut short before its verdict: done again
        return False
    return True


def _resumable(step: Step) -> Step:
    """A TEST06 step whose run finished but whose verification did not is verified only."""
    if step.leaves is not None and step.leaves.name == "verify_accuracy.txt":
        run_dir = step.leaves.parent.parent
        if (run_dir / "result.json").exists():
            return Step(f"{step.name} verification", ["-m", "evaluation", "verify-test06",
                                                       f"evaluation.run_dir={run_dir}"], leaves=step.leaves)
    return step


def _start_or_resume(cfg: RunConfig, root: Path, overrides: list[str]) -> None:
    """A new pipeline directory with its overrides recorded, or (resume=true) an interrupted one started with the
    same overrides."""
    record = root / OVERRIDES_FILE
    if not cfg.resume:
        if record.is_file() and not (root / "pipeline.json").is_file():  # pipeline.json: the summary of a finished one
            raise UserError(f"{root} holds an interrupted pipeline; add resume=true to go on, or choose another "
                            "output_dir=")
        refuse_existing_run(root)
        root.mkdir(parents=True, exist_ok=True)
        write_atomic(record, json.dumps({"overrides": overrides}, indent=2) + "\n")
        return
    if not cfg.output_dir or not record.is_file():
        raise UserError(f"resume=true goes on with an interrupted pipeline: pass its directory as output_dir=DIR (one "
                        f"holding {OVERRIDES_FILE}){'' if not cfg.output_dir else f'; {root} holds none'}")
    started = json.loads(record.read_text()).get("overrides")
    if started != overrides:
        raise UserError(f"{root} was started with other overrides ({' '.join(started or []) or 'none'}); resume it with "
                        "exactly those, or start a new pipeline in another output_dir")


def run_pipeline(cfg: RunConfig) -> Path:
    root = Path(cfg.output_dir) if cfg.output_dir else (
        Path(cfg.runs_root) / cfg.benchmark.name / cfg.system.name / time.strftime("pipeline-%Y%m%d-%H%M%S")
    )
    user, evaluation, submission = step_overrides()
    _start_or_resume(cfg, root, user)
    for step in pipeline_steps(root, user, evaluation, submission):
        if cfg.resume and _finished(step):
            log.info("pipeline step: %s (finished before; skipped)", step.name)
            continue
        _run_step(_resumable(step) if cfg.resume else step)
    summary = []
    for scenario in SCENARIOS:
        for step, run_dir in zip(("performance", "accuracy", "TEST06"), run_dirs(root, scenario)):
            result = json.loads((run_dir / "result.json").read_text())
            summary.append({"step": f"{scenario.value} {step}", "run_dir": str(run_dir), **result})
    tree = root / "submission"
    (root / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(cfg, summary, root, tree)
    return root


def _print_summary(cfg: RunConfig, summary: list[dict], root: Path, tree: Path) -> None:
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
        sandbox = " (MBXP programs included, in the sandbox)" if cfg.benchmark.name == "mixtral-8x7b" else ""
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


main = hydra_app(run_pipeline)
