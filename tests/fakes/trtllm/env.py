"""The environment that makes a subprocess (or this process, via os.environ) import the TensorRT-LLM 1.2.1 test double
as `tensorrt_llm` (tests/fakes/trtllm/README.md). Test-only; nothing outside tests/ imports it.

    from fakes.trtllm.env import fake_trtllm_env   # tests/ is on sys.path under pytest
    env = fake_trtllm_env(mode="replay", ttft_ms=5, error_on=3)
    subprocess.run([...], env=env)
"""
from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent  # tests/fakes/trtllm: holds the `tensorrt_llm` package
SITE = HERE.parent / "site"  # tests/fakes/site: tensorrt_llm-1.2.1.dist-info, so importlib.metadata agrees
PREFIX = "LLMKIT_FAKE_TRTLLM_"
KNOWN = ("mode", "ttft_ms", "tpot_ms", "output_len", "device", "checkpoint", "error_on", "stall_after",
         "die_after", "die_mode", "die_code", "engine", "iteration_ms")


def fake_trtllm_env(base: dict[str, str] | None = None, **settings) -> dict[str, str]:
    """`base` (default os.environ) with tests/fakes/trtllm and tests/fakes/site first on PYTHONPATH and the double's
    variables set from `settings` (names as in README.md, lower case without the prefix: mode, ttft_ms, tpot_ms,
    output_len, device, checkpoint, error_on, stall_after, die_after, die_mode, die_code, engine,
    iteration_ms; None leaves one unset).
    Variables of the double already in `base` are dropped first, so only what is asked for applies."""
    unknown = set(settings) - set(KNOWN)
    if unknown:
        raise TypeError(f"unknown fake TensorRT-LLM settings {sorted(unknown)}; known: {KNOWN}")
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(PREFIX)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(SITE), *filter(None, [env.get("PYTHONPATH")])])
    for name, value in settings.items():
        if value is not None:
            env[PREFIX + name.upper()] = str(value)
    return env
