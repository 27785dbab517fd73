"""The memory preflight: what quantizing this model at this precision needs, printed before anything is loaded or
written.

Estimates from the checkpoint's shape (no weights are read):
- weights: every parameter in the load dtype, on the GPU(s) when calibrating there, else in host RAM;
- activations: the larger of one calibration batch at the longest prompt (the logits included: the largest tensor
  for these vocabularies; autoquant keeps every layer's activations and the fp32 loss for its gradient scores) and
  the quality gate's prompt, whose logits it compares in fp32, with and without quantization;
- export: the quantized weights, assembled in host RAM before they are written as shards;
- runtime: the interpreter, torch and modelopt themselves.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from llmkit.config.schema import DType, PrecisionConfig, PrecisionName
from llmkit.errors import UserError
from llmkit.models.shape import ModelShape, weight_bits

log = logging.getLogger(__name__)

DTYPE_BYTES = {DType.float32: 4, DType.bfloat16: 2, DType.float16: 2}
RUNTIME_BYTES = 2 * 2**30
MARGIN = 1.15
# fp32 logits of the quantized and the unquantized pass, their masked copies and the difference.
GATE_BYTES_PER_LOGIT = 20
# autoquant's loss: the logits upcast to fp32, their log-softmax and its gradient.
LOSS_BYTES_PER_LOGIT = 12


@dataclass(frozen=True)
class MemoryNeed:
    what: str
    host_bytes: float
    gpu_bytes: float


def estimate(shape: ModelShape, precision: PrecisionConfig, load_dtype: DType, export_dtype: DType, on_gpu: bool,
             batch_size: int, prompt_length: int) -> list[MemoryNeed]:
    width = DTYPE_BYTES[load_dtype]
    weights = shape.parameters * width
    experts_per_token = 2 if shape.is_moe else 1
    per_token_layer = (shape.hidden_size * 12 + shape.intermediate_size * 3 * experts_per_token) * width
    activations = 0.0
    if precision.name is not PrecisionName.bf16:
        autoquant = precision.name is PrecisionName.autoquant
        live_layers = shape.num_layers if autoquant else 1
        per_logit = width + (LOSS_BYTES_PER_LOGIT if autoquant else 0)
        calibration = batch_size * prompt_length * (per_token_layer * live_layers + shape.vocab_size * per_logit)
        gate = prompt_length * (per_token_layer + shape.vocab_size * (width + GATE_BYTES_PER_LOGIT))
        activations = max(calibration, gate)
    quantized = shape.linear_parameters * weight_bits(precision) / 8
    unquantized = (shape.parameters - shape.linear_parameters) * DTYPE_BYTES[export_dtype]
    return [
        MemoryNeed("weights", 0 if on_gpu else weights, weights if on_gpu else 0),
        MemoryNeed("activations", 0 if on_gpu else activations, activations if on_gpu else 0),
        MemoryNeed("export", quantized + unquantized, 0),
        MemoryNeed("runtime", RUNTIME_BYTES, 0),
    ]


def available_memory(on_gpu: bool) -> tuple[float, float]:
    """(free host RAM, free memory summed over the visible GPUs) in bytes."""
    import psutil

    host = float(psutil.virtual_memory().available)
    gpu = 0.0
    if on_gpu:
        import torch

        gpu = float(sum(torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())))
    return host, gpu


def _gib(n: float) -> str:
    return f"{n / 2**30:,.2f} GiB"


def _fix(on_gpu: bool, weights_do_not_fit: bool, memory: str) -> str:
    if weights_do_not_fit:
        more = "more GPUs visible (quantize.device=cuda spreads the model over them)" if on_gpu else "a GPU machine"
        return f"the weights alone do not fit in the free {memory}: use a machine with more of it, or {more}"
    return "lower calibration.batch_size (or calibration.max_length), or free some memory"


def preflight(shape: ModelShape, precision: PrecisionConfig, load_dtype: DType, export_dtype: DType, on_gpu: bool,
              batch_size: int, prompt_length: int, model_name: str, show: bool = True) -> dict:
    """Print the estimate (unless `show` is False); refuse (UserError) when the machine cannot hold it. Returns the
    figures."""
    needs = estimate(shape, precision, load_dtype, export_dtype, on_gpu, batch_size, prompt_length)
    host_need = MARGIN * sum(n.host_bytes for n in needs)
    gpu_need = MARGIN * sum(n.gpu_bytes for n in needs)
    host_free, gpu_free = available_memory(on_gpu)
    table = Table(title=f"memory preflight: {model_name} ({shape.parameters / 1e9:,.3f} B parameters) at "
                        f"{precision.name.value}, calibration batch {batch_size} x {prompt_length} tokens")
    table.add_column("need")
    table.add_column("host RAM", justify="right")
    table.add_column("GPU memory", justify="right")
    for need in needs:
        table.add_row(need.what, _gib(need.host_bytes), _gib(need.gpu_bytes) if on_gpu else "-")
    table.add_row(f"total (+{MARGIN - 1:.0%} margin)", _gib(host_need), _gib(gpu_need) if on_gpu else "-")
    table.add_row("free on this machine", _gib(host_free), _gib(gpu_free) if on_gpu else "-")
    if show:
        Console(stderr=True).print(table)
    # What no batch size can shrink: the weights, and the quantized copy the export assembles.
    host_fixed = MARGIN * sum(n.host_bytes for n in needs if n.what in ("weights", "export"))
    gpu_fixed = MARGIN * sum(n.gpu_bytes for n in needs if n.what == "weights")
    if host_need > host_free:
        raise UserError(f"quantizing {model_name} at {precision.name.value} needs about {_gib(host_need)} of host RAM "
                        f"but {_gib(host_free)} is free; {_fix(on_gpu, host_free < host_fixed, 'host RAM')}")
    if on_gpu and gpu_need > gpu_free:
        raise UserError(f"quantizing {model_name} at {precision.name.value} needs about {_gib(gpu_need)} of GPU "
                        f"memory but the visible GPUs have {_gib(gpu_free)} free; "
                        f"{_fix(on_gpu, gpu_free < gpu_fixed, 'GPU memory')}")
    return {"host_bytes": round(host_need), "gpu_bytes": round(gpu_need), "host_free_bytes": round(host_free),
            "gpu_free_bytes": round(gpu_free)}
