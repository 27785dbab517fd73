"""`python -m evaluation accuracy <overrides>`: the evaluation stage's commands."""
from __future__ import annotations

import sys

COMMANDS = ("accuracy",)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(f"usage: python -m evaluation {{{','.join(COMMANDS)}}} <overrides>\n")
        raise SystemExit(2)
    command = sys.argv.pop(1)
    if command == "accuracy":
        from llmkit.config.app import hydra_app
        from evaluation.accuracy import evaluate_run

        hydra_app(evaluate_run)()


if __name__ == "__main__":
    main()
