"""Logging for every stage: one format, the MPI rank in each line when there is more than one process."""
from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def launcher_rank() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (mpirun, srun), without initializing MPI."""
    for rank_var, size_var in (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMIX_RANK", "PMIX_SIZE"),
                               ("PMI_RANK", "PMI_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if rank_var in os.environ and size_var in os.environ:
            return int(os.environ[rank_var]), int(os.environ[size_var])
    return 0, 1


def log_critical_now(logger: logging.Logger, message: str) -> None:
    """Log `message` and flush every handler and stderr: the process is about to end without unwinding."""
    logger.critical(message)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()


def setup_logging(level: int = logging.INFO) -> None:
    rank, size = launcher_rank()
    fmt = FORMAT if size == 1 else f"%(asctime)s [rank {rank}] %(levelname)-7s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "filelock", "httpx", "torch.distributed", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
