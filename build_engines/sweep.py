"""One job of `llmkit build` (or `llmkit plan`), alone or in a `-m` sweep: in a sweep, a combination refused with a
one-sentence reason is recorded and reported at the end instead of stopping the others."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from llmkit.config.schema import RunConfig
from llmkit.config.sweeps import submitit_job
from llmkit.config.validate import require_valid
from llmkit.errors import UserError

log = logging.getLogger(__name__)

# (the job's overrides, why it was refused) for each refused job of this process's sweep.
REFUSED: list[tuple[str, str]] = []


def in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode is RunMode.MULTIRUN


def _job_overrides() -> str:
    from hydra.core.hydra_config import HydraConfig

    return " ".join(HydraConfig.get().overrides.task)


def sweepable(task: Callable[[RunConfig], object]) -> Callable[[RunConfig], object]:
    """The task after the config's checks (neither stage runs loadgen nor a backend: their checks do not apply);
    in a sweep, a refusal of either is recorded and the sweep goes on."""

    def checked(cfg: RunConfig) -> object:
        require_valid(cfg, serving=False)
        return task(cfg)

    def job(cfg: RunConfig) -> object:
        if not in_sweep() or submitit_job():
            return checked(cfg)  # a submitit job's refusal is reported by the launching process (llmkit.config.sweeps)
        try:
            return checked(cfg)
        except UserError as error:
            log.error("refused: %s", error)
            REFUSED.append((_job_overrides(), str(error)))
            return None

    return job


def _build(cfg: RunConfig) -> Path | None:
    from build_engines.stage import build

    return build(cfg)


build_job = sweepable(_build)


def report_refused() -> None:
    sys.stderr.write(f"llmkit: {len(REFUSED)} combination(s) of the sweep were refused:\n")
    for overrides, why in REFUSED:
        sys.stderr.write(f"  {overrides}: {why}\n")
