"""The prose files of a submission tree: each scenario's README.md, the code folder's README.md, and
documentation/calibration.md (the closed division must say how the model was calibrated and quantized)."""
from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Protocol

from llmkit.benchmarks import get_benchmark
from llmkit.config.schema import PrecisionName, RunConfig


class Runs(Protocol):
    performance: Path | None
    accuracy: Path | None
    test06: Path | None


def scenario_readme(slot: Runs, run_cfg: RunConfig) -> str:
    scenario = run_cfg.scenario.name.value.lower()
    base = f"benchmark={run_cfg.benchmark.name} model={run_cfg.model.name} scenario={scenario} " \
           f"system={run_cfg.system.name} backend={run_cfg.backend.name} loadgen={run_cfg.loadgen.name}"
    test06 = f"llmkit test06 {base}\n" if slot.test06 is not None else ""
    runs = ", ".join(str(p) for p in (slot.performance, slot.accuracy, slot.test06) if p is not None)
    return (f"# {run_cfg.benchmark.name} {run_cfg.scenario.name.value} with llmkit\n\n"
            "Reproduce with the llmkit kit (see its README):\n\n```sh\n"
            f"llmkit run {base} mode=performance\n"
            f"llmkit run {base} mode=accuracy output_dir=ACCURACY_RUN && llmkit evaluate ACCURACY_RUN\n"
            f"{test06}```\n\nRuns packaged: {runs}.\n")


def code_readme() -> str:
    return (f"# llmkit {metadata.version('llmkit')}\n\nThe harness, SUT, evaluation and packaging that produced these "
            "results: the llmkit kit at this version (its repository holds the source, pinned dependencies and the "
            "commands in each result's README.md).\n")


def served_dtype(run_cfg: RunConfig) -> str:
    """The data type the weights were served in, as the backend says."""
    return run_cfg.backend.weights_dtype(run_cfg.precision)


def _calibration_section(run_cfg: RunConfig) -> str:
    benchmark = get_benchmark(run_cfg.benchmark.name)
    weights = f"{run_cfg.model.name} (random weights made by llmkit)" if run_cfg.model.tiny is not None else \
        (run_cfg.model.path or benchmark.checkpoint)
    precision = run_cfg.precision.name
    lines = [f"## {benchmark.name}", "", f"- Starting weights: {weights}.",
             f"- Served by the `{run_cfg.backend.name}` backend in {served_dtype(run_cfg)}."]
    if precision is PrecisionName.bf16:
        lines.append("- No post-training quantization: the weights are used as released, so no calibration data "
                     "was used.")
    else:
        lines += [f"- Post-training quantization with nvidia-modelopt, recipe `{precision.value}` (KV cache: "
                  f"{run_cfg.precision.kv_cache.value}), made by `llmkit quantize precision={precision.value}`.",
                  f"- Calibration data: the benchmark's official calibration set `{benchmark.calibration.filename}` "
                  f"({benchmark.calibration.rows} rows), never the validation set, tokenized by the model's "
                  "tokenizer (`llmkit calibrate`)."]
    return "\n".join(lines) + "\n"


def calibration_md(run_cfgs: list[RunConfig]) -> str:
    seen: dict[str, str] = {}
    for run_cfg in run_cfgs:
        seen.setdefault(run_cfg.benchmark.name, _calibration_section(run_cfg))
    return "# Calibration and quantization\n\n" + "\n".join(seen[name] for name in sorted(seen))
