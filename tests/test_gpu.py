"""GPU-only checks (marked `gpu`; skipped on machines without CUDA)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from llmkit.benchmarks import MIXTRAL_8X7B
from llmkit.data.sample import sample_frame
from sut.backends.base import GenerationRequest
from sut.backends.batching import ContinuousBatch
from sut.backends.hf import load_model

pytestmark = pytest.mark.gpu


def test_hf_backend_on_cuda_matches_generate(artifacts):
    model = load_model(str(artifacts / "models" / "tiny-mixtral"), "float32", "cuda")
    prompts = [np.asarray(p, dtype=np.int32) for p in sample_frame(MIXTRAL_8X7B)["tok_input"][:4]]
    batch, done = ContinuousBatch(model, torch.device("cuda")), {}
    batch.admit([GenerationRequest(i, p, 16, 2, MIXTRAL_8X7B.eos_ids) for i, p in enumerate(prompts)])
    while len(batch):
        batch.step()
        done.update({s.request.request_id: s.generated for s in batch.evict_finished()})
    for i, prompt in enumerate(prompts):
        ids = torch.tensor(prompt[None].astype("int64"), device="cuda")
        out = model.generate(ids, max_new_tokens=16, min_new_tokens=2, do_sample=False,
                             eos_token_id=list(MIXTRAL_8X7B.eos_ids), pad_token_id=0)
        assert done[i] == out[0, prompt.size:].tolist()
