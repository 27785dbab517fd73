"""containers/gpu-smoke.sh, the script a user runs in the TensorRT-LLM container on one GPU, runs every step here on
the test doubles (a fake H100 node, tests/fakes; the TensorRT-LLM 1.2.1 double, tests/fakes/trtllm). It proves the
script's commands and their order, not the GPU: the README says it has not yet run on one."""
from __future__ import annotations

import os

from conftest import BIN, REPO, run_cli
from fakes import fake_toolchain_env
from fakes.trtllm.env import fake_trtllm_env

H100 = "8x NVIDIA H100 80GB HBM3|9.0|81559"


def test_the_gpu_smoke_script_passes_every_step_on_the_doubles(tmp_path):
    env = fake_trtllm_env(base=fake_toolchain_env(H100))
    env["PATH"] = os.pathsep.join([env["PATH"].split(os.pathsep)[0], str(BIN), env["PATH"]])
    result = run_cli("bash", str(REPO / "containers" / "gpu-smoke.sh"), str(tmp_path / "work"), env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines if line.startswith(("ok", "FAIL"))] == ["ok"] * 8
    assert lines[-1].startswith("gpu-smoke: PASS")
    assert "as h100x8" in lines[0]
