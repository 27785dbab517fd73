"""The quick quality gate: the fake-quantized model against the unquantized one on calibration prompts.

Both runs use the same model object: modelopt's quantizers are switched off for the baseline, so no second copy of
the weights is needed. Each prompt is teacher-forced and every position compared: the relative L2 error of the
logits, the largest absolute logit error, and how often the greedy next token agrees.
"""
from __future__ import annotations

from tqdm import tqdm


def quality_figures(model, batches: list[dict]) -> dict:
    import modelopt.torch.quantization as mtq
    import torch

    from quantize.recipes import DISABLE_ALL

    squared_error = squared_reference = 0.0
    max_abs = 0.0
    agree = positions = 0
    with torch.no_grad():
        for batch in tqdm(batches, desc="quality gate", unit="batch", leave=False):
            quantized = model(**batch).logits.float()
            with mtq.set_quantizer_by_cfg_context(model, DISABLE_ALL):
                reference = model(**batch).logits.float()
            mask = batch["attention_mask"].bool()
            quantized, reference = quantized[mask], reference[mask]
            difference = quantized - reference
            squared_error += float(difference.square().sum())
            squared_reference += float(reference.square().sum())
            max_abs = max(max_abs, float(difference.abs().max()))
            agree += int((quantized.argmax(-1) == reference.argmax(-1)).sum())
            positions += int(mask.sum())
    return {
        "positions": positions,
        "greedy_agreement": round(agree / positions, 6),
        "logits_relative_error": round((squared_error / max(squared_reference, 1e-30)) ** 0.5, 6),
        "logits_max_abs_error": round(max_abs, 6),
    }
