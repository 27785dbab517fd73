"""The sbatch script of a whole submission run (`llmkit slurm`): #SBATCH lines from the `slurm` config, then the
pipeline's steps (launch/pipeline_steps.py), each an `srun` step, with pyxis flags when `containers.image` is set.

The SUT steps get the job's ranks: one task on a one-node system (every instance in one process), and 1 + nodes
tasks (`--mpi=` slurm.mpi, one MPI world: loadgen on rank 0, one worker rank per node) on a multi-node system; the
other steps run as one task. A step that fails ends the job (`set -e`), and what the steps already wrote stays.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from launch.pipeline_steps import Step, pipeline_steps
from llmkit.config.cluster import pyxis_flags
from llmkit.config.schema import RunConfig

# The backends whose instances serve a TensorRT-LLM engine that `llmkit build` makes first.
ENGINE_BACKENDS = ("trtllm",)


def sut_tasks(cfg: RunConfig) -> int:
    """The ranks a SUT step runs with: 1 on one node, 1 + nodes across several (sut/placement.py)."""
    nodes = cfg.slurm.nodes or cfg.system.nodes
    return 1 if nodes == 1 else 1 + nodes


def sbatch_lines(cfg: RunConfig, script: Path) -> list[str]:
    slurm = cfg.slurm
    nodes = slurm.nodes or cfg.system.nodes
    gpus = slurm.gpus_per_node if slurm.gpus_per_node is not None else cfg.system.devices_per_node
    output = slurm.output or str(script.with_name(f"{script.stem}-%j.out"))
    options = [f"--job-name={slurm.job_name}", f"--nodes={nodes}", f"--ntasks={sut_tasks(cfg)}",
               f"--time={slurm.time}", f"--output={output}"]
    if nodes > 1:
        options.append(f"--ntasks-per-node={-(-sut_tasks(cfg) // nodes)}")
    if slurm.partition:
        options.append(f"--partition={slurm.partition}")
    if slurm.account:
        options.append(f"--account={slurm.account}")
    if gpus:
        options.append(f"--gpus-per-node={gpus}")
    if slurm.cpus_per_task:
        options.append(f"--cpus-per-task={slurm.cpus_per_task}")
    options += slurm.sbatch_args
    return [f"#SBATCH {option}" for option in options]


def srun_command(cfg: RunConfig, step: Step, python: str) -> str:
    nodes = cfg.slurm.nodes or cfg.system.nodes
    tasks = sut_tasks(cfg) if step.loadgen else 1
    flags = [f"--ntasks={tasks}", f"--nodes={nodes if tasks > 1 else 1}"]
    if tasks > 1:
        flags.append(f"--mpi={cfg.slurm.mpi}")
    flags += pyxis_flags(cfg.containers)
    return shlex.join(["srun", *flags, python, *step.argv])


def steps(cfg: RunConfig, root: Path, user: list[str], evaluation: list[str], submission: list[str]) -> list[Step]:
    build = [Step("engine build", ["-m", "build_engines", *user])] if cfg.backend.name in ENGINE_BACKENDS else []
    return build + pipeline_steps(root, user, evaluation, submission)


def render(cfg: RunConfig, script: Path, root: Path, user: list[str], evaluation: list[str],
           submission: list[str]) -> str:
    # In a container the image's interpreter runs the kit; on the host, this one (the kit's venv).
    python = "python" if cfg.containers.image else sys.executable
    lines = ["#!/bin/bash", f"# llmkit slurm: a whole submission run of {cfg.benchmark.name} on {cfg.system.name} "
             f"into {root}", *sbatch_lines(cfg, script), "set -euo pipefail",
             # Quiet PMIx's warnings with the PyPI Open MPI wheel (see README, Running on a cluster).
             "export PMIX_MCA_gds=${PMIX_MCA_gds:-hash} PMIX_MCA_psec=${PMIX_MCA_psec:-native}",
             *[f"export {shlex.quote(pair)}" for pair in cfg.slurm.env],
             f"cd {shlex.quote(str(Path.cwd()))}"]
    for step in steps(cfg, root, user, evaluation, submission):
        lines += [f"echo {shlex.quote(f'llmkit slurm step: {step.name}')}", srun_command(cfg, step, python)]
    lines.append(f"echo {shlex.quote(f'llmkit slurm: done; runs and the submission tree under {root}')}")
    return "\n".join(lines) + "\n"
