"""Write the quantized model as a TensorRT-LLM checkpoint sharded for TP x PP (and, on request, a unified HF one).

A TensorRT-LLM checkpoint is config.json (architecture, dtype, quantization, mapping) plus rank<i>.safetensors per
rank; each rank holds its TP slice of its PP stage's layers.
"""
from __future__ import annotations

import json
import shutil
import struct
import warnings
from collections import Counter
from pathlib import Path

from llmkit.config.schema import DType
from llmkit.models.shape import DECODER_TYPE, ModelShape

TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json", "original")
HF_SUBDIR = "hf"
TOKENIZER_SUBDIR = "tokenizer"


def _torch_dtype(dtype: DType):
    import torch

    return getattr(torch, dtype.value)


def export_trtllm(model, shape: ModelShape, dtype: DType, directory: Path, tp: int, pp: int) -> dict:
    from modelopt.torch.export import export_tensorrt_llm_checkpoint

    with warnings.catch_warnings():
        # modelopt falls back to writing config.json itself when tensorrt_llm is not importable, as here.
        warnings.filterwarnings("ignore", message="Cannot export tensorrt_llm checkpoint config")
        export_tensorrt_llm_checkpoint(model, decoder_type=DECODER_TYPE[shape.architecture],
                                       dtype=_torch_dtype(dtype), export_dir=str(directory),
                                       inference_tensor_parallel=tp, inference_pipeline_parallel=pp)
    return describe_trtllm_checkpoint(directory)


def export_hf(model, dtype: DType, directory: Path) -> None:
    from modelopt.torch.export import export_hf_checkpoint

    export_hf_checkpoint(model, dtype=_torch_dtype(dtype), export_dir=str(directory))


def copy_tokenizer(checkpoint: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        source = checkpoint / name
        if source.is_dir():
            shutil.copytree(source, directory / name)
        elif source.is_file():
            shutil.copy2(source, directory / name)


def safetensors_header(path: Path) -> dict:
    """The tensor table of a .safetensors file (name -> dtype, shape, offsets), read without loading tensors."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header


def describe_trtllm_checkpoint(directory: Path) -> dict:
    """What the manifest records about the shards; raises when a rank file is missing."""
    config = json.loads((directory / "config.json").read_text())
    mapping = config["mapping"]
    ranks = []
    for rank in range(int(mapping["world_size"])):
        path = directory / f"rank{rank}.safetensors"
        if not path.is_file():
            raise RuntimeError(f"the export wrote no {path.name} for rank {rank} of {mapping['world_size']}")
        header = safetensors_header(path)
        dtypes = Counter(entry["dtype"] for entry in header.values())
        ranks.append({"file": path.name, "tensors": len(header), "bytes": path.stat().st_size, "dtypes": dict(dtypes)})
    quantization = config.get("quantization") or {}
    return {
        "trtllm_config": {"architecture": config.get("architecture"), "dtype": config.get("dtype"),
                          "quant_algo": quantization.get("quant_algo"),
                          "kv_cache_quant_algo": quantization.get("kv_cache_quant_algo"), "mapping": mapping},
        "ranks": ranks,
        "checkpoint_bytes": sum(r["bytes"] for r in ranks),
    }
