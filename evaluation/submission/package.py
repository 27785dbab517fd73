"""`llmkit package`: build closed/<submitter>/... from run directories, check it, and say whether it is submittable.

Each (benchmark, scenario) needs a performance run, an evaluated accuracy run and a verified TEST06 run. The tree is
written in staging and renamed into place, never over an existing one, and carries `submission_check.json`: the
findings of `llmkit check` and `submittable: true` only when there are none.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from evaluation.submission.check import check_submitter, findings_json, print_findings
from evaluation.submission.layout import Entry, code_dir, results_name, scenario_dir
from evaluation.submission.system_json import system_json
from evaluation.test06 import TEST06_DIR, VERIFY_FILE
from llmkit.benchmarks import Scenario, get_benchmark
from llmkit.config.schema import Mode, RunConfig, SubmissionConfig
from llmkit.errors import UserError
from llmkit.rundir import StagedDir

log = logging.getLogger(__name__)

CHECK_FILE = "submission_check.json"
ACCURACY_LOG_KEEP = 4096  # the checker wants the first and last 4096 bytes of a log over 10 KiB
ACCURACY_LOG_LIMIT = 10 * 1024


@dataclass
class Slot:
    """The runs that make one (benchmark, scenario) of a submission."""

    performance: Path | None = None
    accuracy: Path | None = None
    test06: Path | None = None


def _result(run_dir: Path) -> dict:
    path = run_dir / "result.json"
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist; list existing runs in submission.runs=")
    if not path.is_file():
        raise UserError(f"{run_dir} has no result.json, so it is not a finished llmkit run")
    return json.loads(path.read_text())


def collect(submission: SubmissionConfig) -> dict[tuple[str, str], Slot]:
    runs = [Path(r) for r in submission.runs]
    if submission.pipeline_dir:
        pipeline = Path(submission.pipeline_dir)
        if not pipeline.is_dir():
            raise UserError(f"pipeline directory {pipeline} does not exist; pass submission.pipeline_dir= of a pipeline")
        runs += sorted(p for p in pipeline.iterdir() if (p / "result.json").is_file())
    if not runs:
        raise UserError("nothing to package: pass submission.runs=[dir,...] or submission.pipeline_dir=DIR")
    slots: dict[tuple[str, str], Slot] = {}
    for run_dir in runs:
        result = _result(run_dir)
        slot = slots.setdefault((result["benchmark"], result["scenario"]), Slot())
        if result.get("compliance_test") == "TEST06":
            kind = "test06"
            verify = run_dir / TEST06_DIR / VERIFY_FILE
            if not verify.is_file():
                raise UserError(f"{run_dir} is a TEST06 run without {TEST06_DIR}/{VERIFY_FILE}; "
                                f"run llmkit test06 verify {run_dir}")
            if "TEST06 verification complete" not in verify.read_text():
                raise UserError(f"TEST06 failed for {run_dir} ({verify}); fix the SUT and run TEST06 again")
        elif result["mode"] == Mode.accuracy.value:
            kind = "accuracy"
            if not (run_dir / "accuracy.txt").is_file():
                raise UserError(f"{run_dir} is an accuracy run that was not evaluated; run llmkit evaluate {run_dir}")
        else:
            kind = "performance"
        if getattr(slot, kind) is not None:
            raise UserError(f"two {kind} runs for {result['benchmark']} {result['scenario']}: {getattr(slot, kind)} "
                            f"and {run_dir}; package one")
        setattr(slot, kind, run_dir)
    for (benchmark, scenario), slot in slots.items():
        for kind in ("performance", "accuracy", "test06"):
            if getattr(slot, kind) is None:
                raise UserError(f"no {kind} run for {benchmark} {scenario}; a submission needs performance, evaluated "
                                "accuracy and TEST06 runs for each scenario")
    return slots


def copy_truncated_log(source: Path, destination: Path) -> None:
    data = source.read_bytes()
    if len(data) > ACCURACY_LOG_LIMIT:
        data = data[:ACCURACY_LOG_KEEP] + b"\n...\n" + data[-ACCURACY_LOG_KEEP:]
    destination.write_bytes(data)


def _copy(files: tuple[str, ...], source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, destination / name)


def measurements(run_cfg: RunConfig) -> dict[str, str]:
    benchmark = get_benchmark(run_cfg.benchmark.name)
    weights = f"{run_cfg.model.name} (random weights made by llmkit)" if run_cfg.model.tiny else \
        (benchmark.checkpoint if run_cfg.model.name == "checkpoint" else run_cfg.model.name)
    return {"input_data_types": "int32", "retraining": "no", "starting_weights_filename": weights,
            "weight_data_types": run_cfg.backend.dtype.value, "weight_transformations": "none"}


def readme(slot: Slot, run_cfg: RunConfig) -> str:
    scenario = run_cfg.scenario.name.value.lower()
    base = f"benchmark={run_cfg.benchmark.name} model={run_cfg.model.name} scenario={scenario} " \
           f"system={run_cfg.system.name} backend={run_cfg.backend.name.value} loadgen={run_cfg.loadgen.name}"
    return (f"# {run_cfg.benchmark.name} {run_cfg.scenario.name.value} with llmkit\n\n"
            "Reproduce with the llmkit kit (see its README):\n\n```sh\n"
            f"llmkit run {base} mode=performance\n"
            f"llmkit run {base} mode=accuracy output_dir=ACCURACY_RUN && llmkit evaluate ACCURACY_RUN\n"
            f"llmkit test06 {base}\n```\n\n"
            f"Runs packaged: {slot.performance}, {slot.accuracy}, {slot.test06}.\n")


def write_slot(root: Path, cfg: SubmissionConfig, slot: Slot) -> str:
    from evaluation.accuracy import run_config_of

    run_cfg = run_config_of(slot.performance)
    benchmark = get_benchmark(run_cfg.benchmark.name)
    scenario: Scenario = run_cfg.scenario.name
    entry = Entry(root, cfg.layout, run_cfg.system.name, results_name(benchmark, scenario), scenario_dir(scenario))
    _copy(("mlperf_log_summary.txt", "mlperf_log_detail.txt"), slot.performance, entry.performance)
    _copy(("accuracy.txt", "mlperf_log_summary.txt", "mlperf_log_detail.txt"), slot.accuracy, entry.accuracy)
    copy_truncated_log(slot.accuracy / "mlperf_log_accuracy.json", entry.accuracy / "mlperf_log_accuracy.json")
    _copy((VERIFY_FILE,), slot.test06 / TEST06_DIR, entry.test06)
    _copy(("mlperf_log_accuracy.json",), slot.test06 / TEST06_DIR / "accuracy", entry.test06 / "accuracy")
    entry.measurements.mkdir(parents=True, exist_ok=True)
    (entry.measurements / "measurements.json").write_text(json.dumps(measurements(run_cfg), indent=2) + "\n")
    shutil.copyfile(slot.performance / "user.conf", entry.measurements / "user.conf")
    (entry.measurements / "README.md").write_text(readme(slot, run_cfg))
    systems = root / "systems"
    systems.mkdir(parents=True, exist_ok=True)
    system_file = systems / f"{run_cfg.system.name}.json"
    if not system_file.exists():
        system_file.write_text(json.dumps(system_json(run_cfg.system, cfg), indent=2) + "\n")
    return f"{entry.benchmark}/{entry.scenario}"


def _code_readme() -> str:
    from importlib import metadata

    return (f"# llmkit {metadata.version('llmkit')}\n\nThe harness, SUT, evaluation and packaging that produced these "
            "results: the llmkit kit at this version (its repository holds the source, pinned dependencies and the "
            "commands in each result's README.md).\n")


def package(cfg: RunConfig) -> Path:
    submission = cfg.submission
    if not submission.submitter.strip():
        raise UserError("submission.submitter is empty; pass submission.submitter=<your organization>")
    slots = collect(submission)
    output = Path(submission.output_dir) if submission.output_dir else Path("submissions") / time.strftime("%Y%m%d-%H%M%S")
    staged = StagedDir(output)
    try:
        root = staged.path / submission.division / submission.submitter
        packaged = [write_slot(root, submission, slot) for slot in slots.values()]
        code = code_dir(root, submission.layout)
        code.mkdir(parents=True)
        (code / "README.md").write_text(_code_readme())
        findings = check_submitter(root)
        check = {"submittable": not findings, "layout": submission.layout.value, "packaged": packaged,
                 "findings": findings_json(findings)}
        (staged.path / CHECK_FILE).write_text(json.dumps(check, indent=2) + "\n")
    except BaseException:
        staged.discard()
        raise
    tree = staged.commit()
    print_findings(check_submitter(tree / submission.division / submission.submitter), tree)
    log.info("submission tree: %s (%s)", tree, "submittable" if not findings else f"{len(findings)} finding(s), "
             "not submittable")
    return tree
