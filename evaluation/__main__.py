"""`python -m evaluation <command> <overrides>`: the evaluation stage's commands."""
from __future__ import annotations

import sys

COMMANDS = ("accuracy", "test06", "verify-test06", "package", "check")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(f"usage: python -m evaluation {{{','.join(COMMANDS)}}} <overrides>\n")
        raise SystemExit(2)
    command = sys.argv.pop(1)
    if command == "check":
        from evaluation.submission.check import main as check_main

        check_main()
        return
    from llmkit.config.app import hydra_app

    if command == "accuracy":
        from evaluation.accuracy import evaluate_run

        hydra_app(evaluate_run, only=("evaluate", ("evaluation",), "scores a run with the config it was made with"))()
    elif command == "test06":
        from evaluation.test06 import run_test06

        hydra_app(run_test06)()
    elif command == "verify-test06":
        from evaluation.test06 import check_verify_config, verify_command

        # Verifying a log needs its benchmark and scenario, not a model or a backend.
        hydra_app(verify_command, validate=check_verify_config,
                  only=("test06 verify", ("evaluation", "benchmark", "scenario"), "verifies the run or log it is given"))()
    else:
        from evaluation.submission.package import package

        hydra_app(package, only=("package", ("submission",), "packages runs with the configs they were made with"))()


if __name__ == "__main__":
    main()
