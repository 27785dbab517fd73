"""llmkit doctor's checks in-process: the disk estimate and its verdict, the pins inside and outside the TensorRT-LLM
container (the probes that need a machine run in tests/e2e/test_doctor.py)."""
from __future__ import annotations

from launch import doctor_checks
from launch.doctor_checks import GIB, RUNS_BYTES, Status, Target, artifacts_need, check_disk, check_pins, read_pins
from llmkit.benchmarks import LLAMA3_1_405B
from llmkit.config.load import load

LLAMA_FP8 = ["benchmark=llama3.1-405b", "model=checkpoint", "model.path=/nowhere/Llama-3.1-405B-Instruct",
             "system=h200x8", "backend=trtllm", "precision=fp8"]


def test_the_artifacts_need_is_the_quantized_checkpoint_and_its_engine_at_the_precisions_bits(tmp_path):
    cfg = load([*LLAMA_FP8, f"artifacts_root={tmp_path}"])
    need, how = artifacts_need(Target(cfg))
    shape = LLAMA3_1_405B.shape
    weights = shape.linear_parameters * 1 + (shape.parameters - shape.linear_parameters) * 2  # fp8 linears, 16-bit rest
    assert need == 2 * weights and 700 * GIB < need < 800 * GIB
    assert "a quantized checkpoint and its engine" in how and "at 8 bits per linear weight (precision=fp8)" in how
    assert "has no config.json here" in how  # the official checkpoint's shape stands in, and it says so
    # A tiny model and a backend that reads the checkpoint in place need next to nothing.
    assert artifacts_need(Target(load([])))[0] <= GIB
    assert artifacts_need(Target(load(LLAMA_FP8[:3] + ["backend=hf"])))[0] == 0


def test_a_disk_too_small_for_the_config_fails_naming_the_root_to_move(tmp_path, monkeypatch):
    cfg = load([*LLAMA_FP8, f"artifacts_root={tmp_path / 'art'}", f"runs_root={tmp_path / 'runs'}"])
    monkeypatch.setattr(doctor_checks, "free_bytes", lambda path: (1, 100 * GIB))
    result = check_disk(Target(cfg))
    assert result.status is Status.fail
    assert result.found.startswith(f"artifacts_root={tmp_path / 'art'} and runs_root={tmp_path / 'runs'}: 100.0 GiB "
                                   "free, needs ~")
    assert result.fix == "free space there, or point artifacts_root= and runs_root= at a filesystem with room"
    # On filesystems of their own, each root is held to its own need: only the artifacts' is short.
    monkeypatch.setattr(doctor_checks, "free_bytes", lambda path: (hash(str(path)), 100 * GIB))
    split = check_disk(Target(cfg))
    assert split.status is Status.fail and split.fix.startswith("free space there, or point artifacts_root= at")
    monkeypatch.setattr(doctor_checks, "free_bytes", lambda path: (1, 2000 * GIB))
    assert check_disk(Target(cfg)).status is Status.ok
    assert RUNS_BYTES <= GIB


def test_pins_differing_fail_outside_the_container_and_warn_for_what_the_container_owns(monkeypatch):
    pins = read_pins(doctor_checks.REPO / "requirements.txt")
    assert pins["torch"] == "2.13.0" and pins["huggingface-hub"] and "setuptools" in pins

    def installed(versions: dict[str, str | None]):
        return lambda name: versions.get(name, pinned(name))

    every = read_pins(doctor_checks.REPO / "constraints.txt") | pins

    def pinned(name: str) -> str:
        return every[name] + "+cpu"  # a local label is the same release

    cfg = load([])
    monkeypatch.setattr(doctor_checks, "_installed", installed({}))
    assert check_pins(Target(cfg)).status is Status.ok
    monkeypatch.setattr(doctor_checks, "_installed", installed({"torch": "2.9.1", "rich": None}))
    monkeypatch.setattr(doctor_checks.toolchain, "installed_versions", lambda: (None, None))
    outside = check_pins(Target(cfg))
    assert outside.status is Status.fail and "torch 2.9.1 (pinned 2.13.0)" in outside.found
    assert "rich missing (pinned 15.0.0)" in outside.found and "requirements.txt -c constraints.txt" in outside.fix
    monkeypatch.setattr(doctor_checks, "_installed", installed({"torch": "2.9.1", "mpi4py": "3.1.6"}))
    monkeypatch.setattr(doctor_checks.toolchain, "installed_versions", lambda: ("1.2.1", "10.14.1"))
    inside = check_pins(Target(cfg))
    assert inside.status is Status.warn
    assert "torch 2.9.1 (pinned 2.13.0), the TensorRT-LLM container's own" in inside.found
    monkeypatch.setattr(doctor_checks, "_installed", installed({"grimp": "0.1"}))  # a transitive pin
    assert check_pins(Target(cfg)).status is Status.warn


def test_ranks_that_cannot_reach_each_other_over_tcp_fail_the_mpi_check_with_that_fix(monkeypatch):
    """MPI works but the SUT's own connection does not (a firewall between nodes): the check says which addresses
    failed and that TCP must be allowed, not that MPI should be reinstalled."""
    from launch.doctor_checks import check_mpi

    refused = ("Traceback (most recent call last):\n  ...\nsut.wire.WireError: rank 1 could not reach rank 0 (node0) "
               "on TCP port 4242 at any of its addresses (10.0.0.1: Connection refused): the job's ranks must reach "
               "each other over TCP; allow it between the job's nodes\nprterun detected that one or more processes "
               "exited with non-zero status")
    monkeypatch.setattr(doctor_checks, "venv_tool", lambda name: "/usr/bin/mpirun")
    monkeypatch.setattr(doctor_checks, "run_quietly", lambda argv, timeout: (1, refused))
    result = check_mpi(Target(load(LLAMA_FP8)))
    assert result.status is Status.fail
    assert "rank 1 could not reach rank 0 (node0) on TCP port 4242" in result.found
    assert result.fix.startswith("allow TCP between the job's nodes")
