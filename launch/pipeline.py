"""`llmkit pipeline [overrides]`: the main job, run for the composed config.

For Offline and Server (first tokens streamed to loadgen): a performance run, an accuracy run and its evaluation,
and compliance TEST06, each in its own directory under runs/<benchmark>/<system>/pipeline-<time>/; then the
submission tree packaged from them (submission/) and its check report.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from launch.pipeline_report import print_summary
from launch.pipeline_steps import (SCENARIOS, Step, finished, pipeline_steps, resumable, run_dirs, start_or_resume,
                                   step_overrides)
from llmkit.children import run_child
from llmkit.config.app import hydra_app
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError

log = logging.getLogger(__name__)


def _run_step(step: Step) -> None:
    # Each loadgen run needs its own process (see sut.run), so every step is a command of its own; a signal to the
    # pipeline stops the step too (llmkit.children).
    log.info("pipeline step: %s", step.name)
    code = run_child(step.argv, f"pipeline step {step.name}")
    if code != 0:
        raise UserError(f"pipeline step {step.name} failed (exit {code}); see above")


def run_pipeline(cfg: RunConfig) -> Path:
    root = Path(cfg.output_dir) if cfg.output_dir else (
        Path(cfg.runs_root) / cfg.benchmark.name / cfg.system.name / time.strftime("pipeline-%Y%m%d-%H%M%S")
    )
    user, evaluation, submission = step_overrides()
    start_or_resume(cfg, root, user)
    for step in pipeline_steps(root, user, evaluation, submission):
        if cfg.resume and finished(step):
            log.info("pipeline step: %s (finished before; skipped)", step.name)
            continue
        _run_step(resumable(step) if cfg.resume else step)
    summary = []
    for scenario in SCENARIOS:
        for step, run_dir in zip(("performance", "accuracy", "TEST06"), run_dirs(root, scenario)):
            result = json.loads((run_dir / "result.json").read_text())
            summary.append({"step": f"{scenario.value} {step}", "run_dir": str(run_dir), **result})
    tree = root / "submission"
    (root / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(cfg, summary, root, tree)
    return root


main = hydra_app(run_pipeline)
