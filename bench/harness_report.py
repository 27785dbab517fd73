"""The harness benchmark's report: a table on the terminal, the figures as JSON, and a plot."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from llmkit.rundir import replace_whole, write_atomic

ASSUMED_NOTE = ("assumed: the engine reported no request perf metrics, so its p99 TTFT and TPOT are the case's "
                "requested delays, not measured")


def _added(result: dict, key: str) -> float | None:
    ours, engine = result.get(key), (result.get("engine") or {}).get(key)
    return None if ours is None or engine is None else round(ours - engine, 3)


def shaped_rows(shaped: list[dict]) -> list[dict]:
    rows = []
    for item in shaped:
        case, result = item["case"], item["result"]
        engine = result.get("engine") or {}
        # Offline: tokens over the whole run on both sides. Server: loadgen divides by the time until the
        # last-issued query was done, so the engine's rate is taken over the same window.
        produced_key = "tokens_per_second" if case["scenario"] == "offline" else "tokens_per_second_to_last_issued"
        # A backend that reports only its whole-run rate (trtllm) is compared with that.
        reported = result.get("tokens_per_second")
        produced = engine.get(produced_key) or engine.get("tokens_per_second")
        rows.append({
            "case": case["name"], "load": case["load"], "scenario": case["scenario"], "validity": result.get("validity"),
            "reported_tokens_per_s": reported, "engine_tokens_per_s": produced,
            "rate_ratio": reported / produced if reported and produced else None,
            "added_ttft_p99_ms": _added(result, "ttft_p99_ms"), "added_tpot_p99_ms": _added(result, "tpot_p99_ms"),
            "ttft_p99_ms": result.get("ttft_p99_ms"), "engine_ttft_p99_ms": engine.get("ttft_p99_ms"),
            "engine_latencies": engine.get("latencies"),
        })
    return rows


def _growth(samples: list) -> float:
    (t0, m0), (t1, m1) = samples[0], samples[-1]
    return round((m1 - m0) / max((t1 - t0) / 60, 1e-9), 2)


def soak_summary(soak: dict | None) -> dict | None:
    """Private memory (USS) over the run; the steady-state growth is taken over its second half, after the allocator
    has reached the run's high-water mark of queries in flight."""
    if not soak or not soak.get("memory_mib"):
        return None
    samples = [(t, m) for t, m in soak["memory_mib"] if t >= 5.0] or soak["memory_mib"]
    second_half = [(t, m) for t, m in samples if t >= samples[-1][0] / 2] or samples
    return {"seconds": round(samples[-1][0], 1), "uss_start_mib": round(samples[0][1], 1),
            "uss_end_mib": round(samples[-1][1], 1), "uss_max_mib": round(max(m for _, m in samples), 1),
            "growth_mib_per_minute": _growth(samples), "steady_growth_mib_per_minute": _growth(second_half),
            "validity": soak.get("validity"), "samples": soak.get("sample_count")}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, rate) = plt.subplots(1, 2, figsize=(11, 4.2))
    server = [r for r in rows if r["scenario"] == "server" and r["added_ttft_p99_ms"] is not None]
    labels = [r["case"] for r in server]
    positions = range(len(server))
    latency.bar([p - 0.2 for p in positions], [r["added_ttft_p99_ms"] for r in server], 0.4, label="p99 TTFT added")
    latency.bar([p + 0.2 for p in positions], [r["added_tpot_p99_ms"] or 0 for r in server], 0.4,
                label="p99 TPOT added")
    latency.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="1 ms target")
    latency.set_xticks(list(positions), labels, rotation=20, ha="right", fontsize=8)
    latency.set_ylabel("ms added by the SUT over the engine")
    latency.set_title("Latency the harness adds (Server)")
    latency.legend(fontsize=8)
    measured = [r for r in rows if r["rate_ratio"] is not None]
    rate.bar(range(len(measured)), [100 * r["rate_ratio"] for r in measured], color="tab:green")
    rate.axhline(99, color="grey", linestyle="--", linewidth=1, label="99% (target: within 1%)")
    rate.set_ylim(90, 101)
    rate.set_xticks(range(len(measured)), [r["case"] for r in measured], rotation=20, ha="right", fontsize=8)
    rate.set_ylabel("reported / produced tokens per second (%)")
    rate.set_title("Token rate loadgen sees vs the engine's")
    rate.legend(fontsize=8)
    figure.tight_layout()
    replace_whole(path, lambda temporary: figure.savefig(temporary, dpi=110))
    plt.close(figure)


def report(figures: dict, out: Path, plot_path: Path) -> None:
    rows = shaped_rows(figures["shaped"])
    summary = {"ceiling": figures["ceiling"], "shaped": rows, "soak": soak_summary(figures["soak"]),
               "soak_minimal": soak_summary(figures.get("soak_minimal"))}
    if summary["soak"] and summary["soak_minimal"]:
        summary["soak"]["sut_steady_growth_mib_per_minute"] = round(
            summary["soak"]["steady_growth_mib_per_minute"] - summary["soak_minimal"]["steady_growth_mib_per_minute"],
            2)
    write_atomic(out, json.dumps(summary, indent=2) + "\n")
    console = Console(width=max(120, Console().width))
    if figures["ceiling"]:
        table = Table(title="Ceiling: loadgen with an instant SUT vs our SUT + replay at zero delays (samples/s)")
        for column in ("scenario", "instant, standard API", "instant, fast API", "ours (fast API)", "ratio",
                       "ratio to fast"):
            table.add_column(column, justify="right")
        for item in figures["ceiling"]:
            table.add_row(item["scenario"], f"{item['instant']['samples_per_second']:,.0f}",
                          f"{item['instant_fast']['samples_per_second']:,.0f}",
                          f"{item['ours']['samples_per_second']:,.0f}", f"{item['ratio']:.3f}",
                          f"{item['ratio_fast']:.3f}")
        console.print(table)
    if rows:
        table = Table(title="Published loads through our SUT and the replay engine")
        for column in ("case", "loadgen", "reported tok/s", "engine tok/s", "ratio", "+p99 TTFT ms", "+p99 TPOT ms",
                       "engine p99s"):
            table.add_column(column, justify="right")
        for r in rows:
            table.add_row(r["case"], str(r["validity"]), f"{r['reported_tokens_per_s'] or 0:,.0f}",
                          f"{r['engine_tokens_per_s'] or 0:,.0f}",
                          "-" if r["rate_ratio"] is None else f"{r['rate_ratio']:.4f}",
                          str(r["added_ttft_p99_ms"]), str(r["added_tpot_p99_ms"]), r["engine_latencies"] or "-")
        console.print(table)
        if any(r["engine_latencies"] == "assumed" for r in rows):
            console.print(ASSUMED_NOTE)
        plot(rows, plot_path)
        console.print(f"plot: {plot_path}")
    for name in ("soak", "soak_minimal"):
        soak = summary[name]
        if soak:
            who = "our SUT" if name == "soak" else "a minimal SUT answering as late from one thread"
            console.print(f"soak ({who}): {soak['seconds']} s Server run, {soak['samples']} queries, private memory (USS) "
                          f"{soak['uss_start_mib']} -> {soak['uss_end_mib']} MiB (max {soak['uss_max_mib']}), growth "
                          f"{soak['growth_mib_per_minute']} MiB/min, {soak['steady_growth_mib_per_minute']} MiB/min "
                          "over the second half")
    if summary["soak"] and "sut_steady_growth_mib_per_minute" in summary["soak"]:
        console.print("soak: steady growth of our SUT beyond the minimal SUT's: "
                      f"{summary['soak']['sut_steady_growth_mib_per_minute']} MiB/min")
    console.print(f"figures: {out}")
