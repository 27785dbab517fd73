"""The precision/ recipes as nvidia-modelopt post-training quantization: fake-quantized modules, calibrated in place.

modelopt is imported lazily, when a recipe runs (here), and by the quality gate (quality.py: its quantizers
switched off for the baseline) and the export (export.py).
"""
from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterable

from llmkit.config.precisions import AutoquantConfig, awq_block_size
from llmkit.config.schema import KVCacheFormat, PrecisionConfig, PrecisionName
from llmkit.errors import UserError

log = logging.getLogger(__name__)

MODELOPT_CONFIGS = {
    PrecisionName.fp8: "FP8_DEFAULT_CFG",
    PrecisionName.int8_sq: "INT8_SMOOTHQUANT_CFG",
    PrecisionName.w4a8_awq: "W4A8_AWQ_BETA_CFG",
    PrecisionName.nvfp4: "NVFP4_DEFAULT_CFG",
}
KV_CACHE_CONFIGS = {KVCacheFormat.fp8: "FP8_KV_CFG"}
DISABLE_ALL = [{"quantizer_name": "*", "enable": False}]


def _set_block_size(entries, block: int) -> None:
    """Every block-quantized weight format in a modelopt quant_cfg takes `block` input channels per scale."""
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict):
            if "block_sizes" in entry and -1 in entry["block_sizes"]:
                entry["block_sizes"][-1] = block
            for value in entry.values():
                if isinstance(value, (list, dict)):
                    _set_block_size(value, block)


def _kv_cache_entries(precision: PrecisionConfig) -> list[dict]:
    import modelopt.torch.quantization as mtq

    if precision.kv_cache is KVCacheFormat.none:
        return []
    return copy.deepcopy(getattr(mtq, KV_CACHE_CONFIGS[precision.kv_cache])["quant_cfg"])


def modelopt_config(name: PrecisionName, precision: PrecisionConfig, with_kv_cache: bool = True) -> dict:
    """modelopt's config for one format, with the recipe's block size, exclusions and (optionally) KV cache."""
    import modelopt.torch.quantization as mtq

    config = copy.deepcopy(getattr(mtq, MODELOPT_CONFIGS[name]))
    if name is PrecisionName.w4a8_awq:
        _set_block_size(config["quant_cfg"], awq_block_size(precision))
    config["quant_cfg"] = [*config["quant_cfg"], *({"quantizer_name": p, "enable": False} for p in precision.exclude)]
    if with_kv_cache:
        config["quant_cfg"] += _kv_cache_entries(precision)
    return config


def check_autoquant_budget(precision: PrecisionConfig) -> None:
    """precision.effective_bits at or above the most aggressive search format's own bits, as modelopt's search
    asserts after the model is loaded and scored: refused before any of that work."""
    if not isinstance(precision, AutoquantConfig) or not precision.search_formats:
        return
    from modelopt.torch.quantization.algorithms import QuantRecipe

    bits = {fmt.value: QuantRecipe(modelopt_config(fmt, precision, with_kv_cache=False), name=fmt.value).num_bits
            for fmt in precision.search_formats}
    lowest = min(bits, key=lambda name: bits[name])
    if precision.effective_bits is not None and precision.effective_bits < bits[lowest]:
        raise UserError(f"precision.effective_bits={precision.effective_bits} is below the {bits[lowest]} bits of the "
                        f"most compressed format searched ({lowest}); raise precision.effective_bits to "
                        f"{bits[lowest]} or more, or search a smaller format (precision.search_formats)")


def quantize_model(model, precision: PrecisionConfig, batches: list[dict], score_batches: int,
                   forward_loop: Callable[[object, Iterable[dict], str], None]) -> dict:
    """Quantize `model` in place with the recipe; return what the manifest records about it.

    `forward_loop(model, batches, description)` runs the calibration batches through the model with a progress bar.
    """
    import modelopt.torch.quantization as mtq

    def loop(description: str):
        return lambda m: forward_loop(m, batches, description)

    if not isinstance(precision, AutoquantConfig):
        config = modelopt_config(precision.name, precision)
        mtq.quantize(model, config, forward_loop=loop(f"calibrating {precision.name.value}"))
        return {"algorithm": str(config.get("algorithm"))}

    formats = [modelopt_config(f, precision, with_kv_cache=False) for f in precision.search_formats]
    # The search scores formats by the loss's gradient: the prompts are their own labels (padding ignored).
    scored = [{**batch, "labels": batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)}
              for batch in batches]
    try:
        _, state = mtq.auto_quantize(
            model, constraints={"effective_bits": precision.effective_bits}, quantization_formats=formats,
            data_loader=scored, forward_step=lambda m, batch: m(**batch), loss_func=lambda output, batch: output.loss,
            disabled_layers=list(precision.exclude), num_calib_steps=len(batches),
            num_score_steps=min(score_batches, len(batches)), method="gradient",
        )
    except ValueError as error:
        minimum = re.search(r"minimum achievable effective bits is ([0-9]+(?:\.[0-9]+)?)", str(error))
        if minimum is None:
            raise
        raise UserError(f"precision.effective_bits={precision.effective_bits} is below what this model can reach "
                        f"({float(minimum.group(1)):.2f}: its excluded layers stay at 16 bits); raise "
                        "precision.effective_bits or add formats to precision.search_formats") from None
    best = state["best"]
    kv_entries = _kv_cache_entries(precision)
    if kv_entries:
        # The search leaves the K/V outputs unquantized: set them to the KV format and calibrate only them in a
        # second pass, with every other quantizer as the search left it.
        mtq.set_quantizer_by_cfg(model, quant_cfg=kv_entries)
        with mtq.set_quantizer_by_cfg_context(model, DISABLE_ALL + kv_entries):
            mtq.calibrate(model, algorithm="max", forward_loop=loop("calibrating the KV cache"))
    # modelopt names the formats it was given as dicts CUSTOM_<i>, in order, and "NONE" for unquantized.
    names = {f"CUSTOM_{i}": fmt.value for i, fmt in enumerate(precision.search_formats)} | {"NONE": "unquantized"}
    layers = {name.removesuffix(".quant_recipe"): names.get(str(recipe).split("(")[0], str(recipe).split("(")[0])
              for name, recipe in best["recipe"].items()}
    chosen: dict[str, int] = {}
    for recipe in layers.values():
        chosen[recipe] = chosen.get(recipe, 0) + 1
    return {"effective_bits": round(float(best["constraints"]["effective_bits"]), 4),
            "constraint_satisfied": bool(best["is_satisfied"]), "layer_formats": layers, "format_counts": chosen}
