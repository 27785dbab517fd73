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


def test_nvfp4_quantizes_on_cuda(artifacts, tmp_path):
    """The NVFP4 recipe (calibration needs CUDA): packed FP4 weights with FP8 block scales, sharded for TP=2."""
    import json

    from llmkit.config.load import load
    from quantize.export import safetensors_header
    from quantize.stage import quantize

    cfg = load([f"artifacts_root={tmp_path}", "benchmark=llama3.1-405b", "model=tiny-llama3",
                f"model.path={artifacts / 'models' / 'tiny-llama3'}", "precision=nvfp4", "system.tp=2",
                "calibration.num_samples=4", "calibration.max_length=32", "quantize.min_greedy_agreement=0.5"],
               serving=False)
    path = quantize(cfg)
    config = json.loads((path / "config.json").read_text())
    assert config["quantization"]["quant_algo"] == "NVFP4" and config["mapping"]["tp_size"] == 2
    tensors = safetensors_header(path / "rank0.safetensors")
    qkv = "transformer.layers.0.attention.qkv"
    assert tensors[f"{qkv}.weight"]["dtype"] == "U8"  # two FP4 values per byte
    assert tensors[f"{qkv}.weights_scaling_factor"]["dtype"] == "F8_E4M3"  # one scale per block of 16
    assert json.loads((path / "manifest.json").read_text())["inputs"]["device"] == "cuda"
