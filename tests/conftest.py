"""Shared fixtures: tiny checkpoints built once per session, and helpers to run the CLI as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmkit.config.schema import TinyArchitecture

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """An artifacts root holding both tiny checkpoints (written once per test session)."""
    from llmkit.models.tiny import ensure_tiny_checkpoint

    root = tmp_path_factory.mktemp("artifacts")
    for architecture in TinyArchitecture:
        ensure_tiny_checkpoint(architecture, root / "models" / f"tiny-{architecture.value}")
    return root


@pytest.fixture
def quick(artifacts, tmp_path) -> list[str]:
    """Overrides for a fast run: short answers, short loadgen durations, runs under tmp_path."""
    return [
        f"artifacts_root={artifacts}", f"runs_root={tmp_path / 'runs'}", "max_new_tokens=8",
        "loadgen.min_duration_ms=100", "loadgen.min_query_count=1",
    ]


def run_cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command from the venv's bin (llmkit, mpirun) or `python -m ...`, capturing text output."""
    command = [str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def python_module(module: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return run_cli(sys.executable, "-m", module, *args, **kwargs)
