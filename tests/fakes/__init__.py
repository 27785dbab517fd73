"""Test doubles of the engine toolchain: trtllm-build, nvidia-smi, TensorRT-LLM's package metadata (README.md)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

FAKES = Path(__file__).resolve().parent
BIN = FAKES / "bin"
SITE = FAKES / "site"


def fake_toolchain_env(gpus: str, *, cuda: str = "13.1", base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment to run a subprocess with the doubles: `base` (default os.environ) with tests/fakes/bin first on
    PATH, tests/fakes/site first on PYTHONPATH, the machine's GPUs (LLMKIT_FAKE_GPUS format: README.md; "" = none),
    the CUDA version, and the interpreter the shims run (this one, LLMKIT_FAKE_PYTHON)."""
    env = dict(os.environ if base is None else base)
    env.pop("CUDA_VISIBLE_DEVICES", None)  # the fake machine is exactly `gpus`; a test may set it afterwards
    env["PATH"] = os.pathsep.join([str(BIN), *filter(None, [env.get("PATH")])])
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), *filter(None, [env.get("PYTHONPATH")])])
    env.update(LLMKIT_FAKE_GPUS=gpus, LLMKIT_FAKE_CUDA=cuda, LLMKIT_FAKE_PYTHON=sys.executable)
    return env
