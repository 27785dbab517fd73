"""`python -m sut <overrides>` (also `mpirun -n N python -m sut ...`, and `-m` sweeps): one loadgen run per job."""
from __future__ import annotations

from functools import partial

from llmkit.children import run_child
from llmkit.config.app import hydra_app
from llmkit.config.schema import RunConfig
from llmkit.config.validate import require_valid
from llmkit.config.sweeps import submitit_job
from llmkit.errors import UserError
from sut.run import run_benchmark


def run_job(cfg: RunConfig):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra = HydraConfig.get()
    if hydra.mode is not RunMode.MULTIRUN or submitit_job():
        # A submitit job is a process of its own (and, with several tasks, one rank of the job's MPI world).
        return run_benchmark(cfg)
    # Hydra's basic launcher runs the jobs in one process, but loadgen applies mlperf.conf only to a process's first
    # run (see sut.run): each job runs as its own `python -m sut` with the job's overrides.
    code = run_child(["-m", "sut", *hydra.overrides.task], f"sweep job {hydra.job.num}")
    if code != 0:
        raise UserError(f"sweep job {hydra.job.num} ({' '.join(hydra.overrides.task)}) failed with exit {code}")
    return None


# Validation runs inside run_benchmark, once, on rank 0 (a sweep's combinations are all checked before the first).
main = hydra_app(run_job, validate=lambda cfg: None, sweep_validate=partial(require_valid, warn=False))

if __name__ == "__main__":
    main()
