"""Read loadgen's mlperf_log_accuracy.json: validate every entry, dedupe by qsl_idx, decode int32 token ids."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmkit.artifacts import file_sha256
from llmkit.errors import UserError, not_there


@dataclass(frozen=True)
class LoggedAnswer:
    qsl_idx: int
    ids: np.ndarray  # int32 token ids


@dataclass(frozen=True)
class AccuracyLog:
    path: Path
    sha256: str
    entries: int  # every entry, duplicates included
    answers: list[LoggedAnswer]  # the first answer per qsl_idx, in log order


def int32_payload(payload, where: str) -> np.ndarray:
    """A loadgen accuracy-log payload (the hex of int32 token ids) as ids; `where` names it in the errors."""
    if not isinstance(payload, str):
        raise UserError(f"{where} has no hex payload; is this a loadgen accuracy log?")
    try:
        raw = bytes.fromhex(payload)
    except ValueError:
        raise UserError(f"{where} is not hex; the log is damaged") from None
    if len(raw) % 4:
        raise UserError(f"{where} has {len(raw)} bytes, not a whole number of int32 token ids")
    return np.frombuffer(raw, dtype=np.int32)


def _decode_payload(entry: dict, number: int, path: Path) -> np.ndarray:
    ids = int32_payload(entry.get("data"), f"{path} entry {number} 'data'")
    count = entry.get("token_count")
    if count is not None and count != ids.size:
        hint = " (the payload looks like int64 ids; the SUT must send int32)" if ids.size == 2 * count else ""
        raise UserError(
            f"{path} entry {number}: token_count {count} but the payload holds {ids.size} int32 ids{hint}"
        )
    return ids


def _looks_like_int64(answers: list[LoggedAnswer]) -> bool:
    """Little-endian int64 ids read as int32 leave a zero in every odd slot."""
    candidates = [a.ids for a in answers if a.ids.size >= 2]
    return bool(candidates) and all(ids.size % 2 == 0 and not ids[1::2].any() for ids in candidates)


def log_entries(path: Path, missing: str, empty: str) -> list:
    """The entries of a loadgen accuracy log; `missing` and `empty` say what to do when it is absent or empty."""
    if not path.is_file():
        raise UserError(f"{not_there(path, 'accuracy log', directory=False)}; {missing}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not complete JSON ({error.msg} at line {error.lineno}); was the run cut short?") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; is it a loadgen accuracy log?") from None
    if not isinstance(entries, list):
        raise UserError(f"{path} is not a list of loadgen accuracy entries")
    if not entries:
        raise UserError(f"{path} has no entries; {empty}")
    wrong = next((n for n, entry in enumerate(entries) if not isinstance(entry, dict)), None)
    if wrong is not None:
        raise UserError(f"{path} entry {wrong} is a {type(entries[wrong]).__name__}, not an object with qsl_idx and "
                        "data; is it a loadgen accuracy log?")
    return entries


def _outside(ids, vocab_size: int) -> int:
    """The first token id of `ids` outside [0, vocab_size) (a negative one is as wrong as a too large one)."""
    return int(ids[(ids < 0) | (ids >= vocab_size)][0])


def read_accuracy_log(path: Path, dataset_size: int, vocab_size: int) -> AccuracyLog:
    entries = log_entries(path, "evaluate a run made with mode=accuracy", "the accuracy run answered nothing")
    seen: set[int] = set()
    answers = []
    for number, entry in enumerate(entries):
        qsl_idx = entry.get("qsl_idx") if isinstance(entry, dict) else None
        if not isinstance(qsl_idx, int):
            raise UserError(f"{path} entry {number} has no integer qsl_idx; is it a loadgen accuracy log?")
        if not 0 <= qsl_idx < dataset_size:
            raise UserError(
                f"{path} entry {number} has qsl_idx {qsl_idx} but the dataset has {dataset_size} rows: the log is "
                "from another dataset; evaluate it against the dataset the run used"
            )
        ids = _decode_payload(entry, number, path)
        if qsl_idx in seen:
            continue
        seen.add(qsl_idx)
        answers.append(LoggedAnswer(qsl_idx, ids))
    if _looks_like_int64(answers):
        raise UserError(f"{path} holds int64 token ids (every second int32 is 0); the SUT must report int32 ids")
    for answer in answers:
        if answer.ids.size and (answer.ids.min() < 0 or answer.ids.max() >= vocab_size):
            raise UserError(
                f"{path}: qsl_idx {answer.qsl_idx} has token id {_outside(answer.ids, vocab_size)} outside the vocabulary "
                f"({vocab_size}); the log is from another model or is not int32"
            )
    return AccuracyLog(path, file_sha256(path), len(entries), answers)
