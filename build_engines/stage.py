"""`llmkit build` (= `python -m build_engines`): the TensorRT-LLM engine of this config's checkpoint for its system,
made by `trtllm-build` (TensorRT-LLM 1.2.1) under artifacts/engines/<key>/ with a manifest.

Order: the system's GPU and tuned entry -> the flags (user over entry over system over the benchmark-sized
defaults) -> the checkpoint (given, or the quantize artifact) -> the preflight (refusals, silent overrides said
aloud, limits, memory) -> the key -> a dry run prints the plan; a build runs trtllm-build into a staging directory
renamed into place when every rank file is there.

Under `mpirun -n K llmkit build` (or srun) every rank runs trtllm-build, which splits the engine ranks over the MPI
world itself (engine rank r on MPI rank r % K); the processes of this stage never initialise MPI (trtllm-build does),
so they meet in a staging directory named by the launch, and only rank 0 writes the manifest.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from build_engines import checkpoint as checkpoints
from build_engines import flags as build_flags
from build_engines import preflight, toolchain
from build_engines.engine import ARTIFACT_KIND, describe_engine
from build_engines.report import print_plan
from llmkit.artifacts import MANIFEST, artifact_path, build_or_reuse, content_key
from llmkit.benchmarks import get_benchmark
from llmkit.config.build import BuildFlags
from llmkit.config.schema import RunConfig
from llmkit.config.systems import build_flags as layered_flags
from llmkit.config.systems import tuned_entry
from llmkit.errors import UserError
from llmkit.log import launcher_rank
from llmkit.planner.configured import gpu_of, memory_preflight
from llmkit.rundir import write_atomic

log = logging.getLogger(__name__)

LAUNCH_ID_VARIABLES = (("PMIX_NAMESPACE",), ("SLURM_JOB_ID", "SLURM_STEP_ID"), ("OMPI_MCA_ess_base_jobid",))
RANK_MARKER = ".rank{rank}.done.json"
WAIT_LOG_S = 30.0


@dataclass(frozen=True)
class BuildPlan:
    system: str
    benchmark: str
    scenario: str
    precision: str
    checkpoint: checkpoints.Checkpoint
    toolchain: toolchain.Toolchain
    flags: BuildFlags
    warnings: tuple[str, ...]
    key_inputs: dict | None  # None until the checkpoint exists
    workers: int
    ranks: int
    memory: dict

    @property
    def key(self) -> str | None:
        return content_key(self.key_inputs) if self.key_inputs else None


def plan(cfg: RunConfig) -> BuildPlan:
    """Everything decided before any GPU time; raises the first refusal."""
    benchmark = get_benchmark(cfg.benchmark.name)
    gpu = gpu_of(cfg, "engines are built for one")
    entry = tuned_entry(cfg.system, benchmark.name, cfg.scenario.name)
    flags = build_flags.requested(benchmark, layered_flags(cfg))
    dry_run = cfg.build.dry_run
    if not cfg.build.checkpoint:  # what the recipe cannot build here is refused before it is quantized
        refused = preflight.refusals(build_flags.effective(flags), checkpoints.recipe_facts(cfg), gpu.sm)
        if refused:
            raise UserError(refused[0])
    memory = memory_preflight(cfg, files_optional=dry_run)
    chain = toolchain.expected(gpu, cfg.system.devices_per_node) if dry_run else toolchain.probe()
    if chain.sm != gpu.sm:
        raise UserError(f"system={cfg.system.name} is built for {gpu.name} (SM{gpu.sm}) but this node has "
                        f"{chain.gpu_name} (SM{chain.sm}); choose the system of this node's GPUs")
    rank, ranks = launcher_rank()
    checkpoint = checkpoints.resolve(cfg, dry_run, ranks)
    warnings = preflight.check(build_flags.effective(flags), checkpoint.facts, chain.sm, benchmark, entry,
                               cfg.system.name)
    key_inputs = None if checkpoint.key is None else {
        "checkpoint": checkpoint.key, "flags": build_flags.as_dict(flags), **chain.key()}
    per = cfg.system.tp * cfg.system.pp
    workers = 1 if ranks > 1 else (cfg.build.workers or max(1, min(per, chain.gpus)))
    return BuildPlan(cfg.system.name, benchmark.name, cfg.scenario.name.value, cfg.precision.name.value, checkpoint,
                     chain, flags, tuple(warnings), key_inputs, workers, ranks, memory)


def command(build_plan: BuildPlan, output: Path, rank: int) -> list[str]:
    return build_flags.command(build_plan.flags, build_plan.checkpoint.path or Path("<checkpoint>"), output,
                               build_plan.workers, output / ".timing" / f"rank{rank}.cache")


def _launch_id() -> str:
    for names in LAUNCH_ID_VARIABLES:
        if all(os.environ.get(n) for n in names):
            return ".".join(os.environ[n] for n in names).replace("/", "_")
    raise UserError("llmkit build runs under a launcher with several ranks but none of PMIX_NAMESPACE, "
                    "SLURM_JOB_ID/SLURM_STEP_ID names the launch; run it under mpirun or srun --mpi=pmix")


def _run_trtllm_build(argv: list[str], output: Path) -> None:
    (output / ".timing").mkdir(parents=True, exist_ok=True)
    log.info("running %s", build_flags.shown(argv))
    done = subprocess.run(argv)  # its own progress goes straight to the terminal
    if done.returncode != 0:
        raise UserError(f"trtllm-build failed (exit status {done.returncode}; its messages are above); fix what it "
                        "names, then run llmkit build again")


def _build_rank(argv: list[str], staging: Path, rank: int) -> None:
    """Rank `rank` > 0's share, then its marker for rank 0: written whole, and on any failure too, so rank 0 never
    reads half a marker nor waits out build.rank_timeout_s for a rank that is gone."""
    staging.mkdir(parents=True, exist_ok=True)
    marker = staging / RANK_MARKER.format(rank=rank)
    try:
        _run_trtllm_build(argv, staging)
    except BaseException as error:
        reason = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        write_atomic(marker, json.dumps({"ok": False, "error": reason}))
        raise
    write_atomic(marker, json.dumps({"ok": True}))


def _wait_for_ranks(staging: Path, ranks: int, timeout_s: float) -> None:
    started = last_log = time.monotonic()
    while True:
        markers = {r: staging / RANK_MARKER.format(rank=r) for r in range(1, ranks)}
        done = {r: json.loads(p.read_text()) for r, p in markers.items() if p.is_file()}
        failed = [r for r, marker in done.items() if not marker["ok"]]
        if failed:
            raise UserError(f"rank {failed[0]}'s trtllm-build failed ({done[failed[0]]['error']}); fix it and run "
                            "llmkit build again")
        if len(done) == ranks - 1:
            return
        now = time.monotonic()
        if now - started > timeout_s:
            missing = sorted(set(markers) - set(done))
            raise UserError(f"ranks {missing} did not finish their share of the build within build.rank_timeout_s="
                            f"{timeout_s:g}; check their logs, or raise the timeout")
        if now - last_log > WAIT_LOG_S:
            log.info("waiting for ranks %s to finish their engine ranks", sorted(set(markers) - set(done)))
            last_log = now
        time.sleep(0.2)


def build(cfg: RunConfig) -> Path | None:
    """The engine directory (rank 0), reused or built; None for a dry run and on the other ranks."""
    build_plan = plan(cfg)
    for warning in build_plan.warnings:
        log.warning("%s", warning)
    rank, ranks = launcher_rank()
    root = Path(cfg.artifacts_root)
    if cfg.build.dry_run:
        if rank == 0:
            print_plan(build_plan, command(build_plan, _output_for(root, build_plan), 0))
        return None
    final = artifact_path(root, ARTIFACT_KIND, build_plan.key_inputs)
    staging = root / ARTIFACT_KIND / f".{build_plan.key}.staging-{_launch_id()}" if ranks > 1 else None
    if rank != 0:
        if final.is_dir() and not cfg.build.force:
            return None
        _build_rank(command(build_plan, staging, rank), staging, rank)
        return None

    def make(directory: Path) -> dict:
        argv = command(build_plan, directory, 0)
        started = time.perf_counter()
        _run_trtllm_build(argv, directory)
        if ranks > 1:
            _wait_for_ranks(directory, ranks, cfg.build.rank_timeout_s)
        built_s = time.perf_counter() - started
        shutil.rmtree(directory / ".timing", ignore_errors=True)
        for marker in directory.glob(".rank*.done.json"):
            marker.unlink()
        facts = describe_engine(directory)
        return facts | {"toolchain": build_plan.toolchain.describe(), "command": build_flags.shown(argv),
                        "mpi_ranks": ranks, "checkpoint_path": str(build_plan.checkpoint.path),
                        "system": build_plan.system, "benchmark": build_plan.benchmark,
                        "scenario": build_plan.scenario,
                        "precision": build_plan.precision, "preflight_warnings": list(build_plan.warnings),
                        "memory_plan": build_plan.memory, "timings": {"trtllm_build_s": round(built_s, 3)}}

    path = build_or_reuse(root, ARTIFACT_KIND, build_plan.key_inputs, make, force=cfg.build.force, staging=staging)
    manifest = json.loads((path / MANIFEST).read_text())
    log.info("engine %s: %d rank files, %.1f MiB, built by %s", path, len(manifest["ranks"]),
             manifest["engine_bytes"] / 2**20, manifest["command"])
    return path


def _output_for(root: Path, build_plan: BuildPlan) -> Path:
    key = build_plan.key or "<key>"
    return root / ARTIFACT_KIND / key
