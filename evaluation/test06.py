"""Compliance TEST06 for LLMs: check a run's sampled answers, and run the test end to end.

Checks on every entry of mlperf_log_accuracy.json:
1. EOS: no answer ends with two or more EOS tokens. The benchmark's real end ids are used (the official script
   compares against 2 and takes -e as a string, so it never checks a Llama 3 answer);
2. first token (skipped in Offline): `token_data` is a prefix of `data`;
3. sample length: the number of int32 ids in `data` equals `token_count`.
The verdict is written as TEST06/verify_accuracy.txt with the official lines, beside a copy of the log in
TEST06/accuracy/.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.accuracy_log import int32_payload, log_entries
from llmkit.benchmarks import Benchmark, Scenario, get_benchmark
from llmkit.children import run_child
from llmkit.compliance import ComplianceTest
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError
from llmkit.rundir import StagedDir

log = logging.getLogger(__name__)

TEST06_DIR = "TEST06"
VERIFY_FILE = "verify_accuracy.txt"


@dataclass(frozen=True)
class Test06Result:
    first_token: bool | None  # None: skipped (Offline)
    eos: bool
    length: bool
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.eos and self.length and self.first_token is not False

    def verify_text(self) -> str:
        first = "Skipped" if self.first_token is None else str(self.first_token)
        verdict = "TEST06 verification complete" if self.passed else "TEST06 verification failed"
        return (f"First token check pass: {first}\nEOS check pass: {self.eos}\n"
                f"Sample length check pass: {self.length}\n{verdict}\n")


def verify_entries(entries: list[dict], eos_ids: frozenset[int], streaming: bool) -> Test06Result:
    problems: list[str] = []
    eos_ok = first_ok = length_ok = True
    for number, entry in enumerate(entries):
        data = int32_payload(entry.get("data"), f"entry {number} 'data'")
        key = f"entry {number} (qsl_idx {entry.get('qsl_idx')})"
        if data.size >= 2 and int(data[-1]) in eos_ids and int(data[-2]) in eos_ids:
            eos_ok = False
            problems.append(f"{key} ends with more than one EOS")
        if "token_count" not in entry:
            length_ok = False
            problems.append(f"{key} has no token_count")
        elif data.size != entry["token_count"]:
            length_ok = False
            problems.append(f"{key} reports {entry['token_count']} tokens but holds {data.size} int32 ids")
        if streaming:
            if "token_data" not in entry:
                first_ok = False
                problems.append(f"{key} has no token_data (first tokens were not reported)")
                continue
            first = int32_payload(entry["token_data"], f"entry {number} 'token_data'")
            if first.size > data.size or not np.array_equal(data[: first.size], first):
                first_ok = False
                problems.append(f"{key}: the first tokens are not a prefix of the answer")
    return Test06Result(first_ok if streaming else None, eos_ok, length_ok, tuple(problems))


def verify_log(log_path: Path, benchmark: Benchmark, scenario: Scenario, output_dir: Path) -> Test06Result:
    """Verify `log_path` and write `output_dir`/verify_accuracy.txt and `output_dir`/accuracy/<the log>, staged
    beside it and renamed into place whole."""
    entries = log_entries(log_path, "run the TEST06 run first (llmkit test06 ...)",
                          "TEST06 needs the log of a run with its audit.config")
    if (output_dir / VERIFY_FILE).exists():
        raise UserError(f"{output_dir / VERIFY_FILE} exists and is never overwritten; verify into another directory "
                        "with evaluation.test06_dir=DIR")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        raise UserError(f"{output_dir} is not empty; verify into a directory that does not exist yet with "
                        "evaluation.test06_dir=DIR")
    result = verify_entries(entries, frozenset(benchmark.eos_ids), scenario.streams_first_token)
    staged = StagedDir(output_dir)
    try:
        (staged.path / "accuracy").mkdir()
        shutil.copyfile(log_path, staged.path / "accuracy" / "mlperf_log_accuracy.json")
        (staged.path / VERIFY_FILE).write_text(result.verify_text())
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    for problem in result.problems[:20]:
        log.error("TEST06: %s", problem)
    log.info("TEST06 %s: %s", "passed" if result.passed else "FAILED", output_dir / VERIFY_FILE)
    return result


def _run_config(run_dir: Path) -> RunConfig:
    from evaluation.accuracy import run_config_of

    return run_config_of(run_dir)


def verify_run(run_dir: Path, output_dir: Path | None = None) -> Test06Result:
    """Verify a TEST06 run directory into its TEST06/ folder (or `output_dir`)."""
    cfg = _run_config(run_dir)
    if cfg.loadgen.compliance_test is not ComplianceTest.TEST06:
        raise UserError(f"{run_dir} is not a TEST06 run (it was made without TEST06's audit.config); verify the run "
                        "llmkit test06 made, or make one with llmkit test06")
    return verify_log(run_dir / "mlperf_log_accuracy.json", get_benchmark(cfg.benchmark.name), cfg.scenario.name,
                      output_dir or run_dir / TEST06_DIR)


def run_test06(cfg: RunConfig) -> Path:
    """`llmkit test06 <overrides>`: a performance run with TEST06's audit.config, then its verification."""
    from llmkit.config.app import task_overrides
    from llmkit.rundir import default_run_dir

    run_dir = Path(cfg.output_dir) if cfg.output_dir else default_run_dir(
        cfg.runs_root, cfg.benchmark.name, cfg.system.name, cfg.scenario.name.value, "test06")
    user = task_overrides({"mode", "loadgen.compliance_test", "output_dir"})
    code = run_child(["-m", "sut", *user, "mode=performance", "loadgen.compliance_test=TEST06",
                      f"output_dir={run_dir}"], "the TEST06 run")
    if code != 0:
        raise UserError(f"the TEST06 run failed (exit {code}); see above")
    if not verify_run(run_dir).passed:
        raise SystemExit(1)
    return run_dir


def check_verify_config(cfg: RunConfig) -> None:
    """What verifying a log needs of the config: a known benchmark that has the scenario."""
    get_benchmark(cfg.benchmark.name).check_scenario(cfg.scenario.name)


def verify_command(cfg: RunConfig) -> Test06Result:
    """`llmkit test06 verify PATH`: PATH is a run directory, or a log (then benchmark= and scenario= say whose)."""
    if not cfg.evaluation.run_dir:
        raise UserError("pass the run directory or mlperf_log_accuracy.json to verify: llmkit test06 verify PATH")
    path = Path(cfg.evaluation.run_dir)
    output_dir = Path(cfg.evaluation.test06_dir) if cfg.evaluation.test06_dir else None
    if path.is_dir():
        result = verify_run(path, output_dir)
    else:
        benchmark = get_benchmark(cfg.benchmark.name)
        benchmark.check_scenario(cfg.scenario.name)
        result = verify_log(path, benchmark, cfg.scenario.name, output_dir or path.parent / TEST06_DIR)
    if not result.passed:
        raise SystemExit(1)
    return result
