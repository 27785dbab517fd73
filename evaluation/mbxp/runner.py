"""Run MBXP answers against their tests in parallel sandboxes: one ProblemResult per answer.

A leaf: it knows programs and sandboxes, not metrics. Scoring the results lives with the metrics
(evaluation/metrics.py)."""
from __future__ import annotations

import logging
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from evaluation.mbxp.languages import (
    LANGUAGES, Program, build_program, extract_solution, missing_runtime, node_modules_dir,
)
from evaluation.mbxp.pool import open_sandboxes
from evaluation.mbxp.sandbox import PACKAGES, Execution, Interrupted, Limits, Sandbox, sandbox_unavailable
from llmkit.config.schema import EvaluationConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProblemResult:
    key: str
    language: str
    passed: bool
    # passed | failed | timeout | compile_error | compile_timeout | not_evaluated | error | killed (twice by a
    # signal from outside the evaluation: not scored as a failure, the metric is incomplete)
    status: str
    detail: str = ""


def limits_of(config: EvaluationConfig) -> Limits:
    return Limits(config.timeout_s, config.compile_timeout_s, config.memory_mb, config.max_processes,
                  config.max_file_mb)


def staged_tsc(sandbox: Sandbox) -> tuple[str, ...] | None:
    """TypeScript from the staged packages, as the sandbox sees them."""
    compiler = Path("typescript") / "bin" / "tsc"
    if sandbox.packages is None or not (sandbox.packages / compiler).is_file():
        return None
    return ("node", str(PACKAGES / compiler))


class _KilledFromOutside(Exception):
    def __init__(self, execution: Execution):
        self.execution = execution


def _step(sandbox: Sandbox, argv: tuple[str, ...], workdir: Path, timeout: float) -> Execution:
    execution = sandbox.run(argv, workdir, timeout)
    if execution.outside_signal is not None:
        raise _KilledFromOutside(execution)
    return execution


def _attempt(sandbox: Sandbox, key: str, language: str, program: Program) -> ProblemResult:
    """Write, compile and run the program in a fresh work directory."""
    workdir = sandbox.workdir()
    try:
        (workdir / program.source_name).write_text(program.source, encoding="utf-8")
        if program.compile is not None:
            built = _step(sandbox, program.compile, workdir, sandbox.limits.compile_timeout_s)
            if built.timed_out:
                return ProblemResult(key, language, False, "compile_timeout")
            # QUIRK (mxeval): a TypeScript program counts as compiled only when tsc exits with 2 ("errors, output
            # generated"). The reference's environment has no @types/node, so every MBXP test's
            # `import * as assert from 'assert'` is a type error; a program that compiles cleanly (exit 0) fails.
            accepted = (2,) if language == "typescript" else (0,)
            if built.returncode not in accepted or not (workdir / (program.compiled_output or "")).exists():
                return ProblemResult(key, language, False, "compile_error", built.output[-500:])
        ran = _step(sandbox, program.run, workdir, sandbox.limits.timeout_s)
        if ran.timed_out:
            return ProblemResult(key, language, False, "timeout")
        if ran.returncode == 0:
            return ProblemResult(key, language, True, "passed")
        detail = ran.output[-500:] + ("\n(killed at the memory limit)" if ran.out_of_memory else "")
        return ProblemResult(key, language, False, "failed", detail)
    finally:
        sandbox.cleanup(workdir)


def run_problem(sandbox: Sandbox, language: str, entry_point: str, answer: str, test: str) -> ProblemResult:
    """One problem; a program killed by a signal from outside the evaluation is run once more from scratch (a
    fresh work directory, the source written and compiled again, so nothing it left behind counts)."""
    key = f"{language}_{entry_point}"
    program = build_program(language, extract_solution(answer, language), test, entry_point, staged_tsc(sandbox))
    try:
        return _attempt(sandbox, key, language, program)
    except _KilledFromOutside as first:
        log.warning("MBXP %s was killed by signal %d from outside the evaluation; running it again", key,
                    first.execution.outside_signal)
    try:
        return _attempt(sandbox, key, language, program)
    except _KilledFromOutside as second:
        signal_number = second.execution.outside_signal
        log.warning("MBXP %s was killed twice by signal %d from outside the evaluation; it is not scored", key,
                    signal_number)
        return ProblemResult(key, language, False, "killed",
                             f"killed twice by signal {signal_number} from outside the evaluation")


def run_problems(problems: list[tuple[str, str, str, str]], limits: Limits, workers: int,
                 progress: bool = True) -> list[ProblemResult]:
    """Run (language, entry_point, answer, test) problems on up to `workers` sandbox slots."""
    if not problems:
        return []
    with open_sandboxes(workers, limits, node_modules_dir()) as sandboxes:
        slots: queue.Queue[Sandbox] = queue.Queue()
        for sandbox in sandboxes:
            slots.put(sandbox)

        def one(problem: tuple[str, str, str, str]) -> ProblemResult:
            language, entry_point = problem[0], problem[1]
            sandbox = slots.get()
            try:
                return run_problem(sandbox, *problem)
            except Interrupted:  # the evaluation is being stopped; this result is never read
                return ProblemResult(f"{language}_{entry_point}", language, False, "not_evaluated", "interrupted")
            except Exception as error:  # an evaluator fault is one failed problem, never a hung evaluation
                log.warning("MBXP %s_%s could not be run: %s", language, entry_point, error)
                return ProblemResult(f"{language}_{entry_point}", language, False, "error", str(error))
            finally:
                slots.put(sandbox)

        with ThreadPoolExecutor(max_workers=len(sandboxes)) as pool:
            futures = [pool.submit(one, problem) for problem in problems]
            try:
                return [f.result() for f in tqdm(futures, desc="MBXP programs", unit="program", disable=not progress)]
            except BaseException:  # Ctrl-C: start nothing more, kill what runs, then release the slots
                for future in futures:
                    future.cancel()
                for sandbox in sandboxes:
                    sandbox.interrupt()
                raise


def run_answers(answers: list[tuple[str, str, str]], config: EvaluationConfig) -> tuple[list[ProblemResult],
                                                                                 dict[str, str]]:
    """Run (MBXP id, answer text, test code) answers: their results, and why each language that could not run did
    not (a missing runtime, or bubblewrap). Ids of other languages are skipped, as the reference skips them."""
    blocked = sandbox_unavailable()
    unavailable = {lang: blocked or missing_runtime(lang) for lang in LANGUAGES}
    unavailable = {lang: why for lang, why in unavailable.items() if why}
    problems, results = [], []
    for key, text, test in answers:
        language, entry_point = key.split("_", 1)
        if language not in LANGUAGES:
            continue  # the reference scores only these six languages
        if language in unavailable:
            results.append(ProblemResult(key, language, False, "not_evaluated", unavailable[language]))
        else:
            problems.append((language, entry_point, text, test))
    results.extend(run_problems(problems, limits_of(config), config.workers))
    return results, unavailable
