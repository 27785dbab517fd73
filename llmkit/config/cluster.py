"""Cluster settings: the Slurm job of a whole submission run (`llmkit slurm`) and the container its steps run in
(pyxis/enroot flags on each `srun`). Neither changes a run's results; both default to nothing set."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class SlurmConfig:
    """The #SBATCH lines of the script `llmkit slurm` writes, and where it goes."""

    partition: Optional[str] = None
    account: Optional[str] = None
    # None: system.nodes and system.devices_per_node.
    nodes: Optional[int] = None
    gpus_per_node: Optional[int] = None
    cpus_per_task: Optional[int] = None
    # The job's time limit, in sbatch's format (minutes, HH:MM:SS, D-HH:MM:SS).
    time: str = "04:00:00"
    job_name: str = "llmkit"
    # The job's log; None: beside the script, <script name>-%j.out.
    output: Optional[str] = None
    # The srun MPI plugin of the SUT steps (pmix gives one MPI world with Open MPI 5; see README).
    mpi: str = "pmix"
    # More #SBATCH options, each as sbatch takes it ("--qos=high", "--exclusive").
    sbatch_args: list[str] = field(default_factory=list)
    # NAME=VALUE pairs exported before the steps, e.g. MPI4PY_LIBMPI=/usr/lib/x86_64-linux-gnu/libmpi.so.40: the MPI
    # library must speak the PMIx of the cluster's Slurm (see README, Running on a cluster).
    env: list[str] = field(default_factory=list)
    # Where the script is written; None: beside runs_root, llmkit-<benchmark>-<system>-<time>.sbatch. An existing file
    # is never overwritten.
    script: Optional[str] = None
    # Submit the script with sbatch once it is written.
    submit: bool = False


@dataclass
class ContainersConfig:
    """The container image each srun step runs in through pyxis (`--container-image`); None runs on the host."""

    image: Optional[str] = None
    # host:container[:ro] mounts (the data, the models, the runs root).
    mounts: list[str] = field(default_factory=list)
    # The directory the steps start in inside the container; None: the image's.
    workdir: Optional[str] = None


def pyxis_flags(containers: ContainersConfig) -> list[str]:
    """The srun flags that run a step in `containers.image` (none without an image)."""
    if not containers.image:
        return []
    flags = [f"--container-image={containers.image}"]
    if containers.mounts:
        flags.append(f"--container-mounts={','.join(containers.mounts)}")
    if containers.workdir:
        flags.append(f"--container-workdir={containers.workdir}")
    return flags
