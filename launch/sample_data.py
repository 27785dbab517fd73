"""`llmkit sample-data BENCHMARK OUT`: write the sample dataset in the official schema (.pkl, .parquet or .jsonl)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from llmkit.benchmarks import get_benchmark
from llmkit.config.schema import DatasetSplit
from llmkit.data.datasets import write_frame
from llmkit.data.sample import sample_frame
from llmkit.errors import UserError, exit_on_user_error
from llmkit.log import setup_logging

log = logging.getLogger(__name__)


@exit_on_user_error
def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(prog="llmkit sample-data", description=__doc__,
                                     epilog="example: llmkit sample-data mixtral-8x7b sample.pkl")
    parser.add_argument("benchmark", help="mixtral-8x7b or llama3.1-405b")
    parser.add_argument("out", type=Path, help="output file: .pkl (as the official files), .parquet or .jsonl")
    parser.add_argument("--split", choices=[s.value for s in DatasetSplit], default=DatasetSplit.validation.value)
    args = parser.parse_args()
    benchmark = get_benchmark(args.benchmark)
    if args.out.exists():
        raise UserError(f"{args.out} exists and is never overwritten; choose another output file")
    frame = sample_frame(benchmark, DatasetSplit(args.split))
    write_frame(frame, args.out)
    log.info("wrote %d %s %s rows to %s", len(frame), benchmark.name, args.split, args.out)
