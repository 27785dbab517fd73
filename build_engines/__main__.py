"""`python -m build_engines <overrides>` builds the engine (`llmkit build`); `python -m build_engines plan
<overrides>` plans memory and throughput (`llmkit plan`).

In a `-m` sweep a combination the preflight refuses is reported and the sweep goes on; it ends with exit status 2
when any was refused.
"""
from __future__ import annotations

import sys


def main() -> None:
    from llmkit.config.app import hydra_app

    if len(sys.argv) > 1 and sys.argv[1] == "plan":
        sys.argv.pop(1)
        from build_engines.plan import plan_command as task
    else:
        from build_engines.sweep import build_job as task
    # Each job validates its config itself (build_engines/sweep.py), so that a sweep reports a refused combination
    # and goes on.
    hydra_app(task, validate=lambda cfg: None)()
    from build_engines.sweep import REFUSED, report_refused

    if REFUSED:
        report_refused()
        raise SystemExit(2)


if __name__ == "__main__":
    main()
