"""The hf backend as the SUT drives it: a thread, callbacks for first and final tokens, errors reported."""
from __future__ import annotations

import threading

import numpy as np

from llmkit.benchmarks import MIXTRAL_8X7B
from llmkit.config.backends import HFBackendConfig
from llmkit.config.schema import DatasetConfig, SystemConfig
from llmkit.data.sample import sample_frame
from sut.backends.base import BackendSpec, RequestBatch
from sut.backends.hf import HFBackend


def spec(artifacts, **backend) -> BackendSpec:
    return BackendSpec(HFBackendConfig(**backend), SystemConfig(name="cpu"), MIXTRAL_8X7B.name,
                       DatasetConfig(name="sample"), str(artifacts / "models" / "tiny-mixtral"))


def test_streams_first_tokens_then_finals_within_batch_limit(artifacts):
    prompts = [np.asarray(p, dtype=np.int32) for p in sample_frame(MIXTRAL_8X7B)["tok_input"]]
    requests = RequestBatch.of(prompts, 6, 2, MIXTRAL_8X7B.eos_ids, stream=True)
    firsts, finals, errors, done = {}, {}, [], threading.Event()

    def on_final(tokens):
        for rid, ids in tokens.pairs():
            assert rid in firsts, "final before first"
            finals[rid] = ids
        if len(finals) == len(requests):
            done.set()

    backend = HFBackend(spec(artifacts, max_batch_size=4, max_prefill_tokens=200))
    backend.start(lambda tokens: firsts.update(tokens.pairs()), on_final, lambda rid, m: errors.append(m))
    backend.submit(requests)
    assert done.wait(120)
    backend.stop()
    assert not errors and backend.pending() == 0
    for rid, final in finals.items():
        assert final.dtype == np.int32 and final.size == 6
        assert firsts[rid].tolist() == final[:1].tolist()


def test_engine_failure_is_reported_not_swallowed(artifacts):
    errors, done = [], threading.Event()
    backend = HFBackend(spec(artifacts))
    backend.start(lambda events: None, lambda events: None, lambda rid, m: (errors.append(m), done.set()))
    huge = np.array([MIXTRAL_8X7B.vocab_size + 5], dtype=np.int32)  # an id the embedding cannot look up
    backend.submit(RequestBatch.of([huge], 4, 2, MIXTRAL_8X7B.eos_ids))
    assert done.wait(60)
    assert "hf backend instance 0 failed" in errors[0]


def test_stop_finishes_nothing_more(artifacts):
    """stop() (Ctrl-C, a failed run) ends the engine thread after at most the step in progress: requests still
    queued or mid-answer are left unanswered rather than generated to the end."""
    prompts = [np.asarray(p, dtype=np.int32) for p in sample_frame(MIXTRAL_8X7B)["tok_input"]]
    first, finals = threading.Event(), []
    backend = HFBackend(spec(artifacts, max_batch_size=2, max_prefill_tokens=200))
    backend.start(lambda tokens: first.set(), lambda tokens: finals.extend(tokens.pairs()), lambda rid, m: None)
    backend.submit(RequestBatch.of(prompts * 4, 2000, 2000, MIXTRAL_8X7B.eos_ids, stream=True))
    assert first.wait(120)
    backend.stop()
    assert finals == [] and backend.pending() == len(prompts) * 4
