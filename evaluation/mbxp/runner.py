"""Run every MBXP answer against its tests in parallel sandboxes and score them as the reference does."""
from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from evaluation.mbxp.languages import LANGUAGES, build_program, extract_solution, missing_runtime, node_modules_dir
from evaluation.mbxp.sandbox import Limits, Sandbox, reaping_orphans, sandbox_unavailable
from evaluation.metrics import Prediction, Scores
from llmkit.config.schema import EvaluationConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProblemResult:
    key: str
    language: str
    passed: bool
    status: str  # passed | failed | timeout | compile_error | compile_timeout | not_evaluated | error
    detail: str = ""


def limits_of(config: EvaluationConfig) -> Limits:
    return Limits(config.timeout_s, config.compile_timeout_s, config.memory_mb, config.max_processes,
                  config.max_file_mb)


def staged_tsc(sandbox: Sandbox) -> tuple[str, ...] | None:
    """TypeScript from the staged packages, which the slot uids can read."""
    compiler = sandbox.node_modules / "typescript" / "bin" / "tsc" if sandbox.node_modules else None
    return ("node", str(compiler)) if compiler is not None and compiler.is_file() else None


def stage_node_modules(root: Path) -> Path | None:
    """A world-readable copy of the pinned TypeScript and lodash under the sandboxes' root, or None if absent."""
    source = node_modules_dir()
    if not source.is_dir():
        return None
    target = root / "node_modules"
    shutil.copytree(source, target, symlinks=True)
    for directory, _, files in os.walk(target):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | 0o444)
    return target


def run_problem(sandbox: Sandbox, language: str, entry_point: str, answer: str, test: str) -> ProblemResult:
    key = f"{language}_{entry_point}"
    program = build_program(language, extract_solution(answer, language), test, entry_point, staged_tsc(sandbox))
    workdir = sandbox.workdir()
    try:
        (workdir / program.source_name).write_text(program.source, encoding="utf-8")
        if program.compile is not None:
            built = sandbox.run(program.compile, workdir, sandbox.limits.compile_timeout_s)
            accepted = (0, 2) if language == "typescript" else (0,)
            if built.timed_out:
                return ProblemResult(key, language, False, "compile_timeout")
            if built.returncode not in accepted or not (workdir / (program.compiled_output or "")).exists():
                return ProblemResult(key, language, False, "compile_error", built.output[-500:])
        ran = sandbox.run(program.run, workdir, sandbox.limits.timeout_s)
        if ran.timed_out:
            return ProblemResult(key, language, False, "timeout")
        if ran.returncode == 0:
            return ProblemResult(key, language, True, "passed")
        return ProblemResult(key, language, False, "failed", ran.output[-500:])
    finally:
        sandbox.cleanup(workdir)


def run_problems(problems: list[tuple[str, str, str, str]], limits: Limits, workers: int,
                 progress: bool = True) -> list[ProblemResult]:
    """Run (language, entry_point, answer, test) problems on `workers` sandbox slots."""
    root = Path(tempfile.mkdtemp(prefix="llmkit-mbxp-"))
    os.chmod(root, 0o711)  # slot uids may traverse to their own work directories, not list them
    node_modules = stage_node_modules(root)
    slots: queue.Queue[Sandbox] = queue.Queue()
    for slot in range(workers):
        slots.put(Sandbox(slot, limits, root, node_modules))

    def one(problem: tuple[str, str, str, str]) -> ProblemResult:
        language, entry_point = problem[0], problem[1]
        sandbox = slots.get()
        try:
            return run_problem(sandbox, *problem)
        except Exception as error:  # an evaluator fault is one failed problem, never a hung evaluation
            log.warning("MBXP %s_%s could not be run: %s", language, entry_point, error)
            return ProblemResult(f"{language}_{entry_point}", language, False, "error", str(error))
        finally:
            slots.put(sandbox)

    try:
        with reaping_orphans(), ThreadPoolExecutor(max_workers=workers) as pool:
            return list(tqdm(pool.map(one, problems), total=len(problems), desc="MBXP programs", unit="program",
                             disable=not progress))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def evaluate_mbxp(predictions: list[Prediction], config: EvaluationConfig) -> Scores:
    problems, results = [], []
    blocked = sandbox_unavailable()
    unavailable = {lang: blocked or missing_runtime(lang) for lang in LANGUAGES}
    unavailable = {lang: why for lang, why in unavailable.items() if why}
    for prediction in predictions:
        language, entry_point = str(prediction.row["id"]).split("_", 1)
        if language not in LANGUAGES:
            continue  # the reference scores only these six languages
        if language in unavailable:
            results.append(ProblemResult(f"{language}_{entry_point}", language, False, "not_evaluated",
                                         unavailable[language]))
        else:
            problems.append((language, entry_point, prediction.text, str(prediction.row["gt_output"])))
    results.extend(run_problems(problems, limits_of(config), config.workers))
    if not results:
        return Scores({"mbxp": None}, incomplete={"mbxp": "no MBXP rows"})
    passed = sum(r.passed for r in results)
    by_language = {
        lang: {"problems": n, "passed": sum(r.passed for r in results if r.language == lang),
               "not_evaluated": sum(r.status == "not_evaluated" for r in results if r.language == lang)}
        for lang, n in sorted(Counter(r.language for r in results).items())
    }
    skipped = sorted({r.language for r in results if r.status == "not_evaluated"})
    incomplete = {"mbxp": "not evaluated: " + "; ".join(f"{lang} ({unavailable[lang]})" for lang in skipped)} \
        if skipped else {}
    return Scores({"mbxp": 100.0 * passed / len(results)},
                  details={"mbxp_by_language": by_language, "mbxp_results": [asdict(r) for r in results]},
                  incomplete=incomplete)
