"""`llmkit evaluate` (= `python -m evaluation accuracy`): score a run's accuracy log and record the verdict."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from tqdm import tqdm

from evaluation.accuracy_log import read_accuracy_log
from evaluation.metrics import COUNTS_DUPLICATE_ENTRIES, Prediction, scorers_for
from evaluation.report import accuracy_txt, judge, print_report
from evaluation.text import decode, split_sentences
from llmkit.benchmarks import get_benchmark
from llmkit.config.load import saved_run_config
from llmkit.config.schema import RunConfig
from llmkit.data.datasets import load_dataset
from llmkit.errors import UserError, not_there
from llmkit.rundir import write_atomic
from llmkit.tokenizers import cleans_up_spaces

log = logging.getLogger(__name__)

ACCURACY_TXT = "accuracy.txt"
MBXP_RESULTS = "mbxp_results.json"


def run_config_of(run_dir: Path) -> RunConfig:
    """The configuration the run was made with (its config.yaml)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir} has no config.yaml, so it is not an llmkit run directory; pass evaluation.run_dir=")
    return saved_run_config(path)


def evaluated(run_dir: Path) -> bool:
    """Whether the run's verdict is in its result.json (the evaluation's last write)."""
    result = run_dir / "result.json"
    try:
        return (run_dir / ACCURACY_TXT).exists() and "accuracy" in json.loads(result.read_text())
    except (OSError, json.JSONDecodeError):
        return (run_dir / ACCURACY_TXT).exists()


def evaluate_run(cfg: RunConfig) -> dict:
    if not cfg.evaluation.run_dir:
        raise UserError("pass evaluation.run_dir=<a run directory made with mode=accuracy>")
    run_dir = Path(cfg.evaluation.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{not_there(run_dir, 'run directory', directory=True)}; pass evaluation.run_dir= of an accuracy run")
    if evaluated(run_dir):
        raise UserError(f"{run_dir / ACCURACY_TXT} exists and is never overwritten; this run is already evaluated")
    if (run_dir / ACCURACY_TXT).exists():  # the verdict (written last) is missing
        raise UserError(f"{run_dir / ACCURACY_TXT} exists but result.json has no verdict (an evaluation cut short?); "
                        "it is never overwritten: move it aside and evaluate again")
    run_cfg = run_config_of(run_dir)
    benchmark = get_benchmark(run_cfg.benchmark.name)
    dataset = load_dataset(run_cfg.dataset, benchmark)
    accuracy_log = read_accuracy_log(run_dir / "mlperf_log_accuracy.json", len(dataset), benchmark.vocab_size)
    clean_up = cleans_up_spaces(Path(run_cfg.model.path) if run_cfg.model.path else None,
                                benchmark.clean_up_tokenization_spaces)

    predictions = [
        Prediction(a.qsl_idx, a.ids, decode(a.ids, benchmark, clean_up), dataset.frame.iloc[a.qsl_idx])
        for a in tqdm(accuracy_log.answers, desc="decoding", unit="answer", disable=len(accuracy_log.answers) < 1000)
    ]
    values: dict[str, float | int | None] = {}
    samples: dict[str, int] = {}
    incomplete: dict[str, str] = {}
    details: dict = {}
    for scorer in scorers_for(benchmark.name):
        subset = [p for p in predictions if scorer.selects(p.row)]
        scores = scorer.compute(subset, cfg.evaluation)
        values.update(scores.values)
        samples.update({spec.name: len(subset) for spec in scorer.metrics})
        incomplete.update(scores.incomplete)
        details.update(scores.details)

    generated = sum(int(p.ids.size) for p in predictions)
    # QUIRK (mixtral reference): the answer count includes duplicate log entries, the token count does not.
    answers = accuracy_log.entries if benchmark.name in COUNTS_DUPLICATE_ENTRIES else len(predictions)
    gen_len = details.get("gen_len")
    if gen_len is None:
        gen_len = sum(len(split_sentences(p.text)) for p in predictions)
    values.update(gen_len=int(gen_len), gen_num=answers, gen_tok_len=generated,
                  tokens_per_sample=round(generated / answers, 1))
    samples["tokens_per_sample"] = len(predictions)
    verdict = judge(benchmark, values, samples, incomplete)

    write_atomic(run_dir / ACCURACY_TXT, accuracy_txt(values, accuracy_log.sha256))
    if "mbxp_results" in details:
        write_atomic(run_dir / MBXP_RESULTS, json.dumps(details["mbxp_results"], indent=1) + "\n")
    summary = {"values": values, "verdict": verdict.overall, "incomplete": incomplete,
               "log_sha256": accuracy_log.sha256, "table": verdict.as_dict()["metrics"]}
    if "mbxp_by_language" in details:
        summary["mbxp_by_language"] = details["mbxp_by_language"]
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    result["accuracy"] = summary
    write_atomic(result_path, json.dumps(result, indent=2) + "\n")
    print_report(benchmark, verdict, str(run_dir))
    log.info("wrote %s and the verdict into %s", run_dir / ACCURACY_TXT, result_path)
    return summary
