"""The main job's steps (`llmkit pipeline`, and the sbatch script of `llmkit slurm`), and the rules for resuming an
interrupted pipeline: which steps finished, and that it goes on with the overrides it was started with."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmkit.benchmarks import Scenario
from llmkit.config.app import task_overrides
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError
from llmkit.rundir import refuse_existing_run, write_atomic

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


def finished(step: Step) -> bool:
    """Whether a resumed pipeline may skip the step. An evaluation is finished once its verdict is in result.json
    (accuracy.txt comes first: one without the other is the pipeline's own cut evaluation, done again)."""
    if step.leaves is None or not step.leaves.exists():
        return False
    from evaluation.accuracy import evaluated  # the evaluation's own rule (imported only when resuming)

    if step.leaves.name == "accuracy.txt" and not evaluated(step.leaves.parent):
        step.leaves.unlink()  # the pipeline's own evaluation, cut short before its verdict: done again
        return False
    return True


def resumable(step: Step) -> Step:
    """A TEST06 step whose run finished but whose verification did not is verified only."""
    if step.leaves is not None and step.leaves.name == "verify_accuracy.txt":
        run_dir = step.leaves.parent.parent
        if (run_dir / "result.json").exists():
            return Step(f"{step.name} verification", ["-m", "evaluation", "verify-test06",
                                                       f"evaluation.run_dir={run_dir}"], leaves=step.leaves)
    return step


def start_or_resume(cfg: RunConfig, root: Path, overrides: list[str]) -> None:
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
