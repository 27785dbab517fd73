"""`llmkit bench planner`: the planner's predicted output tokens/s per GPU against the published result of every
system entry that states one (conf/system/*.yaml: the runs of shared/MLPERF.md section 6), with their ratio.

Each row plans the entry's own settings (precision, tp x pp, instances, runtime batch and max_num_tokens, KV
fraction) for the benchmark's real checkpoint. Target: every ratio within 0.8-1.25, from one physical model with a
few named efficiency constants (llmkit/planner/roofline.py), no per-row factor.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from llmkit.config.groups import group_options
from llmkit.config.load import load
from llmkit.errors import exit_on_user_error
from llmkit.log import setup_logging
from llmkit.planner.configured import request_for_run
from llmkit.planner.plan import plan
from llmkit.rundir import write_atomic

TARGET = (0.8, 1.25)
TINY = {"mixtral-8x7b": "tiny-mixtral", "llama3.1-405b": "tiny-llama3"}  # for composing; the plan uses the real shape


@dataclass(frozen=True)
class Row:
    system: str
    benchmark: str
    scenario: str
    setting: str
    gpus: int
    published_per_gpu: float
    predicted_per_gpu: float
    batch: int
    batch_limit: str
    source: str

    @property
    def ratio(self) -> float:
        return self.predicted_per_gpu / self.published_per_gpu


def published_rows() -> list[Row]:
    rows = []
    for system_name in group_options("system"):
        system = load([f"system={system_name}"], serving=False).system
        for entry in system.tuned:
            if entry.published_tokens_per_s is None:
                continue
            cfg = load([f"system={system_name}", f"benchmark={entry.benchmark}", f"model={TINY[entry.benchmark]}",
                        f"scenario={entry.scenario.value.lower()}"], serving=False)
            request, _ = request_for_run(cfg, planning=True)
            result = plan(request)
            gpus = request.gpus * request.instances
            # Offline: the batch and what bounds it; Server: the sequences decoding at the highest load within the
            # latency limits, and which limit binds.
            batch, bound = ((result.batch, result.batch_limit) if result.server is None else
                            (round(result.server.decode), result.server.limit))
            rows.append(Row(system_name, entry.benchmark, entry.scenario.value,
                            f"{entry.precision}, tp {entry.tp} x pp {entry.pp} x {entry.dp}, batch "
                            f"{entry.runtime_batch}, mnt {entry.runtime_tokens}",
                            gpus, entry.published_tokens_per_s / gpus, result.tokens_per_s_per_gpu, batch, bound,
                            entry.source))
    return rows


def plot(rows: list[Row], path: Path) -> None:
    """Left: predicted against published (log-log, the target band shaded); right: each row's ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (scatter, bars) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1, 1.3]})
    for row in rows:
        scatter.scatter(row.published_per_gpu, row.predicted_per_gpu, marker="o" if row.scenario == "Offline" else "s",
                        color="tab:blue" if row.benchmark == "llama3.1-405b" else "tab:orange")
    low = min(min(r.published_per_gpu, r.predicted_per_gpu) for r in rows) * 0.7
    high = max(max(r.published_per_gpu, r.predicted_per_gpu) for r in rows) * 1.4
    line = [low, high]
    scatter.plot(line, line, color="black", linewidth=0.8, label="predicted = published")
    scatter.fill_between(line, [v * TARGET[0] for v in line], [v * TARGET[1] for v in line], alpha=0.15,
                         label=f"target {TARGET[0]}-{TARGET[1]}")
    scatter.set(xscale="log", yscale="log", xlabel="published output tokens/s per GPU",
                ylabel="predicted output tokens/s per GPU",
                title="o Offline, s Server; blue llama3.1-405b, orange mixtral-8x7b")
    scatter.legend(loc="upper left", fontsize=8)
    labels = [f"{r.system} {r.benchmark} {r.scenario}" for r in rows]
    ratios = [r.ratio for r in rows]
    colours = ["tab:green" if TARGET[0] <= x <= TARGET[1] else "tab:red" for x in ratios]
    bars.barh(range(len(rows)), ratios, color=colours)
    bars.axvspan(*TARGET, alpha=0.12, color="tab:green")
    bars.axvline(1.0, color="black", linewidth=0.8)
    bars.set_yticks(range(len(rows)), labels, fontsize=8)
    bars.invert_yaxis()
    bars.set(xlabel="predicted / published", xlim=(0, max(1.5, max(ratios) * 1.1)), title="ratio per row")
    figure.suptitle("llmkit plan against MLPerf published results")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@exit_on_user_error
def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(prog="llmkit bench planner", description=__doc__,
                                     epilog="example: llmkit bench planner --json planner.json")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--plot", type=Path, help="the predicted-against-published plot (default: "
                                                  "runs/bench/planner-<time>.png)")
    args = parser.parse_args()
    rows = published_rows()
    table = Table(title="llmkit plan: predicted against published output tokens/s per GPU")
    for column in ("system", "benchmark", "scenario", "settings", "published", "predicted", "ratio",
                   "batch (what binds)"):
        table.add_column(column, justify="right" if column in ("published", "predicted", "ratio") else "left")
    for row in rows:
        ok = TARGET[0] <= row.ratio <= TARGET[1]
        table.add_row(row.system, row.benchmark, row.scenario, row.setting, f"{row.published_per_gpu:,.1f}",
                      f"{row.predicted_per_gpu:,.1f}", f"[{'green' if ok else 'red'}]{row.ratio:.2f}[/]",
                      f"{row.batch} ({row.batch_limit})")
    console = Console(width=max(Console().width, 160))
    console.print(table)
    within = sum(TARGET[0] <= r.ratio <= TARGET[1] for r in rows)
    console.print(f"{within} of {len(rows)} rows within {TARGET[0]}-{TARGET[1]}")
    path = args.plot or Path("runs") / "bench" / f"planner-{time.strftime('%Y%m%d-%H%M%S')}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, path)
    console.print(f"plot: {path}")
    if args.json:
        write_atomic(args.json, json.dumps([{**row.__dict__, "ratio": row.ratio} for row in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
