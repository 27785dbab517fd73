"""`llmkit bench hf`: the hf backend's Offline tokens/s against one-request-at-a-time generation.

The reference SUTs answer one query at a time with `model.generate`; the hf backend batches continuously. Both
decode the same prompts greedily with the same limits; the script checks they produce the same tokens and prints
the throughput of each and their ratio (target >= 3x on the tiny model).
"""
from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from llmkit.benchmarks import BENCHMARKS
from llmkit.config.backends import HFBackendConfig
from llmkit.config.schema import DatasetConfig, SystemConfig, TinyArchitecture
from llmkit.data.sample import sample_frame
from llmkit.errors import UserError, exit_on_user_error
from llmkit.log import setup_logging
from llmkit.models.tiny import ensure_tiny_checkpoint
from llmkit.rundir import write_atomic
from sut.backends.base import BackendSpec, GenerationRequest, RequestBatch
from sut.backends.hf import HFBackend, load_model

log = logging.getLogger(__name__)

TINY = {"mixtral-8x7b": TinyArchitecture.mixtral, "llama3.1-405b": TinyArchitecture.llama3}


def sequential(checkpoint: str, requests: list[GenerationRequest]) -> tuple[float, dict[int, list[int]]]:
    import torch
    from tqdm import tqdm

    model = load_model(checkpoint, "float32", "cpu")
    outputs, start = {}, time.perf_counter()
    for request in tqdm(requests, desc="one at a time", unit="request"):
        ids = torch.tensor(request.prompt[None].astype("int64"))
        out = model.generate(ids, max_new_tokens=request.max_new_tokens, min_new_tokens=request.min_new_tokens,
                             do_sample=False, eos_token_id=list(request.eos_ids), pad_token_id=0)
        outputs[request.request_id] = out[0, request.prompt.size:].tolist()
    return time.perf_counter() - start, outputs


def batched(checkpoint: str, requests: list[GenerationRequest], batch_size: int,
            benchmark: str) -> tuple[float, dict[int, list[int]]]:
    """The elapsed seconds and every answer; SystemExit(1) when the backend reports an error."""
    spec = BackendSpec(HFBackendConfig(max_batch_size=batch_size), SystemConfig(name="cpu"), benchmark,
                       DatasetConfig(name="sample"), checkpoint)
    backend, outputs, done, errors = HFBackend(spec), {}, threading.Event(), []

    def on_final(tokens) -> None:
        outputs.update((request_id, ids.tolist()) for request_id, ids in tokens.pairs())
        if len(outputs) == len(requests):
            done.set()

    def on_error(_, message: str) -> None:
        errors.append(message)
        done.set()

    backend.start(lambda events: None, on_final, on_error)
    start = time.perf_counter()
    first = requests[0]
    backend.submit(RequestBatch.of([r.prompt for r in requests], first.max_new_tokens, first.min_new_tokens,
                                   first.eos_ids))
    done.wait()
    elapsed = time.perf_counter() - start
    backend.stop()
    if errors:
        log.error("the hf backend failed (%s), so there is no throughput to report; fix what it names and run "
                  "llmkit bench hf again", errors[0])
        raise SystemExit(1)
    return elapsed, outputs


@exit_on_user_error
def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(prog="llmkit bench hf", description=__doc__,
                                     epilog="example: llmkit bench hf")
    parser.add_argument("--benchmark", choices=list(BENCHMARKS), default="mixtral-8x7b")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    for flag in ("samples", "max_new_tokens", "batch_size"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} {getattr(args, flag)} leaves nothing to generate; pass a "
                            "number of 1 or more")

    benchmark = BENCHMARKS[args.benchmark]
    architecture = TINY[benchmark.name]
    checkpoint = str(ensure_tiny_checkpoint(architecture, args.artifacts / "models" / f"tiny-{architecture.value}"))
    prompts = list(sample_frame(benchmark)["tok_input"])
    requests = [
        GenerationRequest(i, np.asarray(prompts[i % len(prompts)], dtype=np.int32), args.max_new_tokens,
                          benchmark.min_new_tokens, benchmark.eos_ids)
        for i in range(args.samples)
    ]
    seq_s, seq_out = sequential(checkpoint, requests)
    cb_s, cb_out = batched(checkpoint, requests, args.batch_size, benchmark.name)
    tokens = sum(len(v) for v in cb_out.values())
    figures = {
        "benchmark": benchmark.name, "model": f"tiny-{architecture.value}", "samples": args.samples,
        "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "output_tokens": tokens,
        "sequential_tokens_per_s": sum(len(v) for v in seq_out.values()) / seq_s,
        "hf_backend_tokens_per_s": tokens / cb_s,
        "identical_outputs": seq_out == cb_out,
    }
    figures["ratio"] = figures["hf_backend_tokens_per_s"] / figures["sequential_tokens_per_s"]
    table = Table(title=f"hf backend Offline throughput, {figures['model']}, {args.samples} samples x "
                        f"{args.max_new_tokens} new tokens (CPU)")
    for column in ("generation", "seconds", "tokens/s"):
        table.add_column(column)
    table.add_row("one request at a time (reference SUT)", f"{seq_s:.2f}", f"{figures['sequential_tokens_per_s']:.1f}")
    table.add_row(f"hf backend, continuous batching ({args.batch_size})", f"{cb_s:.2f}",
                  f"{figures['hf_backend_tokens_per_s']:.1f}")
    console = Console()
    console.print(table)
    console.print(f"ratio: {figures['ratio']:.2f}x (target >= 3x); identical greedy outputs: {figures['identical_outputs']}")
    if args.json:
        write_atomic(args.json, json.dumps(figures, indent=2) + "\n")
    if not figures["identical_outputs"]:
        differing = sum(seq_out.get(r) != cb_out.get(r) for r in seq_out.keys() | cb_out.keys())
        log.error("the hf backend's greedy outputs differ from one-at-a-time generation for %d of %d requests, so "
                  "its batching changes the answers; fix the backend before trusting its throughput",
                  differing, args.samples)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
