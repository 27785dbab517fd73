"""The two TensorRT-LLM backends on the test double (tests/fakes/trtllm), in this process: their answers equal the hf
backend's token for token however generation ends (the end id, an extra EOS id, a row's stop sequence, the length),
streamed or not, although TensorRT-LLM leaves the end id out of its output and keeps stop words in it."""
from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from fakes.trtllm.env import HERE as FAKE_TRTLLM
from llmkit.benchmarks import LLAMA3_1_405B
from llmkit.config.load import load
from sut.backends.base import BackendSpec, RequestBatch, TokenBatch
from test_fake_trtllm import make_engine

NEVER = LLAMA3_1_405B.vocab_size - 1  # a reserved special token the tiny model does not produce
# The tiny model repeats itself; each of the first three answers switches to a new token once (answer 2 at
# index 1, the others past MIN_NEW).
PROMPTS = [np.asarray(p, dtype=np.int32) for p in ([1234, 5678, 91011], [77, 88, 99, 1010], [5, 6, 7, 8],
                                                   [2024, 11, 999, 5])]
MAX_NEW, MIN_NEW = 12, 2


@pytest.fixture(scope="module")
def fake_trtllm():
    """The double importable in this process, removed again afterwards (other tests must not see a tensorrt_llm)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(FAKE_TRTLLM))
        yield
    for name in [m for m in sys.modules if m == "tensorrt_llm" or m.startswith("tensorrt_llm.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def hf(artifacts):
    return artifacts / "models" / "tiny-llama3"


@pytest.fixture(scope="module")
def model(hf):
    from sut.backends.hf import load_model

    return load_model(str(hf), "float32", "cpu")


def hf_answers(model, batch: RequestBatch) -> dict[int, list[int]]:
    """What the hf backend answers: the kit's ContinuousBatch, greedy."""
    from sut.backends.batching import ContinuousBatch

    running = ContinuousBatch(model, torch.device("cpu"))
    answers: dict[int, list[int]] = {}
    running.admit(batch.requests())
    while True:
        answers.update((s.request.request_id, list(s.generated)) for s in running.evict_finished())
        if not len(running):
            return answers
        running.step()


def serve(backend, batches: list[RequestBatch]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Every batch through a started backend: (first tokens, final answers) by request id."""
    firsts: dict[int, list[int]] = {}
    finals: dict[int, list[int]] = {}
    errors: list[str] = []

    def keep(into: dict[int, list[int]]):
        def take(tokens: TokenBatch) -> None:
            into.update((r, ids.tolist()) for r, ids in tokens.pairs())
        return take

    backend.start(keep(firsts), keep(finals), lambda request, message: errors.append(message))
    try:
        for batch in batches:
            backend.submit(batch)
        wanted = sum(len(b) for b in batches)
        deadline = time.monotonic() + 60
        while len(finals) < wanted and not errors and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        backend.stop()
    assert not errors and len(finals) == wanted
    return firsts, finals


def switch(answer: list[int]) -> int:
    """Where a greedy answer first changes token (so ending on that token ends it there)."""
    return next(i for i in range(1, len(answer)) if answer[i] != answer[i - 1])


def batches(model) -> list[RequestBatch]:
    """Per stream setting: a batch ended by the end id (answer 2, whose switch comes before min_new_tokens: masked
    there, as TensorRT-LLM's min_tokens masks the end id), a row's stop sequence (answer 1) or the length; one ended
    by extra EOS ids (answers 0 and 1, past min_new_tokens: TensorRT-LLM does not mask stop words below min_tokens,
    the hf backend masks every EOS id); one whose end id is answer 3's first token, masked below min_new_tokens. End
    tokens and stop sequences are taken from the greedy answers, so generation does end on them."""
    plain = hf_answers(model, RequestBatch.of(PROMPTS, MAX_NEW, MIN_NEW, (NEVER,)))
    at = [switch(plain[i]) for i in range(3)]
    assert at[0] >= MIN_NEW and at[1] >= MIN_NEW and at[2] < MIN_NEW, at  # the tiny model's answers as chosen
    stops = [None, tuple(plain[1][at[1] - 1:at[1] + 1]), None, None]
    ends = [(plain[2][at[2]],), (NEVER, plain[0][at[0]], plain[1][at[1]]), (plain[3][0],)]
    made, first_id = [], 0
    for stream in (False, True):
        for eos in ends:
            made.append(RequestBatch.of(PROMPTS, MAX_NEW, MIN_NEW, eos, stream, stops, first_id))
            first_id += len(PROMPTS)
    return made


@pytest.fixture(scope="module")
def cases(model) -> tuple[list[RequestBatch], dict[int, list[int]]]:
    """The batches, and the hf backend's answers to them by request id."""
    made = batches(model)
    return made, {r: ids for batch in made for r, ids in hf_answers(model, batch).items()}


def check(cases, firsts, finals) -> None:
    made, expected = cases
    assert finals == expected
    for batch in made:  # answers that ended on an end id end with it (TensorRT-LLM leaves it out; the kit keeps it)
        ended = [finals[r] for r in batch.request_ids.tolist() if len(finals[r]) < MAX_NEW]
        assert ended and all(ids[-1] in batch.eos_ids or ids[-2:] == list(batch.stop_sequences[1]) for ids in ended)
    assert any(len(ids) == MAX_NEW for ids in finals.values())
    streamed = [r for batch in made if batch.stream for r in batch.request_ids.tolist()]
    assert sorted(firsts) == sorted(streamed)
    assert all(firsts[r] == finals[r][:len(firsts[r])] for r in streamed)


def test_trtllm_answers_as_hf_does(fake_trtllm, cases, hf, tmp_path, monkeypatch):
    from sut.backends.trtllm import TrtllmBackend

    for name in ("MODE", "ERROR_ON", "STALL_AFTER", "DIE_AFTER"):
        monkeypatch.delenv(f"LLMKIT_FAKE_TRTLLM_{name}", raising=False)
    cfg = load(["backend=trtllm", "system=h100x8", "system.dp=1", "benchmark=llama3.1-405b", "model=tiny-llama3"])
    engine = make_engine(tmp_path, hf)
    backend = replace(cfg.backend, engine_dir=str(engine), max_batch_size=8, max_num_tokens=128,
                      kv_cache_free_gpu_memory_fraction=0.9, warmup_requests=1)
    spec = BackendSpec(backend, cfg.system, "llama3.1-405b", cfg.dataset, str(engine), devices=("cuda:0",))
    check(cases, *serve(TrtllmBackend(spec), cases[0]))


def pytorch_backend(hf, monkeypatch, warmup_requests: int):
    """A trtllm-pytorch instance over the tiny llama3 checkpoint, the double answering plainly."""
    from sut.backends.trtllm_pytorch import TrtllmPytorchBackend

    for name in ("MODE", "ERROR_ON", "STALL_AFTER", "DIE_AFTER"):
        monkeypatch.delenv(f"LLMKIT_FAKE_TRTLLM_{name}", raising=False)
    cfg = load(["backend=trtllm-pytorch", "system=h100x8", "system.dp=1", "benchmark=llama3.1-405b",
                "model=tiny-llama3"])
    backend = replace(cfg.backend, max_batch_size=8, max_num_tokens=128, kv_cache_free_gpu_memory_fraction=0.9,
                      warmup_requests=warmup_requests)
    return TrtllmPytorchBackend(BackendSpec(backend, cfg.system, "llama3.1-405b", cfg.dataset, str(hf),
                                            devices=("cuda:0",)))


def test_trtllm_pytorch_answers_as_hf_does(fake_trtllm, cases, hf, monkeypatch):
    check(cases, *serve(pytorch_backend(hf, monkeypatch, warmup_requests=1), cases[0]))


def test_trtllm_pytorch_reports_a_failing_delivery_loop_instead_of_going_quiet(fake_trtllm, hf, monkeypatch):
    """The loop that hands answers over and watches for a stall is the instance's only voice: when it fails (here
    LLM.get_stats raises), the SUT hears of it as the instance's error, rather than waiting for answers forever."""
    instance = pytorch_backend(hf, monkeypatch, warmup_requests=0)
    errors: list[tuple[int | None, str]] = []
    instance.start(lambda tokens: None, lambda tokens: None, lambda request, message: errors.append((request, message)))
    try:
        def broken(timeout: float):
            raise RuntimeError("the stats queue is gone")

        monkeypatch.setattr(instance._llm, "get_stats", broken)
        instance.submit(RequestBatch.of(PROMPTS[:1], MAX_NEW, MIN_NEW, (NEVER,)))
        deadline = time.monotonic() + 30
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        instance.stop()
    assert errors == [(None, "trtllm-pytorch instance 0 failed: RuntimeError: the stats queue is gone")]
