"""The `llmkit` console script: one table of commands, each run by importing its stage only when chosen.

A command is a `module:function` entry point. Before calling it, argv is rewritten once: the stage's own
sub-command words go first (`llmkit evaluate` is `python -m evaluation accuracy`), and for commands that work on a
path a bare path argument becomes its override (`llmkit evaluate RUN_DIR` sets `evaluation.run_dir=RUN_DIR`).
`llmkit COMMAND --help` prints what the command does, its arguments and an example.
"""
from __future__ import annotations

import importlib
import sys

from launch.commands import BY_NAME, COMMANDS, Command
from llmkit.errors import did_you_mean
from llmkit.interrupts import one_line_on_interrupt

HELP = ("-h", "--help")


def usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = ["usage: llmkit <command> [arguments...]   (llmkit <command> --help for each)", "", "commands:"]
    lines += [f"  {c.name.ljust(width)}  {c.summary}" for c in COMMANDS]
    lines += ["", "overrides select and change config groups, e.g.: benchmark=llama3.1-405b model=tiny-llama3 "
              "scenario=server"]
    return "\n".join(lines) + "\n"


def command_help(command: Command) -> str:
    lines = [f"usage: llmkit {command.name} {command.arguments}", "", command.summary + "."]
    if command.hydra:
        from llmkit.config.load import CONF_DIR, group_names, group_options

        lines += ["", "config groups (choose with group=option; set a field with group.key=value; sweep with -m):"]
        lines += [f"  {group}: {', '.join(group_options(group, CONF_DIR))}" for group in group_names(CONF_DIR)]
        lines += ["", "the keys of each group are the fields of its schema in llmkit/config/schema.py; "
                  "`llmkit validate OVERRIDES` checks a configuration"]
    lines += ["", f"example: {command.example}"]
    return "\n".join(lines) + "\n"


def resolve(argv: list[str]) -> tuple[Command | None, list[str]]:
    """The command named by argv[1:] (two words for `test06 verify`) and its own arguments."""
    if len(argv) > 2 and f"{argv[1]} {argv[2]}" in BY_NAME:
        return BY_NAME[f"{argv[1]} {argv[2]}"], argv[3:]
    return BY_NAME.get(argv[1]), argv[2:]


def stage_arguments(command: Command, args: list[str]) -> list[str]:
    """The one argv rewrite: the stage's sub-command words, then the arguments with a bare path made an override."""
    if command.path_key is not None:
        args = [f"{command.path_key}={a.removeprefix('path=')}" if a.startswith("path=") or not (
            "=" in a or a.startswith("-")) else a for a in args]
    return [*command.stage_argv, *args]


def main() -> None:
    argv = sys.argv
    if len(argv) < 2 or argv[1] in (*HELP, "help"):
        sys.stdout.write(usage())
        raise SystemExit(0 if len(argv) >= 2 else 2)
    command, args = resolve(argv)
    if command is None:
        sys.stderr.write(f"llmkit: error: unknown command '{argv[1]}'{did_you_mean(argv[1], BY_NAME)}; "
                         "see llmkit --help\n")
        raise SystemExit(2)
    if command.hydra and any(a in HELP for a in args):
        sys.stdout.write(command_help(command))
        raise SystemExit(0)
    module, function = command.target.split(":")
    sys.argv = [f"llmkit {command.name}", *stage_arguments(command, args)]
    # SIGTERM unwinds like Ctrl-C (llmkit.interrupts), so what a command cleans up on the way out is cleaned up.
    one_line_on_interrupt(command.name, getattr(importlib.import_module(module), function))
