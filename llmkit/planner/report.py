"""A plan for people: a rich table (memory, capacity, batch, predictions, recommendations) and a figure (throughput
and TPOT against batch; the memory of one GPU as a stacked bar)."""
from __future__ import annotations

from pathlib import Path

from rich.table import Table

from llmkit.planner.plan import Plan
from llmkit.planner.server import P99_TPOT_FACTOR

GIB = 2**30


def _gib(n: float) -> str:
    return f"{n / GIB:,.1f} GiB"


def table(plan: Plan) -> Table:
    r, m = plan.request, plan.memory
    title = (f"{r.model} {r.scenario} on {r.gpu.name}: {r.precision or r.compute} ({r.weight_bits:g} bits/weight), "
             f"tp {r.tp} x pp {r.pp} x {r.instances} instance(s)")
    out = Table(title=title, show_header=True, header_style="bold")
    out.add_column("")
    out.add_column("value", justify="right")
    out.add_column("note")

    def section(name: str) -> None:
        out.add_row(f"[bold]{name}[/bold]", "", "")

    section("memory per GPU (worst stage)")
    out.add_row("weights", _gib(m.weights), "its layers' linears, the embedding and/or lm_head slice")
    out.add_row("activations", _gib(m.activations), "engine buffers for max_num_tokens, logits for the batch")
    out.add_row("runtime", _gib(m.runtime), "CUDA context, NCCL, TensorRT-LLM buffers")
    out.add_row("KV cache", _gib(m.kv_cache), f"kv_fraction {r.kv_fraction:g} of what is free")
    out.add_row("unused", _gib(m.unused), "")
    out.add_row("capacity", _gib(m.capacity), r.gpu.name)
    section("KV capacity")
    out.add_row("KV bytes per token", f"{m.kv_bytes_per_token:,.0f}", f"{r.kv_bytes:g} byte(s) per element")
    out.add_row("KV tokens", f"{m.kv_tokens:,}", f"blocks of {r.tokens_per_block}")
    out.add_row("sequences per pass", f"{plan.kv_batch:,}", f"at {r.input_len:g} in + {r.output_len:g} out tokens")
    section("prediction")
    out.add_row("batch", f"{plan.batch:,}", f"bound by {plan.batch_limit}")
    out.add_row("max_num_tokens", f"{plan.max_num_tokens:,}", "")
    out.add_row("Offline tokens/s per GPU", f"{plan.offline.tokens_per_s_per_gpu:,.1f}", "saturated")
    if plan.server is not None:
        s = plan.server
        out.add_row(f"{r.scenario} tokens/s per GPU", f"{s.tokens_per_s_per_gpu:,.1f}",
                    f"{s.rate:.3g} queries/s per instance, prompt reader busy {s.utilization:.0%}")
        out.add_row("TPOT p99 (est.)", f"{P99_TPOT_FACTOR * s.tpot_ms:,.0f} ms", f"limit {r.tpot_limit_ms:g} ms")
        out.add_row("TTFT p99 (est.)", f"{s.ttft_p99_ms:,.0f} ms", f"limit {r.ttft_limit_ms:g} ms")
    elif r.tpot_limit_ms is not None or r.ttft_limit_ms is not None:
        out.add_row(f"{r.scenario} tokens/s per GPU", "0", "no load meets the latency limits")
    else:
        out.add_row("TPOT", f"{plan.offline.tpot_ms:,.0f} ms", "")
    out.add_row("system tokens/s", f"{plan.tokens_per_s:,.0f}", f"{r.gpus * r.instances} GPUs")
    section("recommended")
    out.add_row("max_batch_size", f"{plan.recommended_batch:,}", "")
    budget_note = ("the chunk budget the load was planned with (TTFT needs it)" if plan.server is not None else
                   "(1 + ISL/OSL) x batch, rounded up")
    out.add_row("max_num_tokens", f"{plan.recommended_max_num_tokens:,}", budget_note)
    return out


def plot(plan: Plan, path: str | Path) -> Path:
    """Write the figure (PNG or whatever the suffix names) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, m = plan.request, plan.memory
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    batches = [p.batch for p in plan.curve]
    left.plot(batches, [p.tokens_per_s_per_gpu for p in plan.curve], "o-", color="tab:blue")
    left.set_xscale("log")
    left.set_xlabel("batch (sequences per engine pass)")
    left.set_ylabel("output tokens/s per GPU", color="tab:blue")
    left.axvline(plan.batch, color="grey", linestyle=":", label=f"batch {plan.batch}")
    tpot = left.twinx()
    tpot.plot(batches, [P99_TPOT_FACTOR * p.tpot_ms for p in plan.curve], "s--", color="tab:red")
    tpot.set_ylabel("TPOT p99 estimate (ms)", color="tab:red")
    if r.tpot_limit_ms is not None:
        tpot.axhline(r.tpot_limit_ms, color="tab:red", linestyle="-", alpha=0.5,
                     label=f"TPOT limit {r.tpot_limit_ms:g} ms")
        tpot.legend(loc="upper center")
    left.legend(loc="upper left")
    left.set_title(f"{r.model} on {r.gpu.name}, tp {r.tp} x pp {r.pp}, {r.precision or r.compute}")

    parts = [("weights", m.weights), ("activations", m.activations), ("runtime", m.runtime),
             ("KV cache", m.kv_cache), ("unused", m.unused)]
    bottom = 0.0
    for name, value in parts:
        right.bar(["GPU"], [value / GIB], bottom=bottom, label=name)
        bottom += value / GIB
    right.axhline(m.capacity / GIB, color="black", linestyle="--", label="capacity")
    right.set_ylabel("GiB")
    right.set_title("memory per GPU")
    right.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
