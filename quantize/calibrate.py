"""`llmkit calibrate` (= `python -m quantize calibrate`): the benchmark's calibration set, tokenized and batched.

The rows come from the official calibration file (dataset=official dataset.path=...), or from the sample
generator's calibration split. Every prompt is tokenized with the model's own tokenizer, truncated to the
benchmark's max input length, and stored as an artifact keyed by everything that determines it, under
artifacts/calibration/<key>/ (calibration.npz + manifest.json), reused unless forced.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from llmkit.artifacts import build_or_reuse, file_sha256, read_manifest
from llmkit.benchmarks import Benchmark, TokenizerKind, get_benchmark
from llmkit.config.schema import DatasetSource, DatasetSplit, RunConfig
from llmkit.data.datasets import Dataset, load_dataset, tokenize_inputs
from llmkit.errors import UserError
from llmkit.models.checkpoint import resolve_checkpoint
from llmkit.tokenizers import TokenizerFile, detect_tokenizer_file, load_tokenizer

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.npz"
# Prompt templates that give a dataset of the other benchmark away, when it carries text only.
FOREIGN_TEMPLATES = {TokenizerKind.SENTENCEPIECE: "<|start_header_id|>", TokenizerKind.TIKTOKEN: "[INST]"}


def _check_not_validation(frame, benchmark: Benchmark, source: str) -> None:
    """MLPerf forbids calibrating on the validation set: a frame with its whole schema (reference answers included)
    and its row count is refused."""
    if set(benchmark.validation_columns) <= set(frame.columns) and len(frame) == benchmark.validation.rows:
        raise UserError(f"{source} is {benchmark.name}'s validation set (its {len(frame)} rows with their reference "
                        f"answers) and MLPerf forbids calibrating on it; pass the calibration file "
                        f"({benchmark.calibration.filename}) as dataset.path=")


def _check_benchmark(texts: list[str], benchmark: Benchmark, source: str) -> None:
    marker = FOREIGN_TEMPLATES[benchmark.tokenizer]
    foreign = sum(marker in text for text in texts)
    if foreign > len(texts) // 2:
        raise UserError(f"{source} uses the other benchmark's prompt template ({marker!r}); it is not a "
                        f"{benchmark.name} calibration set")


def _source_fingerprint(cfg: RunConfig, texts: list[str]) -> str:
    if cfg.dataset.source is DatasetSource.file:
        return f"file sha256 {file_sha256(Path(cfg.dataset.path))}"
    return "sample sha256 " + hashlib.sha256("\x00".join(texts).encode()).hexdigest()


def tokenizer_fingerprint(tokenizer_file: TokenizerFile) -> str:
    return f"{tokenizer_file.kind.value} sha256 {file_sha256(tokenizer_file.path)}"


def check_calibration_set(directory: Path, benchmark: Benchmark, checkpoint: Path) -> dict:
    """The manifest of a calibration artifact given by path, refused when it belongs to another benchmark or model."""
    manifest = read_manifest(directory)
    inputs = manifest.get("inputs") or {}
    if manifest.get("kind") != "calibration":
        raise UserError(f"{directory} is a {manifest.get('kind')} artifact, not a calibration set; point "
                        "quantize.calibration_dir at one llmkit calibrate wrote")
    if inputs.get("benchmark") != benchmark.name:
        raise UserError(f"calibration set {directory} was built for {inputs.get('benchmark')}, not {benchmark.name}; "
                        f"build one with llmkit calibrate benchmark={benchmark.name}")
    if inputs.get("tokenizer") != tokenizer_fingerprint(detect_tokenizer_file(checkpoint)):
        raise UserError(f"calibration set {directory} was tokenized with another tokenizer than {checkpoint}'s; "
                        "rebuild it with llmkit calibrate for this model")
    return manifest


def calibration_texts(cfg: RunConfig, benchmark: Benchmark) -> tuple[Dataset, list[str]]:
    """The benchmark's calibration split and its prompts' text."""
    dataset = load_dataset(replace(cfg.dataset, split=DatasetSplit.calibration), benchmark)
    return dataset, [str(t) for t in dataset.frame["input"]]


def calibration_inputs(cfg: RunConfig, benchmark: Benchmark, texts: list[str], tokenizer_file: TokenizerFile) -> dict:
    """What the calibration set's key is made of (calibrate; a build's MPI ranks look the set up by it)."""
    settings = cfg.calibration
    return {
        "benchmark": benchmark.name, "dataset": _source_fingerprint(cfg, texts),
        "tokenizer": tokenizer_fingerprint(tokenizer_file),
        "num_samples": min(settings.num_samples or len(texts), len(texts)),
        "max_length": settings.max_length or benchmark.max_input_len, "batch_size": settings.batch_size,
    }


def calibrate(cfg: RunConfig) -> Path:
    benchmark = get_benchmark(cfg.benchmark.name)
    dataset, texts = calibration_texts(cfg, benchmark)
    _check_not_validation(dataset.frame, benchmark, dataset.source)
    _check_benchmark(texts, benchmark, dataset.source)
    settings = cfg.calibration
    checkpoint = resolve_checkpoint(cfg.model, benchmark)
    tokenizer_file = detect_tokenizer_file(checkpoint.path)
    inputs = calibration_inputs(cfg, benchmark, texts, tokenizer_file)
    count, max_length = inputs["num_samples"], inputs["max_length"]

    def build(directory: Path) -> dict:
        tokenizer = load_tokenizer(tokenizer_file)
        chosen = texts[:count]
        ids = [row[:max_length] for row in tqdm(
            (tokenize_inputs([t], benchmark, dataset.source, tokenizer)[0] for t in chosen), total=count,
            desc="tokenizing the calibration set", unit="prompt")]
        lengths = np.array([len(row) for row in ids], dtype=np.int32)
        input_ids = np.zeros((count, int(lengths.max())), dtype=np.int32)
        for row, values in enumerate(ids):
            input_ids[row, : len(values)] = values
        np.savez(directory / CALIBRATION_FILE, input_ids=input_ids, lengths=lengths)
        return {
            "source": dataset.source, "samples": count, "batches": -(-count // settings.batch_size), "truncated": int((lengths == max_length).sum()),
            "tokens": int(lengths.sum()), "mean_length": round(float(lengths.mean()), 1),
            "max_length_seen": int(lengths.max()), "calibration_sha256": file_sha256(directory / CALIBRATION_FILE),
        }

    path = build_or_reuse(Path(cfg.artifacts_root), "calibration", inputs, build, force=settings.force)
    log.info("calibration set: %s (%d prompts of %s)", path, count, benchmark.name)
    return path


def load_calibration(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids [N, L] int32 right-padded, lengths [N]) of a calibration artifact."""
    path = directory / CALIBRATION_FILE
    if not path.is_file():
        raise UserError(f"{directory} has no {CALIBRATION_FILE}; build it with llmkit calibrate")
    with np.load(path) as data:
        return data["input_ids"], data["lengths"]
