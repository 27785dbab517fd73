"""The TensorRT-LLM backends without TensorRT-LLM: their configs, and every refusal made before anything starts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from llmkit.config.backends import TrtllmBackendConfig, TrtllmPlacement, TrtllmPytorchBackendConfig
from llmkit.config.load import load
from llmkit.errors import UserError


def test_both_backends_compose_by_name():
    cfg = load(["backend=trtllm", "system=h100x8"])
    assert isinstance(cfg.backend, TrtllmBackendConfig) and cfg.backend.placement is TrtllmPlacement.orchestrator
    assert cfg.backend.max_batch_size is None and cfg.backend.kv_cache_free_gpu_memory_fraction is None
    cfg = load(["backend=trtllm-pytorch", "system=h100x8", "backend.max_num_tokens=4096"])
    assert isinstance(cfg.backend, TrtllmPytorchBackendConfig) and cfg.backend.max_num_tokens == 4096


@pytest.mark.parametrize("overrides, expected", [
    (["backend=trtllm", "system=h100x8", "backend.kv_cache_free_gpu_memory_fraction=1.0"], "strictly between 0 and 1"),
    (["backend=trtllm-pytorch", "system=h100x8", "backend.kv_cache_free_gpu_memory_fraction=0"],
     "strictly between 0 and 1"),
    (["backend=trtllm", "system=h100x8", "backend.max_num_tokens=0"], "backend.max_num_tokens must be at least 1"),
    (["backend=trtllm", "system=h100x8", "backend.poll_ms=0"], "backend.poll_ms must be positive"),
    (["backend=trtllm", "system=h100x8", "backend.warmup_requests=-1"], "backend.warmup_requests must be 0"),
    (["backend=trtllm", "system=h100x8", "backend.stall_timeout_s=0"], "backend.stall_timeout_s must be positive"),
    (["backend=trtllm"], "runs on NVIDIA GPUs but system=cpu has none"),
    (["backend=trtllm", "system=gb200-nvl72"], "set backend.placement=leader"),
    (["backend=trtllm-pytorch", "system=gb200-nvl72"], "use backend=trtllm with backend.placement=leader"),
    (["backend=trtllm-pytorch", "system=h100x8", "backend.placement=leader"], "is a setting of backend=trtllm"),
    (["backend=trtllm", "system=h100x8", "backend.placement=everywhere"], "placement"),
    (["backend.max_batch_size=null"], "backend=hf needs a number for backend.max_batch_size"),
])
def test_bad_settings_are_one_sentence(overrides, expected):
    with pytest.raises(UserError) as caught:
        load(overrides)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("backend", ["trtllm", "trtllm-pytorch"])
def test_missing_tensorrt_llm_stops_the_run_in_one_sentence(backend, tmp_path):
    done = run_cli("llmkit", "run", f"backend={backend}", "system=h100x8", f"output_dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("llmkit: error:")]
    assert len(errors) == 1 and "no tensorrt_llm package" in errors[0]
    assert "nvcr.io/nvidia/tensorrt-llm/release:1.2.1" in errors[0]
    assert not (tmp_path / "run").exists()


def _engine(root: Path, key: str, **manifest) -> Path:
    directory = root / "engines" / key
    directory.mkdir(parents=True)
    base = {"kind": "engines", "system": "h100x8", "benchmark": "mixtral-8x7b", "scenario": "Offline",
            "precision": "autoquant", "mapping": {"tp_size": 1, "pp_size": 1, "world_size": 1},
            "build_config": {"max_batch_size": 896, "max_num_tokens": 8192, "max_seq_len": 3072},
            "toolchain": {"sm": 90, "gpu_name": "H100", "trtllm_version": "1.2.1", "tensorrt_version": "10.14.1"},
            "ranks": []}
    (directory / "manifest.json").write_text(json.dumps({**base, **manifest}))
    return directory


def test_the_newest_matching_engine_is_chosen_and_a_missing_one_is_one_sentence(tmp_path):
    import os

    from llmkit.benchmarks import get_benchmark
    from sut.backends.trtllm import find_engine

    cfg = load(["backend=trtllm", "system=h100x8", f"artifacts_root={tmp_path}"])
    benchmark = get_benchmark(cfg.benchmark.name)
    with pytest.raises(UserError, match="run llmkit build with the same overrides"):
        find_engine(cfg, benchmark)
    older = _engine(tmp_path, "a")
    newer = _engine(tmp_path, "b")
    _engine(tmp_path, "c", precision="fp8")
    _engine(tmp_path, "d", mapping={"tp_size": 2, "pp_size": 1, "world_size": 2})
    _engine(tmp_path, "e", benchmark="llama3.1-405b")
    os.utime(older / "manifest.json", (1, 1))
    assert find_engine(cfg, benchmark) == newer
    cfg.backend.engine_dir = str(older)
    assert find_engine(cfg, benchmark) == older


def test_runtime_settings_come_from_the_user_then_the_entry():
    from llmkit.config.systems import DEFAULT_KV_FRACTION
    from sut.backends.trtllm_common import runtime_settings

    cfg = load(["backend=trtllm", "system=h100x8", "benchmark=llama3.1-405b", "model=tiny-llama3",
                "scenario=server"])
    runtime = runtime_settings(cfg)
    assert (runtime.max_batch_size, runtime.max_num_tokens, runtime.kv_fraction) == (64, 2560, 0.9)
    cfg = load(["backend=trtllm", "system=h100x8", "backend.max_batch_size=8",
                "backend.kv_cache_free_gpu_memory_fraction=0.5"])
    runtime = runtime_settings(cfg)
    assert (runtime.max_batch_size, runtime.kv_fraction) == (8, 0.5)
    cfg = load(["backend=trtllm-pytorch", "system=h100x8", "benchmark=llama3.1-405b", "model=tiny-llama3",
                "scenario=interactive"])
    assert runtime_settings(cfg).kv_fraction == DEFAULT_KV_FRACTION


def test_a_runtime_batch_above_the_engine_is_refused(tmp_path):
    from build_engines.engine import EngineNeeds, check_engine

    engine = _engine(tmp_path, "a")
    needs = EngineNeeds(sm=90, trtllm_version="1.2.1", tensorrt_version="10.14.1", tp=1, pp=1, max_seq_len=3072,
                        max_batch_size=1024, max_num_tokens=8192)
    with pytest.raises(UserError, match="built for batches of 896 but the run asks for 1024"):
        check_engine(engine, needs)


def test_stop_sequences_cut_the_answer_after_their_first_occurrence():
    from sut.backends.trtllm_common import cut_after

    assert list(cut_after([5, 1, 2, 3, 1, 2, 3], [1, 2, 3])) == [5, 1, 2, 3]
    assert list(cut_after([5, 6], [1, 2])) == [5, 6]


def test_the_adapter_benchmark_hands_over_every_first_token_and_final_answer_of_its_bursts():
    """The adapter benchmark drives the real poller: each burst's new requests get their first token, and each final
    response its answer, no more and no fewer."""
    from bench.trtllm_adapter import bursts, measure

    made, _ = bursts(10, 3)  # the bursts measure makes (the same seed)
    figures = measure(load=10, iterations=3)
    assert figures["firsts"] == sum(min(firsts, len(burst)) for burst, firsts in made) > 0
    assert figures["finals"] == sum(r.result.is_final for burst, _ in made for r in burst) > 0


def test_first_tokens_are_handed_over_before_the_mid_answer_responses_are_read():
    """A poll's first tokens reach the SUT before the poller reads the rest of the poll, even when the rest comes
    first: the order of events (each read of a response's result, each delivery) proves it."""
    from bench.trtllm_adapter import FinishReason, _backend, _Result
    from sut.backends.trtllm_common import Deliveries

    backend, _ = _backend()
    events: list[tuple[str, list[int]]] = []

    class Response:  # notes when the poller reads its result
        def __init__(self, executor_id: int, final: bool = False):
            self.request_id = executor_id
            self._result = _Result(final, [[executor_id]], [FinishReason.LENGTH if final else
                                                           FinishReason.NOT_FINISHED])

        def has_error(self) -> bool:
            return False

        @property
        def result(self) -> _Result:
            events.append(("read", [self.request_id]))
            return self._result

    backend._deliveries = Deliveries(lambda batch: events.append(("first", sorted(r for r, _ in batch.pairs()))),
                                     lambda batch: events.append(("final", sorted(r for r, _ in batch.pairs()))),
                                     lambda *error: events.append(("error", [])), "test")
    for executor_id in range(1, 7):  # 1-4 mid-answer (4 ends now), 5-6 awaiting their first token
        backend._ids[executor_id] = (executor_id, 2)
        backend._streamed[executor_id] = [] if executor_id > 4 else [7]
    backend._awaiting_first.update((5, 6))
    backend._pending = 6

    backend._take([Response(1), Response(2), Response(3), Response(4, final=True), Response(5), Response(6)])
    delivered = events.index(("first", [5, 6]))
    reads_of_the_rest = [i for i, (kind, ids) in enumerate(events) if kind == "read" and ids[0] <= 4]
    assert reads_of_the_rest and delivered < min(reads_of_the_rest)
    assert events[-1] == ("final", [4]) and [e for e in events if e[0] == "first"] == [("first", [5, 6])]


def test_several_responses_of_a_request_in_one_poll_give_one_first_token_and_the_whole_answer():
    """A poll may hold several responses of one request (the engine answered it again since the last poll): its
    first token goes once, ahead of the answers, and its final answer has every token. A request whose ids were
    registered after the poll looked for first tokens still gets its first token."""
    from bench.trtllm_adapter import FinishReason, _backend, _Response, _Result
    from sut.backends.trtllm_common import Deliveries

    backend, _ = _backend()
    got: list[tuple[str, list]] = []
    backend._deliveries = Deliveries(
        lambda batch: got.append(("first", [(r, t.tolist()) for r, t in batch.pairs()])),
        lambda batch: got.append(("final", [(r, t.tolist()) for r, t in batch.pairs()])),
        lambda request_id, message: got.append(("error", [(request_id, message)])), "test")
    for executor_id, request_id in ((1, 10), (2, 20)):
        backend._ids[executor_id] = (request_id, 2)
        backend._streamed[executor_id] = []
    backend._awaiting_first.update((1, 2))
    backend._pending = 2

    def response(executor_id: int, token: int, final: bool = False) -> _Response:
        return _Response(executor_id, _Result(final, [[token]], [FinishReason.LENGTH if final else
                                                                 FinishReason.NOT_FINISHED]))

    backend._take([response(1, 5), response(1, 6), response(1, 8, final=True)])
    assert got == [("first", [(10, [5])]), ("final", [(10, [5, 6, 8])])]
    got.clear()
    backend._take_all([response(2, 7), response(2, 9)])  # as if request 2 was registered after _take looked
    assert got == [("first", [(20, [7])])]
    assert backend._awaiting_first == set() and backend._streamed == {2: [7, 9]} and backend.pending() == 1
