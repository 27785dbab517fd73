"""What a checkpoint's config.json says about its size and how it can be split, read before any weight is loaded.

The quantize stage checks a recipe and a TP x PP topology against this shape (and sizes its memory preflight from
it) so a bad choice stops in a second, not after an hour of calibration.
"""
from __future__ import annotations

from llmkit.config.precisions import AutoquantConfig, awq_block_size, recipe_formats
from llmkit.config.schema import PrecisionConfig, PrecisionName
from llmkit.errors import UserError
from llmkit.models.checkpoint import CheckpointInfo, read_config_json
from llmkit.models.dims import ModelShape

MOE_ARCHITECTURES = ("MixtralForCausalLM",)
# modelopt 0.47 exports these as TensorRT-LLM checkpoints with decoder_type="llama" (Mixtral is a Llama with MoE MLPs).
DECODER_TYPE = {"LlamaForCausalLM": "llama", "MixtralForCausalLM": "llama"}


def _positive_int(config: dict, key: str, source: str, default: int | None = None) -> int:
    value = config.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{source} has {key}={value!r} where a positive integer belongs; restore the checkpoint's "
                        "config.json")
    return value


def read_shape(checkpoint: CheckpointInfo) -> ModelShape:
    config = read_config_json(checkpoint.path)
    source = f"{checkpoint.path}/config.json"
    heads = _positive_int(config, "num_attention_heads", source)
    hidden = _positive_int(config, "hidden_size", source)
    return ModelShape(
        architecture=checkpoint.architecture, vocab_size=_positive_int(config, "vocab_size", source),
        hidden_size=hidden, intermediate_size=_positive_int(config, "intermediate_size", source),
        num_layers=_positive_int(config, "num_hidden_layers", source), num_heads=heads,
        num_kv_heads=_positive_int(config, "num_key_value_heads", source, default=heads),
        head_dim=_positive_int(config, "head_dim", source, default=hidden // heads),
        num_experts=_positive_int(config, "num_local_experts", source, default=0),
        experts_per_token=_positive_int(config, "num_experts_per_tok", source, default=0),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def check_topology(shape: ModelShape, tp: int, pp: int) -> None:
    """TensorRT-LLM splits heads, KV heads and (expert) FFN widths over TP ranks and whole layers over PP ranks."""
    where = f"system.tp={tp}"
    if shape.num_heads % tp:
        raise UserError(f"{where} does not divide the {shape.num_heads} attention heads; choose a tp that divides it")
    if shape.num_kv_heads % tp and tp % shape.num_kv_heads:
        raise UserError(f"{where} neither divides nor is a multiple of the {shape.num_kv_heads} KV heads; choose a "
                        "tp that divides it")
    if shape.intermediate_size % tp:
        ffn = "each expert's FFN width" if shape.is_moe else "the FFN width"
        raise UserError(f"{where} does not divide {ffn} ({shape.intermediate_size}); choose a tp that divides it")
    if shape.num_layers % pp:
        raise UserError(f"system.pp={pp} does not divide the {shape.num_layers} layers; choose a pp that divides it")


def check_recipe(shape: ModelShape, precision: PrecisionConfig, tp: int) -> None:
    formats = recipe_formats(precision)
    if PrecisionName.int8_sq in formats and shape.is_moe:
        raise UserError(f"precision=int8_sq cannot quantize {shape.architecture}: modelopt 0.47 has no SmoothQuant "
                        "export for MoE experts; use precision=fp8 or precision=autoquant")
    block = awq_block_size(precision)
    if block is not None:
        # Column-parallel layers (qkv, gate/up) read the whole hidden state; row-parallel ones (the attention
        # output, down) read their TP slice.
        widths = {"hidden size": (shape.hidden_size, 1), "FFN width": (shape.intermediate_size, tp),
                  "attention width": (shape.num_heads * shape.head_dim, tp)}
        fix = "a smaller tp or awq_block_size=64" if block != 64 else "a smaller tp or another precision"
        for what, (width, split) in widths.items():
            if width % split or (width // split) % block:
                shown = f"{width} / tp {tp}" if split > 1 else str(width)
                raise UserError(f"w4a8_awq needs each TP rank's input width to be a multiple of "
                                f"precision.awq_block_size={block}, but the {what} {shown} is not; use {fix}")


def weight_bits(precision: PrecisionConfig) -> float:
    """Bits per quantized linear weight as stored (scales included), for sizing memory."""
    if isinstance(precision, AutoquantConfig):
        return float(precision.effective_bits or 16.0)
    block = awq_block_size(precision)
    bits = {PrecisionName.bf16: 16.0, PrecisionName.fp8: 8.0, PrecisionName.int8_sq: 8.0,
            PrecisionName.w4a8_awq: 4.0 + 32.0 / (block or 128), PrecisionName.nvfp4: 4.5}
    return bits[precision.name]
