"""The `llmkit` console script: a dispatcher that imports a stage only when its subcommand runs.

This subpackage is the one place above the stages (the pipeline lives here); the rest of llmkit never imports one.
"""
from __future__ import annotations

import sys

USAGE = """usage: llmkit <command> [hydra overrides...]

commands:
  run          one loadgen run of the SUT            (= python -m sut ...; mpirun -n N llmkit run ...)
  pipeline     the main job: per scenario performance, evaluated accuracy and TEST06 runs; a checked submission tree
  evaluate     score a run's accuracy log: llmkit evaluate RUN_DIR [overrides] (= python -m evaluation accuracy)
  test06       compliance TEST06: a run with its audit.config, then the verification (test06 verify PATH: existing)
  package      build the submission tree from run directories (submission.runs=[...] or submission.pipeline_dir=)
  check        check a submission tree and report every problem: llmkit check TREE
  calibrate    the benchmark's calibration set tokenized by the model's tokenizer (= python -m quantize calibrate)
  quantize     modelopt PTQ (precision=fp8|int8_sq|w4a8_awq|nvfp4|autoquant|bf16) exported as a TensorRT-LLM
               checkpoint sharded for system.tp x system.pp (= python -m quantize; sweep with -m precision=a,b)
  validate     compose every shipped config combination (or the one given) and report what is invalid
  sample-data  write the sample dataset in the official schema: llmkit sample-data BENCHMARK OUT.{pkl,parquet,jsonl}
  bench        benchmarks that print their figures: llmkit bench harness | hf | evaluation

overrides select and change config groups, e.g.: benchmark=llama3.1-405b model=tiny-llama3 scenario=server
"""


COMMANDS = ("run", "pipeline", "evaluate", "test06", "package", "check", "calibrate", "quantize", "validate", "sample-data",
            "bench")


def _command(name: str):
    if name == "run":
        from sut.__main__ import main
    elif name == "pipeline":
        from llmkit.cli.pipeline import main
    elif name in ("evaluate", "test06", "package", "check"):
        main = _evaluation_command
    elif name == "calibrate":
        main = _calibrate
    elif name == "quantize":
        from quantize.__main__ import main
    elif name == "validate":
        from llmkit.cli.validate import main
    elif name == "sample-data":
        from llmkit.cli.sample_data import main
    elif name == "bench":
        main = _bench
    else:
        return None
    return main


def _evaluation_command() -> None:
    """The evaluation stage's commands; a bare path argument names the run (or tree) they work on."""
    from evaluation.__main__ import main

    name, args = sys.argv[0].split()[-1], sys.argv[1:]
    if name == "test06" and args[:1] == ["verify"]:
        name, args = "verify-test06", args[1:]
    if name in ("evaluate", "verify-test06"):
        args = [_path_override(a, "evaluation.run_dir") for a in args]
    sys.argv = [sys.argv[0], "accuracy" if name == "evaluate" else name, *args]
    main()


def _calibrate() -> None:
    from quantize.__main__ import main

    sys.argv = [sys.argv[0], "calibrate", *sys.argv[1:]]
    main()


BENCHES = {"harness": "sut.bench_harness", "hf": "sut.bench", "evaluation": "evaluation.bench"}


def _bench() -> None:
    """`llmkit bench NAME [options]` runs the benchmark script NAME."""
    import importlib

    from llmkit.errors import did_you_mean

    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in BENCHES:
        sys.stderr.write(f"llmkit: error: unknown benchmark '{name}'{did_you_mean(name, BENCHES)}; "
                         f"choose one of: {', '.join(BENCHES)}\n")
        raise SystemExit(2)
    sys.argv = [f"llmkit bench {name}", *sys.argv[2:]]
    importlib.import_module(BENCHES[name]).main()


def _path_override(arg: str, key: str) -> str:
    if arg.startswith("path="):
        return f"{key}={arg[len('path='):]}"
    return arg if "=" in arg or arg.startswith("-") else f"{key}={arg}"


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        raise SystemExit(0 if len(sys.argv) >= 2 else 2)
    name = sys.argv[1]
    command = _command(name)
    if command is None:
        from llmkit.errors import did_you_mean

        choices = COMMANDS
        sys.stderr.write(f"llmkit: error: unknown command '{name}'{did_you_mean(name, choices)}; see llmkit --help\n")
        raise SystemExit(2)
    sys.argv = [f"llmkit {name}", *sys.argv[2:]]
    command()
