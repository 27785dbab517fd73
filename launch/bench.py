"""`llmkit bench NAME [options]`: run the benchmark script NAME (each prints its figures; `--help` says more)."""
from __future__ import annotations

import importlib
import sys

from llmkit.errors import did_you_mean

BENCHES = {
    "harness": ("bench.harness", "the SUT's own overhead with the replay engine: ceiling, published loads, soak"),
    "hf": ("bench.hf", "the hf backend's continuous batching against one request at a time"),
    "evaluation": ("bench.evaluation", "how fast a 15000-sample mixtral accuracy log is scored"),
    "planner": ("bench.planner", "the planner's predicted tokens/s per GPU against every published result"),
    "trtllm-adapter": ("bench.trtllm_adapter", "the trtllm poller's cost per streamed response at 1x and 10x load"),
}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name in ("", "-h", "--help"):
        lines = ["usage: llmkit bench NAME [options]   (llmkit bench NAME --help for its options)", "", "benchmarks:"]
        lines += [f"  {key.ljust(14)}  {summary}" for key, (_, summary) in BENCHES.items()]
        sys.stdout.write("\n".join(lines + ["", "example: llmkit bench harness --skip soak"]) + "\n")
        raise SystemExit(0 if name else 2)
    if name not in BENCHES:
        sys.stderr.write(f"llmkit: error: unknown benchmark '{name}'{did_you_mean(name, BENCHES)}; "
                         f"choose one of: {', '.join(BENCHES)}\n")
        raise SystemExit(2)
    sys.argv = [f"llmkit bench {name}", *sys.argv[2:]]
    importlib.import_module(BENCHES[name][0]).main()
