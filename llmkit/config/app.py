"""Turn a function of RunConfig into a Hydra app: single runs, `-m` sweeps, one-line errors with exit code 2."""
from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial

import hydra
from omegaconf import DictConfig

from llmkit.config.load import CONF_DIR, check_overrides, check_sweep, launcher_options, to_run_config
from llmkit.config.schema import RunConfig
from llmkit.config.sweeps import run_sweep, submitit_job
from llmkit.config.validate import require_valid
from llmkit.errors import UserError, exit_on_user_error
from llmkit.interrupts import one_line_on_interrupt
from llmkit.log import setup_logging

HYDRA_FLAGS_WITH_VALUE = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                          "--experimental-rerun", "--info", "-i", "--package", "-p", "--cfg", "-c"}


def _overrides(argv: list[str]) -> list[str]:
    overrides, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in HYDRA_FLAGS_WITH_VALUE
        else:
            overrides.append(arg)
    return overrides


def submitit_sweep(argv: list[str], overrides: list[str]) -> bool:
    """A `-m` sweep whose launcher is a submitit one (conf/hydra/launcher/)."""
    multirun = any(a in ("-m", "--multirun") for a in argv)
    return multirun and any(o.split("=", 1)[0].lstrip("+~") == "hydra/launcher" and
                            o.split("=", 1)[1] in launcher_options() for o in overrides)


def task_overrides(excluding: set[str]) -> list[str]:
    """The current Hydra job's own overrides, less those whose key is in `excluding` (a step sets them itself)."""
    from hydra.core.hydra_config import HydraConfig

    return [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].lstrip("+~") not in excluding]


def refuse_ignored(command: str, applies: tuple[str, ...], why: str) -> None:
    """Refuse the job's overrides that `command` would ignore: only keys under `applies` have an effect."""
    for override in task_overrides(set()):
        key = override.split("=", 1)[0].lstrip("+~")
        if not key.startswith("hydra") and not any(key == a or key.startswith(f"{a}.") for a in applies):
            raise UserError(f"'{override}' has no effect on llmkit {command}, which {why}; drop it (only "
                            f"{', '.join(applies)} settings apply)")


def hydra_app(task: Callable[[RunConfig], object], *, validate: Callable[[RunConfig], object] = require_valid,
              only: tuple[str, tuple[str, ...], str] | None = None,
              sweep_validate: Callable[[RunConfig], object] | None = None):
    """Return a `main()` that composes conf/, validates the RunConfig and calls `task` once per job. `only` is
    (command, the config keys that have an effect on it, why the others do not): any other override is refused."""

    def checked_task(cfg: DictConfig) -> object:
        if only is not None:
            refuse_ignored(*only)
        run_config = to_run_config(cfg)
        if only is not None and validate is require_valid:
            require_valid(run_config, warn=False)  # it generates nothing: warnings about generation are noise
        else:
            validate(run_config)
        return task(run_config)

    def job(cfg: DictConfig) -> object:
        setup_logging()
        if submitit_job():
            return checked_task(cfg)  # Hydra keeps the error in the job's result; the launching process reports it
        return exit_on_user_error(checked_task)(cfg)

    hydra_main = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)(job)

    @exit_on_user_error
    def main() -> None:
        name = sys.argv[0] if sys.argv and sys.argv[0].startswith("llmkit") else \
            f"python -m {task.__module__.split('.')[0]}"
        one_line_on_interrupt(name, run_main)

    def run_main() -> None:
        setup_logging()
        overrides = _overrides(sys.argv[1:])
        check_overrides(overrides)
        if any(a in ("-m", "--multirun") for a in sys.argv[1:]):
            check_sweep(overrides, sweep_validate or (partial(require_valid, warn=False) if validate is require_valid
                                                      else validate))
        if submitit_sweep(sys.argv[1:], overrides):
            run_sweep(hydra_main)
        else:
            hydra_main()

    return main
