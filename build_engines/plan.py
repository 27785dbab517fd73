"""`llmkit plan <overrides>` (= `python -m build_engines plan`): before any GPU time, what fits on each GPU of the
system and how fast it should run, for the benchmark, precision and scenario.

Prints the planner's table (memory per GPU, KV capacity, batch, tokens/s, TTFT/TPOT, recommended settings), writes
its plot (tokens/s and TPOT against batch; the memory breakdown) and, with plan.json=PATH, its figures as JSON.
Existing files are never overwritten.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from rich.console import Console

from build_engines.sweep import sweepable
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError
from llmkit.planner.configured import request_for_run
from llmkit.planner.memory import check_fits
from llmkit.planner.plan import plan
from llmkit.planner.report import plot, table
from llmkit.rundir import write_atomic

log = logging.getLogger(__name__)


def _refuse_existing(path: Path, key: str) -> None:
    if path.exists():
        raise UserError(f"{key}={path} exists and is never overwritten; choose another path or remove it")
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"{key}={path} lies below {path.parent}, which is a file; choose another path")


def _plot_path(cfg: RunConfig, json_path: Path | None) -> Path:
    if cfg.plan.plot:
        return Path(cfg.plan.plot)
    if json_path is not None:
        return json_path.with_suffix(".png")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return (Path(cfg.runs_root) / "plans" /
            f"{cfg.benchmark.name}-{cfg.system.name}-{cfg.scenario.name.value.lower()}-{stamp}.png")


def _plan(cfg: RunConfig) -> dict:
    request, source = request_for_run(cfg, planning=True)
    json_path = Path(cfg.plan.json) if cfg.plan.json else None
    plot_path = _plot_path(cfg, json_path)
    for path, key in ((json_path, "plan.json"), (plot_path, "plan.plot")):
        if path is not None:
            _refuse_existing(path, key)
    check_fits(request, request.max_batch_size or 1, request.max_num_tokens, max_gpus=cfg.system.devices_per_node *
               cfg.system.nodes)
    result = plan(request)
    console = Console()
    console.print(f"[bold]{cfg.benchmark.name} {cfg.scenario.name.value} on {cfg.system.name}[/bold]: "
                  f"{request.instances} instance(s) of tp {request.tp} x pp {request.pp} {request.gpu.name}, "
                  f"precision {cfg.precision.name.value}; model shape from {source}")
    console.print(table(result))
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot(result, plot_path)
    figures = {"benchmark": cfg.benchmark.name, "system": cfg.system.name, "scenario": cfg.scenario.name.value,
               "precision": cfg.precision.name.value, "shape_from": source, "plot": str(plot_path),
               **result.to_json()}
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(json_path, json.dumps(figures, indent=2) + "\n")
    console.print(f"predicted {result.tokens_per_s:,.0f} output tokens/s for the system "
                  f"({result.tokens_per_s_per_gpu:,.1f} per GPU); plot: {plot_path}"
                  + (f"; figures: {json_path}" if json_path else ""))
    return figures


plan_command = sweepable(_plan)
