"""The metric registry: each scorer declares its benchmark, the rows it scores and the metrics it produces.

Definitions follow the MLCommons reference evaluate-accuracy.py scripts, quirks included (each marked QUIRK), so
that our numbers equal theirs on the same log. Targets are not here: they come from llmkit.benchmarks.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from llmkit.config.schema import EvaluationConfig


@dataclass(frozen=True)
class Prediction:
    qsl_idx: int
    ids: np.ndarray
    text: str  # decoded, special tokens skipped
    row: pd.Series  # the dataset row


@dataclass(frozen=True)
class MetricSpec:
    name: str
    subset: str
    aggregation: str


@dataclass
class Scores:
    values: dict[str, float | None]
    details: dict = field(default_factory=dict)
    # Why a metric could not be fully evaluated (missing runtime, no rows), by metric name.
    incomplete: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scorer:
    benchmark: str
    column: str
    values: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    compute: Callable[[list[Prediction], EvaluationConfig], Scores]

    def selects(self, row: pd.Series) -> bool:
        return row.get(self.column) in self.values


SCORERS: list[Scorer] = []


def register(benchmark: str, *, column: str, values: tuple[str, ...], metrics: tuple[MetricSpec, ...]):
    def decorate(compute):
        SCORERS.append(Scorer(benchmark, column, values, metrics, compute))
        return compute

    return decorate


def scorers_for(benchmark: str) -> list[Scorer]:
    return [s for s in SCORERS if s.benchmark == benchmark]


# ---- ROUGE -----------------------------------------------------------------------------------------------------

ROUGE_CHUNK = 250


def _rouge_chunk(args: tuple[list[str], list[str], tuple[str, ...]]) -> list[dict[str, float]]:
    from rouge_score import rouge_scorer

    preds, refs, types = args
    scorer = rouge_scorer.RougeScorer(list(types), use_stemmer=True)
    return [{t: s.fmeasure for t, s in scorer.score(ref, pred).items()} for pred, ref in zip(preds, refs)]


def rouge_fmeasures(preds: list[str], refs: list[str], types: tuple[str, ...], workers: int) -> dict[str, list[float]]:
    """Per-sample ROUGE F-measures (rouge_score with stemming, target first as `evaluate` calls it)."""
    from tqdm import tqdm

    # Chunks small enough that the progress bar moves (a 15000-sample log takes minutes), large enough to amortize.
    chunk = max(1, min(-(-len(preds) // max(1, workers * 4)), ROUGE_CHUNK))
    jobs = [(preds[i:i + chunk], refs[i:i + chunk], types) for i in range(0, len(preds), chunk)]
    progress = tqdm(total=len(preds), desc="ROUGE", unit="sample", mininterval=1.0, disable=len(preds) < ROUGE_CHUNK)
    parts = []
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            for part in pool.map(_rouge_chunk, jobs):
                parts.append(part)
                progress.update(len(part))
    else:
        for job in jobs:
            parts.append(_rouge_chunk(job))
            progress.update(len(parts[-1]))
    progress.close()
    rows = [r for part in parts for r in part]
    return {t: [r[t] for r in rows] for t in types}


MIXTRAL_ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@register("mixtral-8x7b", column="dataset", values=("OpenOrca",), metrics=tuple(
    MetricSpec(t, "OpenOrca rows", "mean of per-sample F-measure x 100, rounded to 4 places") for t in MIXTRAL_ROUGE
))
def mixtral_rouge(predictions: list[Prediction], config: EvaluationConfig) -> Scores:
    from evaluation.text import split_sentences

    if not predictions:
        return Scores({t: None for t in MIXTRAL_ROUGE}, incomplete={t: "no OpenOrca rows" for t in MIXTRAL_ROUGE})
    preds = [split_sentences(p.text) for p in predictions]
    refs = [split_sentences(str(p.row["gt_output"])) for p in predictions]
    scores = rouge_fmeasures(preds, refs, MIXTRAL_ROUGE, config.workers)
    values = {t: float(round(np.mean(v) * 100, 4)) for t, v in scores.items()}
    # gen_len: total characters of the sentence-split OpenOrca predictions, as the reference reports it.
    return Scores(values, details={"gen_len": int(sum(len(p) for p in preds))})


# ---- GSM8K -----------------------------------------------------------------------------------------------------

NUMBER = re.compile(r"-?[\d,]*\.?\d+", re.MULTILINE | re.DOTALL | re.IGNORECASE)


def find_number(text: str, delimiter: str = "The answer is") -> str:
    """The first number after the last "The answer is", else the last number in the text, else ''."""
    if delimiter in text:
        numbers = NUMBER.findall(text.split(delimiter)[-1])
        if numbers:
            return numbers[0]
    numbers = NUMBER.findall(text)
    return numbers[-1] if numbers else ""


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def gsm8k_correct(output: str, answer: str) -> bool:
    # The answer is cut at the next few-shot question, then commas are dropped ("5,600" -> "5600").
    predicted = _as_float(find_number(output.split("\nQ:")[0]).replace(",", ""))
    return predicted is not None and predicted == _as_float(str(answer))


@register("mixtral-8x7b", column="dataset", values=("GSM8K",), metrics=(
    MetricSpec("gsm8k", "GSM8K rows", "100 x correct / rows"),
))
def mixtral_gsm8k(predictions: list[Prediction], config: EvaluationConfig) -> Scores:
    if not predictions:
        return Scores({"gsm8k": None}, incomplete={"gsm8k": "no GSM8K rows"})
    correct = sum(gsm8k_correct(p.text, p.row["gt_output"]) for p in predictions)
    return Scores({"gsm8k": 100.0 * correct / len(predictions)}, details={"gsm8k_correct": int(correct)})


# ---- MBXP ------------------------------------------------------------------------------------------------------

@register("mixtral-8x7b", column="dataset", values=("MBXP",), metrics=(
    MetricSpec("mbxp", "MBXP rows in cpp, python, php, javascript, ruby, typescript",
               "100 x programs passing their tests / problems (sandboxed, 20 s each)"),
))
def mixtral_mbxp(predictions: list[Prediction], config: EvaluationConfig) -> Scores:
    from evaluation.mbxp.runner import run_answers

    results, unavailable = run_answers(
        [(str(p.row["id"]), p.text, str(p.row["gt_output"])) for p in predictions], config)
    if not results:
        return Scores({"mbxp": None}, incomplete={"mbxp": "no MBXP rows"})
    by_language: dict[str, dict[str, int]] = {}
    for r in results:
        counts = by_language.setdefault(r.language, {"problems": 0, "passed": 0, "not_evaluated": 0, "killed": 0})
        counts["problems"] += 1
        counts["passed"] += r.passed
        counts["not_evaluated"] += r.status == "not_evaluated"
        counts["killed"] += r.status == "killed"
    by_language = dict(sorted(by_language.items()))
    skipped = sorted({r.language for r in results if r.status == "not_evaluated"})
    reasons = ["not evaluated: " + "; ".join(f"{lang} ({unavailable[lang]})" for lang in skipped)] if skipped else []
    for status, why in (("killed", "killed twice by a signal from outside the evaluation"),
                        ("error", "not run: the evaluator failed (see the log)")):
        keys = [r.key for r in results if r.status == status]
        if keys:
            reasons.append(f"{len(keys)} program(s) {why} ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}); "
                           "evaluate again")
    return Scores({"mbxp": 100.0 * sum(r.passed for r in results) / len(results)},
                  details={"mbxp_by_language": by_language, "mbxp_results": [asdict(r) for r in results]},
                  incomplete={"mbxp": "; ".join(reasons)} if reasons else {})


# ---- llama3.1-405b ---------------------------------------------------------------------------------------------

UUID = re.compile(r"[\w]{8}-[\w]{4}-[\w]{4}-[\w]{4}-[\w]{12}")


def niah_em(label: str, pred: str) -> float:
    label_uuids, pred_uuids = UUID.findall(label), UUID.findall(pred)
    if not pred_uuids:
        return 0.0
    # QUIRK (reference, after RULER): each label uuid is iterated character by character, so a predicted uuid
    # scores the fraction of the label's characters it contains; pairs are zipped in order.
    score = sum(
        sum(1.0 if char.lower() in found.lower() else 0.0 for char in expected) / len(expected)
        for found, expected in zip(pred_uuids, label_uuids)
    ) / len(pred_uuids) * 100
    return round(score, 2)


def qa_em(label: str, pred: str) -> float:
    answer = pred
    if "Answer: " in pred:
        answer = pred[pred.rfind("Answer: ") + len("Answer: "):]
    # QUIRK (reference): first a plain substring test against the whole label, '|' separators included.
    if answer in label:
        return 100.0
    normalized = re.sub(r"\s+", "", answer).lower()
    return 100.0 if any(re.sub(r"\s+", "", alt).lower() in normalized for alt in label.split("|")) else 0.0


@register("llama3.1-405b", column="metric", values=("rouge",), metrics=(
    MetricSpec("rougeL", "rows with metric == rouge", "mean of per-sample rougeL F-measure x 100"),
))
def llama_rouge(predictions: list[Prediction], config: EvaluationConfig) -> Scores:
    from evaluation.text import split_sentences

    if not predictions:
        return Scores({"rougeL": None}, incomplete={"rougeL": "no rouge rows"})
    preds = [split_sentences(p.text) for p in predictions]
    refs = [split_sentences(str(p.row["gt_output"])) for p in predictions]
    scores = rouge_fmeasures(preds, refs, ("rougeL",), config.workers)["rougeL"]
    return Scores({"rougeL": float(np.mean([100 * s for s in scores]))})


@register("llama3.1-405b", column="metric", values=("niah_em", "qa_em"), metrics=(
    MetricSpec("exact_match", "rows with metric niah_em or qa_em", "mean of per-sample exact match (0-100)"),
))
def llama_exact_match(predictions: list[Prediction], config: EvaluationConfig) -> Scores:
    from evaluation.text import split_sentences

    if not predictions:
        return Scores({"exact_match": None}, incomplete={"exact_match": "no niah_em or qa_em rows"})
    scores = []
    for p in predictions:
        # QUIRK (reference): exact match also runs on the sentence-split (newline-joined) texts.
        label, pred = split_sentences(str(p.row["gt_output"])), split_sentences(p.text)
        scores.append(niah_em(label, pred) if p.row["metric"] == "niah_em" else qa_em(label, pred))
    return Scores({"exact_match": float(np.mean(scores))})


# QUIRK (mixtral reference): tokens_per_sample divides by every log entry, duplicates included.
COUNTS_DUPLICATE_ENTRIES = frozenset({"mixtral-8x7b"})
