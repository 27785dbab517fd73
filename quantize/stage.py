"""`llmkit quantize` (= `python -m quantize`): a precision/ recipe applied with modelopt, exported as a TensorRT-LLM
checkpoint sharded for system.tp x system.pp, under artifacts/checkpoints/<key>/ with a manifest.

Every check that can fail on the inputs runs before anything is loaded or written; the checkpoint is staged and
renamed into place only when the export and the quality gate are done.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from llmkit.artifacts import MANIFEST, artifact_path, build_or_reuse, files_fingerprint, read_manifest
from llmkit.benchmarks import get_benchmark
from llmkit.config.precisions import AutoquantConfig, awq_block_size, recipe_formats
from llmkit.config.schema import PrecisionName, QuantizeDevice, RunConfig
from llmkit.config.sweeps import submitit_job
from llmkit.errors import UserError
from llmkit.models.checkpoint import resolve_checkpoint
from llmkit.tokenizers import detect_tokenizer_file
from quantize.calibrate import (calibrate, calibration_inputs, calibration_texts, check_calibration_set,
                                load_calibration)
from quantize.export import HF_SUBDIR, TOKENIZER_FILES, TOKENIZER_SUBDIR, copy_tokenizer, export_hf, export_trtllm
from llmkit.models.memory import preflight
from llmkit.models.shape import check_recipe, check_topology, read_shape

log = logging.getLogger(__name__)

ARTIFACT_KIND = "checkpoints"
GATE_FAILED_EXIT_CODE = 1
# Checkpoints whose quality gate failed in this process (a sweep reports them when it ends).
FAILED_GATES: list[Path] = []


def resolve_device(requested: QuantizeDevice, needs_nvfp4: bool) -> str:
    import torch

    has_gpu = torch.cuda.is_available()
    if requested is QuantizeDevice.cuda and not has_gpu:
        raise UserError("quantize.device=cuda but no CUDA GPU is visible; use quantize.device=auto or cpu")
    device = "cuda" if requested is QuantizeDevice.cuda or (requested is QuantizeDevice.auto and has_gpu) else "cpu"
    if needs_nvfp4 and device == "cpu":
        raise UserError("precision=nvfp4 needs a CUDA GPU (modelopt computes NVFP4 scales only on the GPU) and "
                        f"{'none is visible' if not has_gpu else 'quantize.device=cpu'}; run it on a GPU machine or "
                        "choose precision=fp8")
    return device


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode is RunMode.MULTIRUN


def _checkpoint_files(path: Path) -> list[Path]:
    """Everything of the checkpoint the artifact is made from: config, weights and the tokenizer files it copies."""
    files = [path / "config.json", *sorted(path.glob("*.safetensors")), *sorted(path.glob("*.bin"))]
    for name in TOKENIZER_FILES:  # a file, or a directory such as original/
        entry = path / name
        files += [entry] if entry.is_file() else [f for f in sorted(entry.rglob("*")) if f.is_file()]
    return files


def recipe_key(precision) -> dict:
    """The precision settings that shape the checkpoint: a setting the recipe ignores does not change the key."""
    key = {"name": precision.name.value, "kv_cache": precision.kv_cache.value, "exclude": list(precision.exclude)}
    formats = recipe_formats(precision)
    if PrecisionName.w4a8_awq in formats:
        key["awq_block_size"] = awq_block_size(precision)
    if isinstance(precision, AutoquantConfig):
        key |= {"effective_bits": precision.effective_bits, "search_formats": sorted(f.value for f in formats)}
    return key


def key_inputs(cfg: RunConfig, benchmark, checkpoint: Path, architecture: str, device: str, calibration: dict) -> dict:
    """What the checkpoint artifact's key is made of (`calibration`: its calibration set's manifest, {} for bf16)."""
    settings, precision, system = cfg.quantize, cfg.precision, cfg.system
    passthrough = precision.name is PrecisionName.bf16
    return {
        "benchmark": benchmark.name,
        "checkpoint": files_fingerprint(_checkpoint_files(checkpoint), Path(cfg.artifacts_root) / ".fingerprints.json"),
        "architecture": architecture,
        "calibration_sha256": None if passthrough else calibration.get("calibration_sha256"),
        "calibration_batch_size": None if passthrough else cfg.calibration.batch_size,
        "precision": recipe_key(precision),
        "tp": system.tp, "pp": system.pp,
        "device": device,
        "load_dtype": settings.load_dtype.value, "export_dtype": settings.export_dtype.value,
        "export_hf": settings.export_hf,
        "score_batches": settings.score_batches if precision.name is PrecisionName.autoquant else None,
        "gate_samples": None if passthrough else settings.gate_samples,
    }


def made_checkpoint(cfg: RunConfig) -> Path | None:
    """This config's checkpoint artifact, found by its key without making anything (the MPI ranks of a build must
    not quantize); None when `llmkit quantize` has not made it, or its calibration set, yet."""
    benchmark = get_benchmark(cfg.benchmark.name)
    checkpoint = resolve_checkpoint(cfg.model, benchmark)
    device = resolve_device(cfg.quantize.device, PrecisionName.nvfp4 in recipe_formats(cfg.precision))
    root = Path(cfg.artifacts_root)
    calibration: dict = {}
    if cfg.precision.name is not PrecisionName.bf16:
        given = cfg.quantize.calibration_dir
        directory = Path(given) if given else artifact_path(root, "calibration", calibration_inputs(
            cfg, benchmark, calibration_texts(cfg, benchmark)[1], detect_tokenizer_file(checkpoint.path)))
        if not (directory / MANIFEST).is_file():
            return None
        calibration = read_manifest(directory)
    path = artifact_path(root, ARTIFACT_KIND, key_inputs(cfg, benchmark, checkpoint.path,
                                                         read_shape(checkpoint).architecture, device, calibration))
    return path if (path / MANIFEST).is_file() else None


def quantize(cfg: RunConfig) -> Path:
    benchmark = get_benchmark(cfg.benchmark.name)
    settings, precision, system = cfg.quantize, cfg.precision, cfg.system
    checkpoint = resolve_checkpoint(cfg.model, benchmark)
    shape = read_shape(checkpoint)
    check_topology(shape, system.tp, system.pp)
    check_recipe(shape, precision, system.tp)
    if isinstance(precision, AutoquantConfig):
        from quantize.recipes import check_autoquant_budget  # imports modelopt: only for a search

        check_autoquant_budget(precision)
    formats = recipe_formats(precision)
    device = resolve_device(settings.device, PrecisionName.nvfp4 in formats)
    passthrough = precision.name is PrecisionName.bf16
    given = Path(settings.calibration_dir) if settings.calibration_dir else None
    if given:
        check_calibration_set(given, benchmark, checkpoint.path)

    def fits(prompt_length: int, show: bool = True) -> dict:
        return preflight(shape, precision, settings.load_dtype, settings.export_dtype, device == "cuda",
                         cfg.calibration.batch_size, prompt_length, cfg.model.name, show)

    # Before anything is written: what no calibration set can shrink (the weights, at the shortest prompt).
    fits(1, show=False)
    # Then the calibration set (tokenizing: seconds, a keyed artifact reused across recipes), so the activations are
    # sized by its longest prompt, not by the longest a prompt may be (20000 tokens for llama3.1-405b, where the
    # sample's are a few hundred).
    calibration_dir = given if given or passthrough else calibrate(cfg)
    calibration = read_manifest(calibration_dir) if calibration_dir else {}
    memory = fits(calibration.get("max_length_seen") or cfg.calibration.max_length or benchmark.max_input_len)

    inputs = key_inputs(cfg, benchmark, checkpoint.path, shape.architecture, device, calibration)

    def build(directory: Path) -> dict:
        return _build(cfg, checkpoint.path, shape, device, calibration_dir, directory) | {
            "model": cfg.model.name, "checkpoint_path": str(checkpoint.path),
            "calibration_dir": calibration_dir and str(calibration_dir), "memory_preflight": memory}

    path = build_or_reuse(Path(cfg.artifacts_root), ARTIFACT_KIND, inputs, build, force=settings.force)
    manifest = json.loads((path / MANIFEST).read_text())
    _report(manifest, path, settings.min_greedy_agreement)
    quality = manifest.get("quality")
    if quality is not None and quality["greedy_agreement"] < settings.min_greedy_agreement:
        log.error("quality gate failed: greedy-token agreement %.4f is below quantize.min_greedy_agreement=%s; the "
                  "checkpoint is kept at %s for inspection, but do not build engines from it",
                  quality["greedy_agreement"], settings.min_greedy_agreement, path)
        FAILED_GATES.append(path)
        if submitit_job():  # the job's own process: the launching process reports it (llmkit.config.sweeps)
            raise UserError(f"the quality gate failed for {path}: greedy-token agreement "
                            f"{quality['greedy_agreement']:.4f} is below quantize.min_greedy_agreement="
                            f"{settings.min_greedy_agreement}; choose another recipe or lower the threshold")
        if not _in_sweep():  # a sweep goes on to its other recipes, then exits 1 (quantize/__main__.py)
            raise SystemExit(GATE_FAILED_EXIT_CODE)
    return path


def _build(cfg: RunConfig, checkpoint: Path, shape, device: str, calibration_dir: Path, directory: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from quantize.batches import forward_loop, model_batches
    from quantize.quality import quality_figures
    from quantize.recipes import quantize_model

    settings, precision = cfg.quantize, cfg.precision
    timings: dict[str, float] = {}
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        str(checkpoint), dtype=getattr(torch, settings.load_dtype.value),
        device_map="auto" if device == "cuda" else None, low_cpu_mem_usage=True,
    ).eval()
    timings["load_s"] = time.perf_counter() - started
    facts: dict = {"recipe": None, "quality": None}
    if precision.name is not PrecisionName.bf16:
        input_ids, lengths = load_calibration(calibration_dir)
        batches = model_batches(input_ids, lengths, cfg.calibration.batch_size, device)
        started = time.perf_counter()
        facts["recipe"] = quantize_model(model, precision, batches, settings.score_batches, forward_loop)
        timings["quantize_s"] = time.perf_counter() - started
        started = time.perf_counter()
        gate_rows = min(settings.gate_samples, len(lengths))
        gate = model_batches(input_ids[:gate_rows], lengths[:gate_rows], 1, device)  # fp32 logits: one at a time
        facts["quality"] = quality_figures(model, gate) | {"min_greedy_agreement": settings.min_greedy_agreement}
        timings["quality_gate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    facts |= export_trtllm(model, shape, settings.export_dtype, directory, cfg.system.tp, cfg.system.pp)
    copy_tokenizer(checkpoint, directory / TOKENIZER_SUBDIR)
    if settings.export_hf:
        export_hf(model, settings.export_dtype, directory / HF_SUBDIR)
        copy_tokenizer(checkpoint, directory / HF_SUBDIR)
    timings["export_s"] = time.perf_counter() - started
    return facts | {"timings": {k: round(v, 3) for k, v in timings.items()}}


def _report(manifest: dict, path: Path, threshold: float) -> None:
    config = manifest["trtllm_config"]
    quality = manifest.get("quality")
    table = Table(title=f"TensorRT-LLM checkpoint: {path}")
    table.add_column("field")
    table.add_column("value")
    mapping = config["mapping"]
    table.add_row("precision", f"{manifest['inputs']['precision']['name']} (quant_algo {config['quant_algo']}, "
                               f"KV cache {config['kv_cache_quant_algo']})")
    table.add_row("topology", f"tp {mapping['tp_size']} x pp {mapping['pp_size']}: "
                              f"{len(manifest['ranks'])} rank files, {manifest['checkpoint_bytes'] / 2**20:,.1f} MiB")
    recipe = manifest.get("recipe") or {}
    if "effective_bits" in recipe:
        table.add_row("autoquant", f"{recipe['effective_bits']} effective bits; layers per format "
                                   f"{recipe['format_counts']}")
    if quality is None:
        table.add_row("quality gate", "not applicable (no quantization)")
    else:
        verdict = "pass" if quality["greedy_agreement"] >= threshold else "FAIL"
        table.add_row("quality gate", f"{verdict}: greedy agreement {quality['greedy_agreement']:.4f} "
                                      f"(min {threshold}), logits relative error "
                                      f"{quality['logits_relative_error']:.4f} over {quality['positions']} tokens")
    Console(stderr=True).print(table)
