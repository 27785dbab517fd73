"""`llmkit doctor [overrides]`: check this machine for the chosen config, one row per check (launch/doctor_checks.py):
its status (ok, warn, FAIL, skipped), what was found and the fix.

Exit status: 0 when the config can run here (warnings allowed), 1 when a check FAILs, 2 for bad input. Each check
logs a line as it starts and ends (the MPI, NCCL and sandbox ones take seconds); the table goes to stdout.
"""
from __future__ import annotations

import logging
import sys
import time

from rich.console import Console
from rich.table import Table

from launch.doctor_checks import CHECKS, Check, Status, Target, problem_and_fix
from llmkit.config.app import hydra_app
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError, exit_on_user_error

log = logging.getLogger(__name__)

STYLE = {Status.ok: "green", Status.warn: "yellow", Status.fail: "bold red", Status.skipped: "dim"}


def _launcher(cfg: RunConfig) -> tuple[str, str | None]:
    """The hydra/launcher choice and the Slurm partition it names (or the config's slurm.partition)."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    choice = str(hydra.runtime.choices.get("hydra/launcher") or "basic")
    partition = hydra.launcher.get("partition") or cfg.slurm.partition
    return choice, str(partition) if partition else None


def run_checks(target: Target) -> list[Check]:
    results = []
    for name, check in CHECKS:
        log.info("checking %s", name)
        started = time.perf_counter()
        try:
            result = check(target)
        except UserError as error:
            result = Check(name, Status.fail, *problem_and_fix(str(error)))
        except Exception as error:  # a probe that broke is reported, and the other checks still run
            log.exception("the %s check raised", name)
            result = Check(name, Status.fail, f"the check itself failed: {type(error).__name__}: {error}",
                           "report it with the traceback logged above")
        log.info("%s: %s (%.1f s)", name, result.status.value, time.perf_counter() - started)
        results.append(result)
    return results


def table(cfg: RunConfig, launcher: str, results: list[Check]) -> Table:
    title = (f"llmkit doctor: {cfg.benchmark.name} on system={cfg.system.name}, backend={cfg.backend.name}, "
             f"mode={cfg.mode.value}, hydra/launcher={launcher}")
    rows = Table(title=title)
    rows.add_column("check", style="bold", no_wrap=True)
    rows.add_column("status", no_wrap=True)
    rows.add_column("found", overflow="fold")
    rows.add_column("fix", overflow="fold")
    for result in results:
        style = STYLE[result.status]
        rows.add_row(result.name, f"[{style}]{result.status.value}[/{style}]", result.found, result.fix)
    return rows


def doctor(cfg: RunConfig) -> None:
    launcher, partition = _launcher(cfg)
    results = run_checks(Target(cfg, launcher, partition))
    Console().print(table(cfg, launcher, results))
    failed = [r.name for r in results if r.status is Status.fail]
    if failed:
        log.error("this config cannot run here: %s failed (see the fix column)", ", ".join(failed))
        raise SystemExit(1)
    warned = [r.name for r in results if r.status is Status.warn]
    log.info("this config can run here%s", f" (warnings: {', '.join(warned)})" if warned else "")


_hydra_main = hydra_app(doctor)


@exit_on_user_error
def main() -> None:
    if any(arg in ("-m", "--multirun") for arg in sys.argv[1:]):
        raise UserError("llmkit doctor checks one config, not a sweep; drop -m and run it once per config")
    _hydra_main()
