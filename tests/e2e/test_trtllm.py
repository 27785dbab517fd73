"""The trtllm and trtllm-pytorch backends end to end through the real loadgen, on a fake 8x H100 node: engines built
by `llmkit build` with the trtllm-build double (tests/fakes), served by the TensorRT-LLM 1.2.1 double
(tests/fakes/trtllm), which decodes greedily with the kit's own ContinuousBatch, so every answer must equal the hf
backend's token for token. Injected faults end the run at once, naming the request or the instance."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from fakes import fake_toolchain_env
from fakes.trtllm.env import fake_trtllm_env

H100 = "8x NVIDIA H100 80GB HBM3|9.0|81559"
BUILD = ["calibration.num_samples=4", "calibration.max_length=32", "calibration.batch_size=2",
         "quantize.gate_samples=2", "quantize.min_greedy_agreement=0"]
# One instance of tp 1 x pp 1 on the node, unquantized: the cheapest engines.
MIXTRAL = ["system=h100x8", "system.dp=1", "benchmark=mixtral-8x7b", "model=tiny-mixtral", "precision=bf16"]
LLAMA = ["system=h100x8", "system.dp=1", "system.tp=1", "system.pp=1", "benchmark=llama3.1-405b",
         "model=tiny-llama3", "precision=bf16"]
FAST = ["loadgen.min_duration_ms=100", "loadgen.min_query_count=1"]
RUN_TIMEOUT_S = 45  # a run that hangs fails the test instead of the suite


def node_env(**fake) -> dict[str, str]:
    """The fake node (nvidia-smi, trtllm-build, TensorRT-LLM 1.2.1's metadata) with the TensorRT-LLM double on top."""
    return fake_trtllm_env(base=fake_toolchain_env(H100), **fake)


@pytest.fixture(scope="module")
def root(artifacts, tmp_path_factory) -> Path:
    """An artifacts root with one mixtral and one llama engine, built once for the module."""
    root = tmp_path_factory.mktemp("trtllm-artifacts")
    for layout, model in ((MIXTRAL, "tiny-mixtral"), (LLAMA, "tiny-llama3")):
        built = run_cli("llmkit", "build", *layout, *BUILD, f"artifacts_root={root}",
                        f"model.path={artifacts / 'models' / model}", env=node_env())
        assert built.returncode == 0, built.stderr[-3000:]
    assert len(list((root / "engines").iterdir())) == 2
    return root


def llmkit_run(root: Path, out: Path, *overrides: str, command: str = "run", env: dict[str, str] | None = None,
               max_new_tokens: int = 8):
    return run_cli("llmkit", command, *overrides, *FAST, f"artifacts_root={root}", f"runs_root={out.parent}",
                   f"max_new_tokens={max_new_tokens}", f"output_dir={out}", env=node_env() if env is None else env,
                   timeout=RUN_TIMEOUT_S)


def served(root: Path, out: Path, *overrides: str, **kwargs) -> dict:
    result = llmkit_run(root, out, *overrides, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


def answers(run_dir: Path) -> dict[int, list[int]]:
    """An accuracy run's answers by dataset row."""
    entries = json.loads((run_dir / "mlperf_log_accuracy.json").read_text())
    return {e["qsl_idx"]: np.frombuffer(bytes.fromhex(e["data"]), dtype=np.int32).tolist() for e in entries}


@pytest.fixture(scope="module")
def hf_answers(artifacts, tmp_path_factory) -> dict[int, list[int]]:
    """The hf backend's answers to the mixtral sample, 32 new tokens at most (on the CPU, as the double decodes)."""
    out = tmp_path_factory.mktemp("hf") / "accuracy"
    served(artifacts, out, "backend=hf", "system=cpu", "benchmark=mixtral-8x7b", "model=tiny-mixtral",
           "mode=accuracy", max_new_tokens=32, env={})
    return answers(out)


def test_trtllm_offline_and_server_through_loadgen(root, tmp_path):
    offline = served(root, tmp_path / "offline", "backend=trtllm", *MIXTRAL)
    assert offline["valid"] is True and offline["scenario"] == "Offline" and offline["tokens_per_second"] > 0
    engine = offline["engine"]
    assert 0 < engine["ttft_p99_ms"] and engine["tpot_p99_ms"] > 0  # from the Executor's request perf metrics
    assert engine["instances"] == 1 and engine["tokens"] == offline["output_tokens"] and engine["iterations"] > 0
    assert offline["placement"]["instances"] == [{"index": 0, "ranks": [0], "devices": ["cuda:0"]}]
    server = served(root, tmp_path / "server", "backend=trtllm", *MIXTRAL, "scenario=server", "scenario.target_qps=20")
    assert server["scenario"] == "Server" and server["ttft_p99_ms"] > 0 and server["tpot_p99_ms"] > 0
    assert server["valid"] is False and "early stopping" in server["invalid_reason"]  # a smoke run's few queries
    assert not list(tmp_path.glob(".*staging*"))


def test_trtllm_server_on_the_replay_loop_in_its_own_process(root, tmp_path):
    """The double's ENGINE=process (what `llmkit bench harness --backend trtllm` measures with): answers at its
    delays from child processes, iteration stats sampled."""
    env = node_env(mode="replay", ttft_ms=20, tpot_ms=4, engine="process", iteration_ms=4)
    server = served(root, tmp_path / "server", "backend=trtllm", *MIXTRAL, "scenario=server", "scenario.target_qps=20",
                    env=env)
    assert server["sample_count"] > 0 and 20 <= server["ttft_p99_ms"] < 1000 and server["tpot_p99_ms"] >= 3
    engine = server["engine"]
    assert engine["iterations"] > 0 and engine["tokens"] == server["output_tokens"]
    # the engine's own latencies, from the request perf metrics the backend asks for: within loadgen's
    assert 20 <= engine["ttft_p99_ms"] <= server["ttft_p99_ms"] and 3 <= engine["tpot_p99_ms"]


def test_trtllm_interactive_and_test06(root, tmp_path):
    interactive = served(root, tmp_path / "interactive", "backend=trtllm", *LLAMA, "scenario=interactive",
                         "scenario.target_qps=20")
    assert interactive["loadgen_model"] == "llama3_1-405b-interactive" and interactive["ttft_p99_ms"] > 0
    test06 = tmp_path / "test06"
    result = llmkit_run(root, test06, "backend=trtllm", *LLAMA, "scenario=interactive", "scenario.target_qps=20",
                        command="test06")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TEST06 verification complete" in (test06 / "TEST06" / "verify_accuracy.txt").read_text()


@pytest.mark.parametrize("backend", ["trtllm", "trtllm-pytorch"])
def test_accuracy_answers_equal_the_hf_backend(backend, root, artifacts, hf_answers, tmp_path):
    model = [f"model.path={artifacts / 'models' / 'tiny-mixtral'}"] if backend == "trtllm-pytorch" else []
    out = tmp_path / "accuracy"
    served(root, out, f"backend={backend}", *MIXTRAL, *model, "mode=accuracy", max_new_tokens=32)
    assert answers(out) == hf_answers


def test_trtllm_pytorch_offline_performance(root, artifacts, tmp_path):
    summary = served(root, tmp_path / "offline", "backend=trtllm-pytorch", *MIXTRAL,
                     f"model.path={artifacts / 'models' / 'tiny-mixtral'}")
    assert summary["valid"] is True and summary["engine"]["tokens"] == summary["output_tokens"]
    assert summary["engine"]["ttft_p99_ms"] > 0  # the engine's own, from the LLM API's request perf metrics


# Four requests at a time, so answers come over several iterations and a fault after the warm-up's four has work
# left to hit; a stall is noticed after 2 s.
FAULTY = [*MIXTRAL, "backend.max_batch_size=4", "backend.stall_timeout_s=2"]


@pytest.mark.parametrize("backend", ["trtllm", "trtllm-pytorch"])
@pytest.mark.parametrize("fault, code, said", [
    ({"error_on": 9}, 3, r"{backend} instance 0: request \d+ failed: .*Encountered an error when fetching new "
                         r"request"),
    ({"stall_after": 9}, 3, r"{backend} instance 0 stalled: no response and no iteration for 2\.\d s with \d+ "
                            r"requests outstanding \(requests \d+"),
    ({"die_after": 9, "die_mode": "raise"}, 3, r"{backend} instance 0(:| failed:) .*executor worker died"),
    # The worker takes the whole process down (as a crashed MPI job does): only the runtime's own line remains.
    ({"die_after": 9}, 134, r"executor worker died after \d+ final responses"),
], ids=["error_response", "stalled_executor", "dead_worker_raising", "dead_worker_exiting"])
def test_a_fault_ends_the_run_naming_the_request_or_instance(backend, fault, code, said, root, artifacts, tmp_path):
    import re

    out = tmp_path / "faulty"
    model = [f"model.path={artifacts / 'models' / 'tiny-mixtral'}"] if backend == "trtllm-pytorch" else []
    result = llmkit_run(root, out, f"backend={backend}", *FAULTY, *model, env=node_env(**fault))
    assert result.returncode == code, result.stderr[-3000:]
    assert re.search(said.replace("{backend}", backend), result.stderr), result.stderr[-3000:]
    if code == 3:
        [line] = [line for line in result.stderr.splitlines() if "CRITICAL" in line]
        assert "backend failed" in line
    assert not out.exists()  # a failed run leaves no run directory to be mistaken for a finished one
    if code == 3:  # and, ended by the kit itself, not its half-written staging directory either
        assert not list(tmp_path.glob(".faulty.staging-*"))


@pytest.mark.mpi
def test_leader_placement_under_mpirun_serves_one_instance_per_rank(root, hf_answers, tmp_path):
    """mpirun -n 3 with backend.placement=leader and dp 2: loadgen on rank 0, one Executor on each of ranks 1 and 2;
    the answers are the hf backend's."""
    import shutil
    import sys

    from conftest import BIN

    mpirun = str(BIN / "mpirun") if (BIN / "mpirun").exists() else (shutil.which("mpirun") or "mpirun")
    env = node_env()
    out = tmp_path / "leader"
    result = run_cli(mpirun, "--allow-run-as-root", "--oversubscribe", *[i for k in env if k.startswith(
        ("LLMKIT_", "PYTHONPATH", "PATH")) for i in ("-x", k)], "-np", "3", sys.executable, "-m", "sut",
        "backend=trtllm", "backend.placement=leader", *MIXTRAL, "system.dp=2", "mode=accuracy", *FAST,
        f"artifacts_root={root}", f"runs_root={out.parent}", "max_new_tokens=32", f"output_dir={out}", env=env,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "result.json").read_text())
    assert summary["placement"]["instances"] == [{"index": 0, "ranks": [1], "devices": ["cuda:0"]},
                                                 {"index": 1, "ranks": [2], "devices": ["cuda:1"]}]
    assert summary["engine"]["instances"] == 2
    assert answers(out) == hf_answers


@pytest.mark.mpi
def test_harness_runs_a_trtllm_case_one_rank_per_instance(artifacts, tmp_path, monkeypatch):
    """`llmkit bench harness --backend trtllm` (leader placement, its default): the case runs under mpirun -n
    1+instances, loadgen on rank 0 and one instance per rank, on the double's replay loop in processes of its own;
    only rank 0 writes the figures, with the engine's own latencies beside loadgen's."""
    from bench.harness import Case, run_case

    env = fake_trtllm_env(base=fake_toolchain_env("8x NVIDIA H200|9.0|143771"), mode="replay", ttft_ms=20,
                          tpot_ms=4, engine="process", iteration_ms=4)
    built = run_cli("llmkit", "build", "system=h200x8", "system.dp=1", "system.tp=1", "system.pp=1",
                    "benchmark=mixtral-8x7b", "model=tiny-mixtral", "precision=bf16", f"artifacts_root={tmp_path}",
                    f"model.path={artifacts / 'models' / 'tiny-mixtral'}", env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    (engine,) = (tmp_path / "engines").iterdir()
    for key, value in env.items():  # the case's processes inherit this one's environment
        monkeypatch.setenv(key, value)
    case = Case("tiny Server trtllm leader", "mixtral-8x7b", "server", 1, target_qps=40, mean_output=8, ttft_ms=20,
                tpot_ms=4, instances=2, duration_ms=500, min_queries=20, samples=64, backend="trtllm",
                engine_dir=str(engine), placement="leader")
    figures = run_case(case)
    assert figures["placement"]["mode"] == "instances per rank"
    assert [place["ranks"] for place in figures["placement"]["instances"]] == [[1], [2]]
    assert figures["sample_count"] >= 20 and figures["ttft_p99_ms"] > 0
    engine_figures = figures["engine"]
    assert engine_figures["instances"] == 2 and engine_figures["tokens"] == figures["output_tokens"]
    assert 20 <= engine_figures["ttft_p99_ms"] <= figures["ttft_p99_ms"]
