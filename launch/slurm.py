"""`llmkit slurm [overrides]`: write the sbatch script of a whole submission run (launch/slurm_script.py) and, with
slurm.submit=true, submit it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from launch.pipeline_steps import step_overrides
from launch.slurm_script import render
from llmkit.config.app import hydra_app
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError
from llmkit.rundir import refuse_existing_run

# Settings of the script itself, never passed on to its steps.
CLUSTER_KEYS = {"slurm", "containers"}


def _submit(script: Path) -> str:
    try:
        done = subprocess.run(["sbatch", str(script)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise UserError(f"sbatch is not on PATH, so {script} was written but not submitted; run this on a Slurm "
                        "login node or submit it there with sbatch") from None
    if done.returncode != 0:
        why = " ".join(line.split("error:", 1)[-1].strip() for line in done.stderr.splitlines() if line.strip())
        raise UserError(f"sbatch refused {script}: {why or f'exit {done.returncode}'}; fix the slurm.* setting it "
                        "names (partition, account, time, gpus) and submit the script again")
    job = re.search(r"Submitted batch job (\d+)", done.stdout)
    if job is None:
        raise UserError(f"sbatch did not say which job it submitted ({done.stdout.strip()}); check squeue")
    return job.group(1)


def write_script(cfg: RunConfig) -> Path:
    for pair in cfg.slurm.env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", pair):
            raise UserError(f"slurm.env holds NAME=VALUE pairs, not '{pair}'; e.g. "
                            "'slurm.env=[MPI4PY_LIBMPI=/usr/lib/x86_64-linux-gnu/libmpi.so.40]'")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = Path(cfg.output_dir) if cfg.output_dir else (
        Path(cfg.runs_root) / cfg.benchmark.name / cfg.system.name / f"pipeline-{stamp}")
    refuse_existing_run(root)
    script = Path(cfg.slurm.script) if cfg.slurm.script else (
        Path(cfg.runs_root).absolute().parent / f"llmkit-{cfg.benchmark.name}-{cfg.system.name}-{stamp}.sbatch")
    user, evaluation, submission = step_overrides(CLUSTER_KEYS)
    text = render(cfg, script, root.absolute(), user, evaluation, submission)
    script.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(script, "x") as out:  # never over an existing file
            out.write(text)
    except FileExistsError:
        raise UserError(f"{script} already exists and is never overwritten; choose another slurm.script=") from None
    os.chmod(script, 0o755)
    sys.stdout.write(f"sbatch script: {script}\n")
    if cfg.slurm.submit:
        sys.stdout.write(f"submitted: Slurm job {_submit(script)} (its log: {cfg.slurm.output or script.with_name(script.stem + '-<job id>.out')})\n")
    sys.stdout.flush()
    return script


main = hydra_app(write_script)
