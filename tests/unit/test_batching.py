"""The hf backend's continuous batching decodes exactly as transformers' own greedy generate does."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B
from llmkit.data.sample import sample_frame
from sut.backends.base import GenerationRequest
from sut.backends.batching import ContinuousBatch
from sut.backends.hf import load_model

MAX_NEW = 24


@pytest.fixture(scope="module", params=[MIXTRAL_8X7B, LLAMA3_1_405B], ids=lambda b: b.name)
def setup(request, artifacts):
    benchmark = request.param
    name = "tiny-mixtral" if benchmark is MIXTRAL_8X7B else "tiny-llama3"
    model = load_model(str(artifacts / "models" / name), "float32", "cpu")
    prompts = [np.asarray(p, dtype=np.int32) for p in sample_frame(benchmark)["tok_input"][:6]]
    return benchmark, model, prompts


def reference(model, prompt, max_new, eos_ids, min_new=2):
    out = model.generate(
        torch.tensor(prompt[None].astype("int64")), max_new_tokens=max_new, min_new_tokens=min_new,
        do_sample=False, eos_token_id=list(eos_ids), pad_token_id=0,
    )
    return out[0, prompt.size:].tolist()


def drain(batch: ContinuousBatch, done: dict) -> None:
    while len(batch):
        batch.step()
        for sequence in batch.evict_finished():
            done[sequence.request.request_id] = sequence.generated


def test_staggered_arrivals_match_generate(setup):
    benchmark, model, prompts = setup
    requests = [GenerationRequest(i, p, MAX_NEW - i, 2, benchmark.eos_ids) for i, p in enumerate(prompts)]
    batch, done = ContinuousBatch(model, torch.device("cpu")), {}
    batch.admit(requests[:2])
    for _ in range(4):
        batch.step()
    batch.admit(requests[2:4])
    batch.step()
    batch.admit(requests[4:])
    drain(batch, done)
    for i, prompt in enumerate(prompts):
        assert done[i] == reference(model, prompt, MAX_NEW - i, benchmark.eos_ids)
        assert len(done[i]) == MAX_NEW - i


def test_eos_ends_a_sequence_but_not_before_min_new_tokens(setup):
    benchmark, model, prompts = setup
    plain = reference(model, prompts[0], MAX_NEW, benchmark.eos_ids)
    # Pretend the model's own first token is EOS: min_new_tokens=2 must mask it at step one.
    eos = (plain[0],)
    expected = reference(model, prompts[0], MAX_NEW, eos, min_new=2)
    batch, done = ContinuousBatch(model, torch.device("cpu")), {}
    batch.admit([GenerationRequest(0, prompts[0], MAX_NEW, 2, eos)])
    drain(batch, done)
    assert done[0] == expected
    assert done[0][0] != plain[0]


def test_stop_sequence_ends_generation_and_is_kept(setup):
    benchmark, model, prompts = setup
    plain = reference(model, prompts[1], MAX_NEW, benchmark.eos_ids)
    stop = tuple(plain[4:6])
    first_match = next(i for i in range(len(plain) - 1) if tuple(plain[i:i + 2]) == stop)
    batch, done = ContinuousBatch(model, torch.device("cpu")), {}
    batch.admit([GenerationRequest(0, prompts[1], MAX_NEW, 2, benchmark.eos_ids, stop_sequence=stop)])
    drain(batch, done)
    assert done[0] == plain[: first_match + 2]
    assert tuple(done[0][-2:]) == stop


def test_batch_shrinks_to_live_columns(setup):
    benchmark, model, prompts = setup
    long_first = sorted(range(len(prompts)), key=lambda i: -prompts[i].size)
    requests = [GenerationRequest(i, prompts[i], 3 if i == long_first[0] else 8, 2, benchmark.eos_ids)
                for i in long_first[:3]]
    batch = ContinuousBatch(model, torch.device("cpu"))
    batch.admit(requests)
    width_before = batch.mask.shape[1]
    for _ in range(2):
        batch.step()
    batch.evict_finished()
    assert len(batch) == 2
    assert batch.mask.shape[1] < width_before + 2
    assert bool((batch.mask.sum(dim=0) > 0).all())
