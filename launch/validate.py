"""`llmkit validate [overrides]`: compose every shipped config combination and report what is invalid.

With overrides, only that configuration is checked (exit code 2 when it is invalid).
"""
from __future__ import annotations

import itertools
import sys
from collections import defaultdict

from rich.console import Console
from rich.table import Table

from llmkit.config.load import CONF_DIR, check_overrides, compose, group_names, group_options, to_run_config
from llmkit.config.validate import Finding, Severity, check
from llmkit.errors import USER_ERROR_EXIT_CODE, UserError, exit_on_user_error

# Choices a user must complete (a path to their checkpoint or dataset) rather than mistakes.
NEEDS_INPUT = ("needs a checkpoint directory", "reads a file")


def check_combination(overrides: list[str]) -> list[Finding]:
    try:
        return check(to_run_config(compose(overrides)))
    except UserError as error:
        return [Finding(Severity.error, str(error))]


# Groups whose options are checked with every combination of a few others, instead of multiplying the whole matrix:
# the precision (read by the quantize stage) with the benchmark and model; each system (its tuned entries are checked
# whichever combination names it) with the benchmark, model and scenario that pick an entry.
STAGE_GROUPS = {"precision": ("benchmark", "model"), "system": ("benchmark", "model", "scenario")}


def _combinations() -> list[list[str]]:
    groups = group_names(CONF_DIR)
    served = [g for g in groups if g not in STAGE_GROUPS and g != "hydra"]
    combos = [[f"{g}={v}" for g, v in zip(served, values)]
              for values in itertools.product(*(group_options(g) for g in served))]
    for stage_group, crossed in STAGE_GROUPS.items():
        for values in itertools.product(*(group_options(g) for g in (*crossed, stage_group))):
            combos.append([f"{g}={v}" for g, v in zip((*crossed, stage_group), values)])
    return combos


def matrix() -> dict[str, list[str]]:
    """Every shipped combination -> its first error (or '' when valid)."""
    results: dict[str, list[str]] = defaultdict(list)
    for overrides in _combinations():
        errors = [f.message for f in check_combination(overrides) if f.severity is Severity.error]
        results[errors[0] if errors else ""].append(" ".join(overrides))
    return results


def _report_matrix(console: Console) -> None:
    results = matrix()
    total = sum(len(v) for v in results.values())
    table = Table(title=f"llmkit validate: {total} shipped combinations")
    table.add_column("combinations", justify="right")
    table.add_column("verdict")
    table.add_column("example")
    for reason, combos in sorted(results.items(), key=lambda kv: (kv[0] != "", kv[0])):
        if not reason:
            verdict = "[green]valid[/green]"
        elif any(marker in reason for marker in NEEDS_INPUT):
            verdict = f"[yellow]needs input[/yellow]: {reason}"
        else:
            verdict = f"[red]invalid[/red]: {reason}"
        table.add_row(str(len(combos)), verdict, combos[0])
    console.print(table)


@exit_on_user_error
def main() -> None:
    console = Console()
    overrides = sys.argv[1:]
    if not overrides:
        _report_matrix(console)
        return
    check_overrides(overrides)
    findings = check_combination(overrides)
    for finding in findings:
        colour = "red" if finding.severity is Severity.error else "yellow"
        console.print(f"[{colour}]{finding.severity.value}[/{colour}]: {finding.message}")
    if any(f.severity is Severity.error for f in findings):
        raise SystemExit(USER_ERROR_EXIT_CODE)
    console.print("[green]valid[/green]")
