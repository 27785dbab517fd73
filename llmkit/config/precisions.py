"""One schema per quantization recipe, stored in Hydra's ConfigStore under group "precision" as `<name>_schema`;
conf/precision/<name>.yaml names it and states only what differs. A setting of another recipe is an unknown key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from llmkit.config.schema import KVCacheFormat, PrecisionConfig, PrecisionName


@dataclass
class Bf16Config(PrecisionConfig):
    """The checkpoint as it is: exported unquantized (in quantize.export_dtype) for the configured TP x PP."""

    name: PrecisionName = PrecisionName.bf16


@dataclass
class Fp8Config(PrecisionConfig):
    """FP8 E4M3 weights and activations with per-tensor scales, and an FP8 KV cache (the published Hopper recipe)."""

    name: PrecisionName = PrecisionName.fp8
    kv_cache: KVCacheFormat = KVCacheFormat.fp8


@dataclass
class Int8SqConfig(PrecisionConfig):
    """INT8 weights (per channel) and activations (per tensor) after SmoothQuant; dense models only."""

    name: PrecisionName = PrecisionName.int8_sq


@dataclass
class W4A8AwqConfig(PrecisionConfig):
    """INT4 weights in blocks of awq_block_size input channels, scaled by AWQ, with FP8 activations."""

    name: PrecisionName = PrecisionName.w4a8_awq
    # INT4 weights share a scale per block of this many input channels (TensorRT-LLM: 64 or 128).
    awq_block_size: int = 128


@dataclass
class Nvfp4Config(PrecisionConfig):
    """NVFP4 weights and activations and an FP8 KV cache (Blackwell); modelopt needs a CUDA GPU to calibrate it."""

    name: PrecisionName = PrecisionName.nvfp4
    kv_cache: KVCacheFormat = KVCacheFormat.fp8


@dataclass
class AutoquantConfig(PrecisionConfig):
    """modelopt AutoQuantize: per layer, the best of `search_formats` or none, within a mean-bits budget."""

    name: PrecisionName = PrecisionName.autoquant
    # The mean bits per weight the search must meet.
    effective_bits: Optional[float] = None
    # The formats the search may give a layer (besides leaving it unquantized).
    search_formats: list[PrecisionName] = field(default_factory=lambda: [PrecisionName.fp8])
    # When w4a8_awq is searched: its INT4 block size.
    awq_block_size: int = 128


PRECISIONS: dict[PrecisionName, type[PrecisionConfig]] = {
    PrecisionName.bf16: Bf16Config, PrecisionName.fp8: Fp8Config, PrecisionName.int8_sq: Int8SqConfig,
    PrecisionName.w4a8_awq: W4A8AwqConfig, PrecisionName.nvfp4: Nvfp4Config, PrecisionName.autoquant: AutoquantConfig,
}

for _name, _schema in PRECISIONS.items():
    ConfigStore.instance().store(group="precision", name=f"{_name.value}_schema", node=_schema)


def recipe_formats(precision: PrecisionConfig) -> set[PrecisionName]:
    """The formats a recipe may put on a layer."""
    if isinstance(precision, AutoquantConfig):
        return set(precision.search_formats)
    return {precision.name}


def awq_block_size(precision: PrecisionConfig) -> int | None:
    """The INT4 block size when the recipe may use w4a8_awq, else None."""
    if isinstance(precision, (W4A8AwqConfig, AutoquantConfig)) and PrecisionName.w4a8_awq in recipe_formats(precision):
        return precision.awq_block_size
    return None
