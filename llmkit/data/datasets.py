"""Load a benchmark's dataset into a validated, typed view over the official schema."""
from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from llmkit.benchmarks import BENCHMARKS, Benchmark
from llmkit.config.schema import DatasetConfig, DatasetSource, DatasetSplit
from llmkit.errors import UserError, not_there
from llmkit.rundir import replace_whole

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".pkl", ".pickle")
SUFFIXES = (*PICKLE_SUFFIXES, ".parquet", ".jsonl")


@dataclass
class Dataset:
    """A validated dataset: the frame in the official schema plus int32 prompts and per-row stop sequences."""

    benchmark: Benchmark
    split: DatasetSplit
    source: str
    frame: pd.DataFrame
    prompts: list[np.ndarray]
    stop_sequences: list[tuple[int, ...] | None]

    def __len__(self) -> int:
        return len(self.prompts)


def md5sum(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _known_md5s() -> dict[str, str]:
    known = {}
    for benchmark in BENCHMARKS.values():
        for file in (benchmark.validation, benchmark.calibration):
            if file.md5:
                known[file.md5] = f"{benchmark.name} {file.filename}"
    return known


def _check_pickle_is_safe(path: Path, expected_md5: str | None, trusted: bool) -> None:
    actual = md5sum(path)
    if expected_md5:
        if actual != expected_md5.lower():
            raise UserError(
                f"{path} has md5 {actual} but {expected_md5} was expected; re-download the file "
                "(or pass the right dataset.md5= for a file you made)"
            )
        return
    if actual in _known_md5s() or trusted:
        return
    raise UserError(
        f"{path} is not a known MLPerf file (md5 {actual}) and unpickling runs code; pass dataset.md5={actual} "
        "or dataset.trusted=true if you made it"
    )


def read_frame(path: Path, *, expected_md5: str | None = None, trusted: bool = False) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{not_there(path, 'dataset file', directory=False)}; pass dataset.path= pointing at the file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"cannot read {path}: use a .pkl, .parquet or .jsonl file in the official schema")
    try:
        if suffix in PICKLE_SUFFIXES:
            _check_pickle_is_safe(path, expected_md5, trusted)
            with path.open("rb") as f:
                frame = pickle.load(f)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True)
    except UserError:
        raise
    except Exception as error:  # a corrupt file can fail in many ways inside pickle/pyarrow/json
        raise UserError(f"cannot read {path}: {type(error).__name__}: {error}; is the file complete?") from None
    if not isinstance(frame, pd.DataFrame):
        raise UserError(f"{path} holds a {type(frame).__name__}, not a pandas DataFrame in the official schema")
    return frame


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a dataset in the format its suffix names (atomically)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"cannot write {path}: use a .pkl, .parquet or .jsonl name")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in PICKLE_SUFFIXES:
        # As the official pickles: text columns of plain Python strings (pandas' own string dtype pickles as
        # pyarrow arrays, which then need pyarrow to load).
        text = [name for name, dtype in frame.dtypes.items() if pd.api.types.is_string_dtype(dtype)]
        plain = frame.astype({name: object for name in text})
        plain.columns = pd.Index(list(plain.columns), dtype=object)
        replace_whole(path, plain.to_pickle)
    elif suffix == ".parquet":
        replace_whole(path, frame.to_parquet)
    else:
        replace_whole(path, lambda temporary: frame.to_json(temporary, orient="records", lines=True))


def expected_md5(config: DatasetConfig, benchmark: Benchmark) -> str | None:
    if config.md5:
        return config.md5
    official = benchmark.validation if config.split is DatasetSplit.validation else benchmark.calibration
    if config.path and Path(config.path).name == official.filename:
        return official.md5
    return None


def validate_frame(frame: pd.DataFrame, benchmark: Benchmark, split: DatasetSplit, source: str) -> Dataset:
    required = benchmark.validation_columns if split is DatasetSplit.validation else benchmark.calibration_columns
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserError(
            f"{source} lacks the column(s) {', '.join(missing)} of the {benchmark.name} {split.value} schema; "
            "is it a dataset of this benchmark?"
        )
    if len(frame) == 0:
        raise UserError(f"{source} has no rows; point dataset.path at the full file")
    if "tok_input" not in frame.columns:
        frame = frame.assign(tok_input=tokenize_inputs(frame["input"], benchmark, source))
    prompts = []
    for index, ids in enumerate(frame["tok_input"]):
        prompt = _as_token_ids(ids, source, index)
        if prompt.size and (prompt.min() < 0 or prompt.max() >= benchmark.vocab_size):
            raise UserError(
                f"{source} row {index} has token id {int(prompt.max())} outside {benchmark.name}'s vocabulary "
                f"({benchmark.vocab_size}); it is not a {benchmark.name} dataset"
            )
        if prompt.size > benchmark.max_input_len:
            raise UserError(
                f"{source} row {index} has {prompt.size} input tokens, over {benchmark.name}'s "
                f"{benchmark.max_input_len}; it is not a {benchmark.name} dataset"
            )
        prompts.append(prompt)
    stops = _stop_sequences(frame, benchmark)
    return Dataset(benchmark, split, source, frame, prompts, stops)


def tokenize_inputs(texts, benchmark: Benchmark, source: str, tokenizer=None) -> list[list[int]]:
    """Token ids of prompt texts (default: the benchmark's tokenizer); a leading BOS text becomes the BOS id."""
    from llmkit.tokenizers import bundled_tokenizer_file, load_tokenizer

    tokenizer = tokenizer or load_tokenizer(bundled_tokenizer_file(benchmark.tokenizer))
    ids = []
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            raise UserError(f"{source} row {index}: input is not a non-empty prompt text")
        if text.startswith("<s>"):
            ids.append(tokenizer.encode(text.removeprefix("<s>").lstrip(), bos=True))
        else:
            encoded = tokenizer.encode(text)
            ids.append(encoded if encoded[:1] == [tokenizer.bos_id] else [tokenizer.bos_id, *encoded])
    return ids


def _as_token_ids(ids, source: str, index: int) -> np.ndarray:
    try:
        array = np.asarray(ids, dtype=np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{source} row {index}: tok_input is not a list of token ids") from None
    if array.ndim != 1 or array.size == 0:
        raise UserError(f"{source} row {index}: tok_input must be a non-empty list of token ids")
    return array.astype(np.int32)


def _stop_sequences(frame: pd.DataFrame, benchmark: Benchmark) -> list[tuple[int, ...] | None]:
    """Multi-token stop sequences per row (mixtral MBXP); a row that only stops at EOS gets None."""
    if "tok_stop_sequence" not in frame.columns:
        return [None] * len(frame)
    stops = []
    for value in frame["tok_stop_sequence"]:
        ids = tuple(int(i) for i in value) if value is not None and len(value) else ()
        stops.append(None if not ids or set(ids) <= set(benchmark.eos_ids) else ids)
    return stops


def load_dataset(config: DatasetConfig, benchmark: Benchmark) -> Dataset:
    if config.source is DatasetSource.sample:
        from llmkit.data.sample import sample_frame

        frame, source = sample_frame(benchmark, config.split), f"the {benchmark.name} sample"
    else:
        path = Path(config.path or "")
        frame = read_frame(path, expected_md5=expected_md5(config, benchmark), trusted=config.trusted)
        source = str(path)
    if config.max_samples is not None:
        frame = frame.iloc[: config.max_samples].reset_index(drop=True)
    dataset = validate_frame(frame, benchmark, config.split, source)
    log.info("dataset: %s, %s split, %d rows", source, config.split.value, len(dataset))
    return dataset
