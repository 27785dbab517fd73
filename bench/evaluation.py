"""`llmkit bench evaluation`: how fast a full mixtral-8x7b accuracy log is scored.

Builds a synthetic 15000-sample log in the official proportions (5000 OpenOrca, GSM8K and MBXP rows) whose answers
are about as long as the reference's (~145 tokens), then times each stage: reading and decoding the log, ROUGE,
GSM8K, and MBXP programs in the sandbox (a subset; programs/s and the projected time for all 5000 are printed).
Target: ROUGE + GSM8K under 60 s on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from evaluation.accuracy_log import read_accuracy_log
from evaluation.mbxp.runner import limits_of, run_problems
from evaluation.metrics import Prediction, mixtral_gsm8k, mixtral_rouge
from evaluation.text import decode
from llmkit.benchmarks import MIXTRAL_8X7B
from llmkit.config.schema import EvaluationConfig
from llmkit.data import sample_content as content
from llmkit.errors import exit_on_user_error
from llmkit.log import setup_logging
from llmkit.rundir import write_atomic
from llmkit.tokenizers import bundled_tokenizer_file, load_tokenizer

ROWS_PER_DATASET = 5000


def synthetic(seed: int, words_per_answer: int) -> tuple[pd.DataFrame, list[list[int]]]:
    """A dataset frame and one answer per row, deterministic for `seed`."""
    rng = random.Random(seed)
    tokenizer = load_tokenizer(bundled_tokenizer_file(MIXTRAL_8X7B.tokenizer))
    vocabulary = " ".join(r.reference for r in content.ORCA).split() + " ".join(r.reasoning for r in content.GSM8K).split()
    rows, answers = [], []
    for i in range(ROWS_PER_DATASET):
        reference = " ".join(rng.choices(vocabulary, k=words_per_answer)) + "."
        prediction = " ".join(rng.choices(vocabulary, k=words_per_answer)) + "."
        rows.append({"dataset": "OpenOrca", "id": f"orca.{i}", "gt_output": reference})
        answers.append(tokenizer.encode(prediction) + [MIXTRAL_8X7B.eos_id])
    for i in range(ROWS_PER_DATASET):
        record = content.GSM8K[i % len(content.GSM8K)]
        filler = " ".join(rng.choices(vocabulary, k=words_per_answer - 10))
        rows.append({"dataset": "GSM8K", "id": f"gsm8k.{i}", "gt_output": record.answer.replace(",", "")})
        answers.append(tokenizer.encode(f" {filler} {record.reasoning}") + [MIXTRAL_8X7B.eos_id])
    for i in range(ROWS_PER_DATASET):
        record = content.MBXP[i % len(content.MBXP)]
        rows.append({"dataset": "MBXP", "id": f"{record.language}_{record.entry_point}", "gt_output": record.test})
        answers.append(tokenizer.encode(record.solution + "\n```\n"))
    return pd.DataFrame(rows), answers


def write_log(path: Path, answers: list[list[int]]) -> None:
    entries = [{"seq_id": i, "qsl_idx": i, "data": np.asarray(ids, dtype=np.int32).tobytes().hex().upper(),
                "token_count": len(ids)} for i, ids in enumerate(answers)]
    path.write_text(json.dumps(entries))


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


@exit_on_user_error
def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(prog="llmkit bench evaluation", description=__doc__,
                                     epilog="example: llmkit bench evaluation")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--words-per-answer", type=int, default=110, help="about 145 tokens")
    parser.add_argument("--mbxp-programs", type=int, default=120, help="MBXP programs actually run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    config = EvaluationConfig(workers=args.workers)

    frame, answers = synthetic(0, args.words_per_answer)
    with tempfile.TemporaryDirectory() as directory:
        log_path = Path(directory) / "mlperf_log_accuracy.json"
        write_log(log_path, answers)
        log, read_s = timed(read_accuracy_log, log_path, len(frame), MIXTRAL_8X7B.vocab_size)
    start = time.perf_counter()
    predictions = [Prediction(a.qsl_idx, a.ids, decode(a.ids, MIXTRAL_8X7B, MIXTRAL_8X7B.clean_up_tokenization_spaces), frame.iloc[a.qsl_idx])
                   for a in log.answers]
    decode_s = time.perf_counter() - start
    by_dataset = {name: [p for p in predictions if p.row["dataset"] == name] for name in ("OpenOrca", "GSM8K", "MBXP")}
    rouge, rouge_s = timed(mixtral_rouge, by_dataset["OpenOrca"], config)
    gsm8k, gsm8k_s = timed(mixtral_gsm8k, by_dataset["GSM8K"], config)
    subset = by_dataset["MBXP"][: args.mbxp_programs]
    problems = [(p.row["id"].split("_", 1)[0], p.row["id"].split("_", 1)[1], p.text, p.row["gt_output"])
                for p in subset]
    results, mbxp_s = timed(run_problems, problems, limits_of(config), args.workers)

    tokens = sum(len(a) for a in answers) / len(answers)
    figures = {
        "samples": len(frame), "tokens_per_sample": round(tokens, 1), "workers": args.workers,
        "read_log_s": read_s, "decode_s": decode_s, "rouge_s": rouge_s, "gsm8k_s": gsm8k_s,
        "rouge_plus_gsm8k_s": rouge_s + gsm8k_s, "mbxp_programs": len(problems),
        "mbxp_passed": sum(r.passed for r in results), "mbxp_programs_per_s": len(problems) / mbxp_s,
        "mbxp_projected_5000_s": ROWS_PER_DATASET * mbxp_s / max(1, len(problems)),
        "rouge1": rouge.values["rouge1"], "gsm8k": gsm8k.values["gsm8k"],
    }
    table = Table(title=f"mixtral-8x7b accuracy evaluation, synthetic log of {len(frame)} samples "
                        f"(~{figures['tokens_per_sample']:.0f} tokens each), {args.workers} workers")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_row("read + validate the log", f"{read_s:.2f}")
    table.add_row("decode 15000 answers", f"{decode_s:.2f}")
    table.add_row("ROUGE (5000 OpenOrca rows)", f"{rouge_s:.2f}")
    table.add_row("GSM8K (5000 rows)", f"{gsm8k_s:.2f}")
    table.add_row(f"MBXP, {len(problems)} programs in the sandbox", f"{mbxp_s:.2f}")
    console = Console()
    console.print(table)
    console.print(f"ROUGE + GSM8K: {figures['rouge_plus_gsm8k_s']:.1f} s (target < 60 s); MBXP: "
                  f"{figures['mbxp_programs_per_s']:.1f} programs/s, ~{figures['mbxp_projected_5000_s']:.0f} s "
                  f"projected for all 5000 ({figures['mbxp_passed']}/{len(problems)} passed)")
    if args.json:
        write_atomic(args.json, json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
