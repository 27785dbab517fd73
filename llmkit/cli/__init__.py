"""The `llmkit` console script: a dispatcher that imports a stage only when its subcommand runs.

This subpackage is the one place above the stages (the pipeline lives here); the rest of llmkit never imports one.
"""
from __future__ import annotations

import sys

USAGE = """usage: llmkit <command> [hydra overrides...]

commands:
  run          one loadgen run of the SUT            (= python -m sut ...; mpirun -n N llmkit run ...)
  pipeline     the main job: Offline and Server performance runs, an accuracy run and its evaluation
  evaluate     score a run's accuracy log: llmkit evaluate RUN_DIR [overrides] (= python -m evaluation accuracy)
  validate     compose every shipped config combination (or the one given) and report what is invalid
  sample-data  write the sample dataset in the official schema: llmkit sample-data BENCHMARK OUT.{pkl,parquet,jsonl}

overrides select and change config groups, e.g.: benchmark=llama3.1-405b model=tiny-llama3 scenario=server
"""


def _command(name: str):
    if name == "run":
        from sut.__main__ import main
    elif name == "pipeline":
        from llmkit.cli.pipeline import main
    elif name == "evaluate":
        main = _evaluate
    elif name == "validate":
        from llmkit.cli.validate import main
    elif name == "sample-data":
        from llmkit.cli.sample_data import main
    else:
        return None
    return main


def _evaluate() -> None:
    """`llmkit evaluate RUN_DIR [overrides]` is `python -m evaluation accuracy evaluation.run_dir=RUN_DIR ...`."""
    from evaluation.__main__ import main

    args = [a if "=" in a or a.startswith("-") else f"evaluation.run_dir={a}" for a in sys.argv[1:]]
    sys.argv = [sys.argv[0], "accuracy", *args]
    main()


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        raise SystemExit(0 if len(sys.argv) >= 2 else 2)
    name = sys.argv[1]
    command = _command(name)
    if command is None:
        from llmkit.errors import did_you_mean

        choices = ("run", "pipeline", "evaluate", "validate", "sample-data")
        sys.stderr.write(f"llmkit: error: unknown command '{name}'{did_you_mean(name, choices)}; see llmkit --help\n")
        raise SystemExit(2)
    sys.argv = [f"llmkit {name}", *sys.argv[2:]]
    command()
