"""`python -m quantize <overrides>` quantizes (precision=...); `python -m quantize calibrate <overrides>` builds the
calibration set alone."""
from __future__ import annotations

import sys
from functools import partial


def main() -> None:
    from llmkit.config.app import hydra_app
    from llmkit.config.validate import require_valid

    if len(sys.argv) > 1 and sys.argv[1] == "calibrate":
        sys.argv.pop(1)
        from quantize.calibrate import calibrate as task
    else:
        from quantize.stage import quantize as task
    # The quantize stage runs no loadgen and no backend: their checks do not apply.
    hydra_app(task, validate=partial(require_valid, serving=False))()
    from quantize.stage import FAILED_GATES, GATE_FAILED_EXIT_CODE

    if FAILED_GATES:  # a sweep ran every recipe; it still fails when one of them failed its quality gate
        sys.stderr.write(f"llmkit quantize: the quality gate failed for {len(FAILED_GATES)} checkpoint(s): "
                         f"{', '.join(str(p) for p in FAILED_GATES)}\n")
        raise SystemExit(GATE_FAILED_EXIT_CODE)


if __name__ == "__main__":
    main()
