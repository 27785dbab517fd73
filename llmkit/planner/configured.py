"""The planner's request for a RunConfig: the system's GPU and tuned entry, the precision, the topology, and the
model's shape.

Which shape: `llmkit plan` plans the benchmark's real checkpoint (Mixtral-8x7B-Instruct, Llama-3.1-405B-Instruct)
unless a checkpoint of its own is named (model=checkpoint model.path=...: its config.json); the tiny models exist to
run on a CPU, not to be planned. `llmkit build` and `llmkit run` check the model they actually load.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from llmkit.benchmarks import Benchmark, get_benchmark
from llmkit.config.schema import Device, RunConfig
from llmkit.config.systems import build_flags, runtime_limits
from llmkit.errors import UserError
from llmkit.gpus import GpuSpec, get_gpu
from llmkit.models.checkpoint import CheckpointInfo, read_config_json
from llmkit.models.dims import ModelShape
from llmkit.models.shape import read_shape
from llmkit.planner.memory import GIB, breakdown, check_fits, kv_batch
from llmkit.planner.request import PlanRequest, request_for

log = logging.getLogger(__name__)


def _checkpoint_shape(path: Path) -> ModelShape:
    config = read_config_json(path)
    architectures = config.get("architectures") or ["unknown"]
    return read_shape(CheckpointInfo(path, architectures[0], int(config.get("vocab_size", 0))))


def planned_shape(cfg: RunConfig, benchmark: Benchmark, planning: bool, files_optional: bool) -> tuple[ModelShape, str]:
    """(the shape, where it comes from). `planning`: a tiny model stands for the benchmark's real checkpoint;
    `files_optional`: a model.path that does not exist here (a dry run) is taken to be the official checkpoint."""
    model = cfg.model
    if model.tiny is not None:
        if planning:
            return benchmark.shape, f"{benchmark.checkpoint} (the benchmark's checkpoint; model={model.name} is for CPUs)"
        from llmkit.models.tiny import ensure_tiny_checkpoint

        ensure_tiny_checkpoint(model.tiny, Path(model.path), model.seed)
    path = Path(model.path or "")
    if not (path / "config.json").is_file():
        if planning or files_optional:
            return benchmark.shape, f"{benchmark.checkpoint} (model.path={path} has no config.json here)"
        raise UserError(f"model.path={path} has no config.json; point it at the checkpoint")
    return _checkpoint_shape(path), f"{path}/config.json"


def gpu_of(cfg: RunConfig, why: str = "the planner plans for one") -> GpuSpec:
    """The system's GPU; one sentence when it names none (`why` says who needs it)."""
    system = cfg.system
    if system.device is not Device.cuda or system.gpu is None:
        raise UserError(f"system={system.name} has no GPU model, and {why}; choose a GPU system (system=h100x8, "
                        "h200x8, b200x8, gb200-nvl72) or set system.device=cuda system.gpu=NAME")
    return get_gpu(system.gpu)


def request_for_run(cfg: RunConfig, planning: bool, files_optional: bool = False) -> tuple[PlanRequest, str]:
    """The planner's request for this config (the plan.* overrides, else the system's tuned entry, else the
    planner's own choices), and where the model's shape comes from."""
    benchmark = get_benchmark(cfg.benchmark.name)
    gpu = gpu_of(cfg)
    system, settings = cfg.system, cfg.plan
    shape, source = planned_shape(cfg, benchmark, planning, files_optional)
    limits = runtime_limits(cfg, settings.max_batch_size, settings.max_num_tokens,
                            settings.kv_cache_free_gpu_memory_fraction)
    request = request_for(
        benchmark, gpu, cfg.precision, cfg.scenario.name, tp=system.tp, pp=system.pp, instances=system.dp,
        kv_fraction=limits.kv_fraction, max_batch_size=limits.max_batch_size, max_num_tokens=limits.max_num_tokens,
        engine_max_num_tokens=build_flags(cfg).max_num_tokens, gpus_per_node=system.devices_per_node or 8)
    return replace(request, shape=shape, model=f"{benchmark.name}"), source


def memory_preflight(cfg: RunConfig, files_optional: bool = False) -> dict:
    """Refuse (one sentence, with the topology that would fit) a topology whose GPUs cannot hold the weights, the
    engine and one longest sequence of the model this config loads; return the per-GPU figures."""
    request, source = request_for_run(cfg, planning=False, files_optional=files_optional)
    flags = build_flags(cfg)
    batch = flags.max_batch_size or request.max_batch_size or 1
    tokens = flags.max_num_tokens or request.max_num_tokens or request.max_input_len
    check_fits(request, batch, tokens, max_gpus=cfg.system.devices_per_node * cfg.system.nodes)
    memory = breakdown(request, batch, tokens)
    figures = {"shape_from": source, "gpu": request.gpu.name, "tp": request.tp, "pp": request.pp,
               "weight_bytes_per_gpu": round(memory.weights), "activation_bytes_per_gpu": round(memory.activations),
               "kv_bytes_per_token_per_gpu": memory.kv_bytes_per_token, "kv_capacity_tokens": memory.kv_tokens,
               "kv_batch": kv_batch(request, memory)}
    figures["summary"] = (f"weights {memory.weights / GIB:,.1f} GiB, activations {memory.activations / GIB:,.1f} GiB, "
                          f"KV cache {memory.kv_cache / GIB:,.1f} GiB = {memory.kv_tokens:,} tokens "
                          f"(~{figures['kv_batch']:,} sequences of the dataset's lengths) of "
                          f"{memory.capacity / GIB:,.0f} GiB ({source})")
    log.info("memory per GPU on tp %d x pp %d of %s: %s", request.tp, request.pp, request.gpu.name, figures["summary"])
    return figures
