"""`llmkit package`: build <division>/<submitter>/... from run directories, check it, and say whether it is submittable.

Each (benchmark, scenario) needs a performance run, an evaluated accuracy run and (in the closed division) a verified
TEST06 run. The tree is laid out for `submission.round`, written in staging and renamed into place, never over an
existing one. Its check report, `<tree>.check.json` (the findings of `llmkit check` and `submittable: true` only when
there are none), is written beside the tree, not in it: the checkers reject files outside the division folders.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from evaluation.submission.check import check_tree, findings_json, print_findings
from evaluation.submission.documents import calibration_md, code_readme, scenario_readme, served_dtype
from evaluation.submission.layout import CALIBRATION_DOC, DOCUMENTATION_DIR, IMPLEMENTATION, Entry, code_dir
from evaluation.submission.rules_run import ACCURACY_LOG_LIMIT
from evaluation.submission.system_json import system_json
from evaluation.test06 import TEST06_DIR, VERIFY_FILE
from llmkit.benchmarks import Scenario, get_benchmark
from llmkit.config.schema import Division, Mode, RunConfig, SubmissionConfig
from llmkit.config.validate import SINGLE_NAME
from llmkit.errors import UserError, not_there
from llmkit.rounds import get_round
from llmkit.rundir import StagedDir, write_atomic

log = logging.getLogger(__name__)

ACCURACY_LOG_KEEP = 4096  # the first and last 4096 bytes of a log over 10 KiB, as truncate_accuracy_log.py keeps
TRUNCATION_SEPARATOR = b"\n\n...\n\n"  # what truncate_accuracy_log.py writes between them


def report_path(tree: Path) -> Path:
    """Where the check report of `tree` goes: beside it."""
    return tree.with_name(f"{tree.name}.check.json")


@dataclass
class Slot:
    """The runs that make one (benchmark, scenario) of a submission."""

    performance: Path | None = None
    accuracy: Path | None = None
    test06: Path | None = None


def _result(run_dir: Path) -> dict:
    path = run_dir / "result.json"
    if not run_dir.is_dir():
        raise UserError(f"{not_there(run_dir, 'run directory', directory=True)}; list existing runs in submission.runs=")
    if not path.is_file():
        raise UserError(f"{run_dir} has no result.json, so it is not a finished llmkit run")
    return json.loads(path.read_text())


def collect(submission: SubmissionConfig) -> dict[tuple[str, str], Slot]:
    needed = ("performance", "accuracy", "test06") if submission.division is Division.closed else \
        ("performance", "accuracy")
    runs = [Path(r) for r in submission.runs]
    if submission.pipeline_dir:
        pipeline = Path(submission.pipeline_dir)
        if not pipeline.is_dir():
            raise UserError(f"{not_there(pipeline, 'pipeline directory', directory=True)}; pass submission.pipeline_dir= of a "
                            "pipeline")
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
        for kind in needed:
            if getattr(slot, kind) is None:
                compliance = " and TEST06" if "test06" in needed else ""
                raise UserError(f"no {kind} run for {benchmark} {scenario}; a {submission.division.value} submission "
                                f"needs performance, evaluated accuracy{compliance} runs for each scenario")
    return slots


def copy_truncated_log(source: Path, destination: Path) -> None:
    """Copy an accuracy log, truncated as the official truncate_accuracy_log.py does when it is over 10 KiB."""
    data = source.read_bytes()
    if len(data) > ACCURACY_LOG_LIMIT:
        data = data[:ACCURACY_LOG_KEEP] + TRUNCATION_SEPARATOR + data[-ACCURACY_LOG_KEEP:]
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
            "weight_data_types": served_dtype(run_cfg), "weight_transformations": "none"}


def write_slot(root: Path, cfg: SubmissionConfig, slot: Slot) -> tuple[str, RunConfig]:
    from evaluation.accuracy import run_config_of

    run_cfg = run_config_of(slot.performance)
    benchmark = get_benchmark(run_cfg.benchmark.name)
    scenario: Scenario = run_cfg.scenario.name
    entry = Entry(root, get_round(cfg.round), run_cfg.system.name, benchmark.name, scenario.value)
    _copy(("mlperf_log_summary.txt", "mlperf_log_detail.txt"), slot.performance, entry.performance)
    _copy(("accuracy.txt", "mlperf_log_summary.txt", "mlperf_log_detail.txt"), slot.accuracy, entry.accuracy)
    copy_truncated_log(slot.accuracy / "mlperf_log_accuracy.json", entry.accuracy / "mlperf_log_accuracy.json")
    if slot.test06 is not None:
        _copy((VERIFY_FILE,), slot.test06 / TEST06_DIR, entry.test06)
        _copy(("mlperf_log_accuracy.json",), slot.test06 / TEST06_DIR / "accuracy", entry.test06 / "accuracy")
    entry.measurements.mkdir(parents=True, exist_ok=True)
    (entry.measurements / entry.measurements_name()).write_text(json.dumps(measurements(run_cfg), indent=2) + "\n")
    shutil.copyfile(slot.performance / "user.conf", entry.measurements / "user.conf")
    (entry.measurements / "README.md").write_text(scenario_readme(slot, run_cfg))
    systems = root / "systems"
    systems.mkdir(parents=True, exist_ok=True)
    system_file = systems / f"{run_cfg.system.name}.json"
    if not system_file.exists():
        system_file.write_text(json.dumps(system_json(run_cfg.system, cfg), indent=2) + "\n")
    return f"{entry.benchmark}/{entry.scenario}", run_cfg


def _check_names(submission: SubmissionConfig) -> None:
    name = submission.submitter
    if not name.strip():
        raise UserError("submission.submitter is empty; pass submission.submitter=<your organization>")
    if not SINGLE_NAME.fullmatch(name) or ".." in name:
        raise UserError(f"submission.submitter '{name}' is not a single folder name; use letters, digits, '.', '_', "
                        "'+' or '-' (no spaces or slashes)")


def package(cfg: RunConfig) -> Path:
    submission = cfg.submission
    _check_names(submission)
    round_ = get_round(submission.round)
    slots = collect(submission)
    output = Path(submission.output_dir) if submission.output_dir else Path("submissions") / time.strftime("%Y%m%d-%H%M%S")
    report = report_path(output)
    if report.exists():
        raise UserError(f"{report} exists and is never overwritten; choose another submission.output_dir=")
    staged = StagedDir(output)
    try:
        root = staged.path / submission.division.value / submission.submitter
        written = [write_slot(root, submission, slot) for slot in slots.values()]
        code = code_dir(root, round_)
        benchmarks = sorted({run_cfg.benchmark.name for _, run_cfg in written})
        places = [code] if not round_.separate_compliance_tree else [code / b / IMPLEMENTATION for b in benchmarks]
        for place in places:
            place.mkdir(parents=True)
            (place / "README.md").write_text(code_readme())
        documentation = root / DOCUMENTATION_DIR
        documentation.mkdir()
        (documentation / CALIBRATION_DOC).write_text(calibration_md([run_cfg for _, run_cfg in written]))
    except BaseException:
        staged.discard()
        raise
    tree = staged.commit()
    findings = check_tree(tree, round_)
    check = {"submittable": not findings, "round": round_.name.value, "division": submission.division.value,
             "tree": str(tree), "packaged": [name for name, _ in written], "findings": findings_json(findings)}
    write_atomic(report, json.dumps(check, indent=2) + "\n")
    print_findings(findings, tree)
    log.info("submission tree: %s (%s round, %s); check report: %s", tree, round_.name.value,
             "submittable" if not findings else f"{len(findings)} finding(s), not submittable", report)
    return tree
