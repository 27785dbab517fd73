"""`python -m quantize calibrate <overrides>`: the quantization stage's commands (quantization itself: issue #6)."""
from __future__ import annotations

import sys

COMMANDS = ("calibrate",)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(f"usage: python -m quantize {{{','.join(COMMANDS)}}} <overrides>\n")
        raise SystemExit(2)
    sys.argv.pop(1)
    from llmkit.config.app import hydra_app
    from quantize.calibrate import calibrate

    hydra_app(calibrate)()


if __name__ == "__main__":
    main()
