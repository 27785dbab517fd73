"""What `llmkit build build.dry_run=true` prints: the plan of a build, decided without a GPU."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from build_engines.flags import shown

if TYPE_CHECKING:
    from build_engines.stage import BuildPlan


def _gib(n: float) -> str:
    return f"{n / 2**30:,.2f} GiB"


def print_plan(plan: BuildPlan, argv: list[str]) -> None:
    chain, checkpoint, facts = plan.toolchain, plan.checkpoint, plan.checkpoint.facts
    table = Table(title=f"llmkit build plan (dry run): {plan.benchmark} {plan.scenario} on {plan.system}",
                  show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("toolchain", f"TensorRT-LLM {chain.trtllm_version}, TensorRT {chain.tensorrt_version}, CUDA "
                               f"{chain.cuda_version} on {chain.gpu_name} (SM{chain.sm})"
                               + (" — the pinned release, not probed" if chain.expected else ""))
    table.add_row("checkpoint", f"{checkpoint.made_by}; {facts.architecture}, quant_algo {facts.quant_algo}, KV "
                                f"{facts.kv_cache_quant_algo}, tp {facts.tp} x pp {facts.pp}")
    table.add_row("preflight", "passes" + (f" with {len(plan.warnings)} warning(s):" if plan.warnings else ""))
    for warning in plan.warnings:
        table.add_row("", f"[yellow]{warning}[/yellow]")
    table.add_row("key", plan.key or "decided by the checkpoint's key, once llmkit quantize has made it")
    runs = f"each of the {plan.ranks} MPI ranks runs" if plan.ranks > 1 else "runs"
    table.add_row("command", f"{runs}: {shown(argv)}")
    sizes = checkpoint.rank_bytes
    if sizes:
        table.add_row("expected size", f"{len(sizes)} rank files of about {', '.join(_gib(b) for b in sizes)} (the "
                                       "checkpoint's shards; an engine is of the same order)")
    else:
        weights = plan.memory.get("weight_bytes_per_gpu")
        table.add_row("expected size", f"{facts.tp * facts.pp} rank files of about {_gib(weights)} each (the "
                                       "planner's weights per GPU)" if weights else "unknown")
    memory = plan.memory
    if memory:
        table.add_row("memory per GPU", memory.get("summary", ""))
    Console().print(table)
