"""The `llmkit` console script: one table of commands, each run by importing its stage only when chosen.

A command is a `module:function` entry point. Before calling it, argv is rewritten once: the stage's own
sub-command words go first (`llmkit evaluate` is `python -m evaluation accuracy`), and for commands that work on a
path a bare path argument becomes its override (`llmkit evaluate RUN_DIR` sets `evaluation.run_dir=RUN_DIR`).
`llmkit COMMAND --help` prints what the command does, its arguments and an example.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from llmkit.errors import did_you_mean

OVERRIDES = "[overrides...]"


@dataclass(frozen=True)
class Command:
    name: str
    target: str  # module:function
    summary: str
    arguments: str
    example: str
    stage_argv: tuple[str, ...] = ()  # the stage's own sub-command words, put before the user's arguments
    path_key: str | None = None  # a bare path argument becomes `path_key=PATH`
    hydra: bool = True  # takes Hydra overrides (its --help lists the config groups)


COMMANDS = (
    Command("run", "sut.__main__:main", "one loadgen run of the SUT; writes a run directory (also under mpirun/srun, "
            "and -m sweeps)", OVERRIDES, "llmkit run scenario=server mode=accuracy"),
    Command("pipeline", "launch.pipeline:main", "the main job: per scenario a performance, an evaluated accuracy and a "
            "TEST06 run, then a checked submission tree", OVERRIDES, "llmkit pipeline benchmark=llama3.1-405b "
            "model=tiny-llama3"),
    Command("evaluate", "evaluation.__main__:main", "score an accuracy run's log: accuracy.txt and the verdict",
            f"RUN_DIR {OVERRIDES}", "llmkit evaluate runs/mixtral-8x7b/cpu/offline/20261130-101500-accuracy",
            stage_argv=("accuracy",), path_key="evaluation.run_dir"),
    Command("test06", "evaluation.__main__:main", "compliance TEST06: a run with its audit.config, then the "
            "verification", OVERRIDES, "llmkit test06 scenario=server", stage_argv=("test06",)),
    Command("test06 verify", "evaluation.__main__:main", "verify an existing TEST06 run directory, or a log (with "
            "benchmark= and scenario=)", f"PATH {OVERRIDES}", "llmkit test06 verify mlperf_log_accuracy.json "
            "benchmark=llama3.1-405b scenario=offline", stage_argv=("verify-test06",), path_key="evaluation.run_dir"),
    Command("package", "evaluation.__main__:main", "build the submission tree of submission.round from run "
            "directories, check it, write its report beside it", OVERRIDES,
            "llmkit package submission.pipeline_dir=runs/mixtral-8x7b/cpu/pipeline-20261130-101500",
            stage_argv=("package",)),
    Command("check", "evaluation.submission.check:main", "check a submission tree against its round's rules",
            "TREE [--round v6.0|v5.1]", "llmkit check submissions/20261130-101500", hydra=False),
    Command("calibrate", "quantize.__main__:main", "the benchmark's calibration set tokenized by the model's "
            "tokenizer, as a keyed artifact", OVERRIDES, "llmkit calibrate calibration.num_samples=64",
            stage_argv=("calibrate",)),
    Command("quantize", "quantize.__main__:main", "modelopt post-training quantization exported as a TensorRT-LLM "
            "checkpoint sharded for system.tp x system.pp", OVERRIDES, "llmkit quantize precision=fp8 system.tp=2"),
    Command("validate", "launch.validate:main", "compose every shipped config combination (or the one given) and "
            "report what is invalid", OVERRIDES, "llmkit validate benchmark=llama3.1-405b scenario=interactive"),
    Command("sample-data", "launch.sample_data:main", "write the sample dataset in the official schema",
            "BENCHMARK OUT.{pkl,parquet,jsonl} [--split validation|calibration]",
            "llmkit sample-data mixtral-8x7b sample.pkl", hydra=False),
    Command("bench", "launch.bench:main", "benchmarks that print their figures", "harness|hf|evaluation [options]",
            "llmkit bench harness --skip soak", hydra=False),
)
BY_NAME = {command.name: command for command in COMMANDS}
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
    getattr(importlib.import_module(module), function)()
