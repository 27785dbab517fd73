"""`-m` sweeps through a submitit launcher (`hydra/launcher=slurm` or `local`, conf/hydra/launcher/): every job of the
sweep is waited for, and the launching process reports where each one's run directory is, or why it failed with its
submitit logs (.out/.err); any failure ends the sweep with exit code 2.

Each job records its outcome in the sweep directory (`<sweep>/<job number>/outcome.json`), through the SweepReport
Hydra callback that conf/config.yaml installs: `on_job_start` and `on_job_end` run in the job's own process on the
cluster, `on_multirun_start` in the launching one. A job's failure is kept as an exception in its result (Hydra's
run_job), so submitit still delivers the results of every job, and the launching process reads the outcomes.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from omegaconf import DictConfig, OmegaConf

from llmkit.errors import UserError

log = logging.getLogger(__name__)

OUTCOME = "outcome.json"
# hydra/launcher options: Hydra's own in-process launcher, and the submitit ones under conf/hydra/launcher/.
BUILTIN_LAUNCHERS = ("basic",)
_state: dict[str, Path] = {}


@dataclass
class SlurmLauncherConf(SlurmQueueConf):
    """hydra-submitit-launcher 1.2.0's Slurm settings plus submitit's srun_args (the flags of the job's srun)."""

    srun_args: Optional[list[str]] = None


ConfigStore.instance().store(group="hydra/launcher", name="slurm_schema", node=SlurmLauncherConf, provider="llmkit")


def _srun_args(tasks_per_node: int, nodes: int) -> list[str]:
    """The default srun flags of a sweep job: one MPI world over its tasks when it has more than one. (Hydra resolves
    its own config before the run's, so containers.* cannot reach here: give pyxis flags in hydra.launcher.srun_args.)"""
    return ["--mpi=pmix"] if int(tasks_per_node) * int(nodes) > 1 else []


if not OmegaConf.has_resolver("llmkit_srun_args"):
    OmegaConf.register_new_resolver("llmkit_srun_args", _srun_args)


def submitit_job(config: DictConfig | None = None) -> bool:
    """True in a job of a sweep run by a submitit launcher (its own process, on the cluster or locally)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if config is None:
        if not HydraConfig.initialized():
            return False
        hydra = HydraConfig.get()
    else:
        hydra = config.hydra
    return hydra.mode is RunMode.MULTIRUN and "submitit" in str(hydra.launcher.get("_target_", ""))


def _job_dir(config: DictConfig) -> Path:
    return Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)


def _logs() -> list[str]:
    import submitit

    paths = submitit.JobEnvironment().paths
    return [str(paths.stdout), str(paths.stderr)]


def _write(config: DictConfig, outcome: dict) -> None:
    import submitit

    if submitit.JobEnvironment().global_rank != 0:
        return  # one record per job, by its first task
    directory = _job_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{OUTCOME}.tmp"
    temporary.write_text(json.dumps(outcome, indent=2) + "\n")
    os.replace(temporary, directory / OUTCOME)


class SweepReport(Callback):
    """Records each submitit job's outcome where the launching process reads it (see the module's docstring)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _state["sweep_dir"] = Path(str(config.hydra.sweep.dir)).absolute()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if submitit_job(config):
            _write(config, {"job": int(config.hydra.job.num), "overrides": list(config.hydra.overrides.task),
                            "status": "running", "logs": _logs()})

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not submitit_job(config):
            return
        outcome = {"job": int(config.hydra.job.num), "overrides": list(config.hydra.overrides.task), "logs": _logs()}
        if job_return.status is JobStatus.COMPLETED:
            value = job_return._return_value
            outcome.update(status="completed", result=str(value) if value is not None else None)
        else:
            error = job_return._return_value
            message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            outcome.update(status="failed", error=message)
            log.error("job %s failed: %s", config.hydra.job.num, message)
        _write(config, outcome)


def _sbatch_refusal(error: BaseException) -> str | None:
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("sbatch:")]
    return "; ".join(line.removeprefix("sbatch:").strip().removeprefix("error:").strip() for line in lines) or None


def _killed_reason(logs: list[str]) -> str:
    text = "".join(Path(p).read_text(errors="replace")[-4000:] for p in logs if Path(p).is_file())
    if "DUE TO TIME LIMIT" in text:
        return "Slurm killed it at its time limit; raise hydra.launcher.timeout_min (minutes)"
    if "CANCELLED" in text:
        return "it was cancelled (scancel or preemption); run the sweep again"
    if "oom-kill" in text.lower() or "Out Of Memory" in text:
        return "it ran out of memory; raise hydra.launcher.mem_gb"
    return "it ended without a result (killed, or its node failed); see its logs"


def report(sweep_dir: Path, out=sys.stdout) -> list[str]:
    """Write each job's run directory or failure; returns one line per failed job."""
    failures = []
    records = sorted((json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{OUTCOME}")), key=lambda r: r["job"])
    for record in records:
        overrides = " ".join(record["overrides"])
        logs = " ".join(record["logs"])
        if record["status"] == "completed":
            out.write(f"job {record['job']} ({overrides}): {record['result'] or 'done'}\n")
            continue
        why = record.get("error") or _killed_reason(record["logs"])
        failures.append(f"job {record['job']} ({overrides}) failed: {why} (logs: {logs})")
        out.write(failures[-1] + "\n")
    out.flush()
    return failures


def run_sweep(hydra_main: Callable[[], None]) -> None:
    """Run a sweep through a submitit launcher and report every job; raise a UserError naming the failures."""
    _state.clear()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # a failed job's error reaches us, not Hydra's traceback printer
    error: BaseException | None = None
    try:
        hydra_main()
    except Exception as raised:  # a job's own error (re-raised by Hydra's sweeper) or submitit's
        error = raised
    sweep_dir = _state.get("sweep_dir")
    if error is not None and (refusal := _sbatch_refusal(error)) is not None:
        raise UserError(f"sbatch refused the sweep's jobs ({refusal}); fix the hydra.launcher.* setting it names "
                        "(partition, account, time, gpus_per_node...) or conf/hydra/launcher/slurm.yaml") from None
    failures = report(sweep_dir) if sweep_dir is not None and sweep_dir.is_dir() else []
    if failures:
        raise UserError(f"{len(failures)} job(s) of the sweep failed (above, with their logs); fix them and run "
                        "those combinations again") from None
    if error is not None:
        if sweep_dir is None:
            raise error
        raise UserError(f"the sweep did not complete ({type(error).__name__}: {str(error).splitlines()[0]}); see the "
                        f"submitit logs under {sweep_dir / '.submitit'}") from None
