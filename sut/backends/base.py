"""The backend boundary, all of it: the SUT submits a RequestBatch; a backend answers with first tokens and final
answers as TokenBatches through the callbacks, and reports failures through the error callback.

Both sides move arrays, never a Python object per request: at a million answers a second, Python per answer would
cost more than loadgen itself. What a backend must respect when it answers (int32 ids, at least 2 tokens, at most
one trailing EOS, first tokens a prefix of the answer, each request answered once) is checked by the token ledger
(sut/ledger.py).
"""
from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from llmkit.config.schema import BackendConfig, DatasetConfig, SystemConfig


class TokenAccountingError(RuntimeError):
    pass


def as_int32(ids) -> np.ndarray:
    if type(ids) is np.ndarray and ids.dtype == np.int32 and ids.ndim == 1 and ids.flags.c_contiguous:
        return ids  # the common case, checked without touching the data
    array = np.asarray(ids)
    if array.ndim != 1:
        raise TokenAccountingError(f"token ids must be one-dimensional, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TokenAccountingError(f"token ids must be integers, got {array.dtype}")
    if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
        raise TokenAccountingError("token ids do not fit in int32")
    return np.ascontiguousarray(array, dtype=np.int32)


def starts_of(lengths: np.ndarray) -> np.ndarray:
    """Where each of these consecutive runs begins in a buffer that holds them back to back."""
    starts = np.zeros_like(lengths)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """Token ids for a batch of requests: request `request_ids[i]` has `buffer[starts[i]:starts[i] + lengths[i]]`.

    The backend never writes to `buffer` after handing it over: the SUT gives loadgen pointers into it.
    """

    request_ids: np.ndarray  # int64
    buffer: np.ndarray  # int32, one-dimensional, contiguous
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64
    # The buffer's address; a backend answering from one long-lived buffer passes it (ndarray.ctypes costs ~1 us).
    address: int = -1

    def __post_init__(self):
        if self.address < 0:
            object.__setattr__(self, "address", self.buffer.ctypes.data)

    def __reduce__(self):
        # Only the answers travel, packed, not the rest of a backend's long-lived buffer; as raw bytes, since numpy's
        # own pickling costs ~10x more for a small batch and the MPI ranks send one poll's worth at a time. The
        # check and the packing are plain Python: a few answers per poll, right after the poller woke (when each
        # numpy call costs several times its warm time). Unpickled, the buffer's address is taken there.
        lengths, starts = self.lengths.tolist(), self.starts.tolist()
        packed = list(accumulate(lengths, initial=0))
        buffer = as_int32(self.buffer)
        if starts == packed[:-1] and buffer.size == packed[-1]:
            tokens = buffer.tobytes()
        else:
            tokens = b"".join([buffer[start:start + n].tobytes() for start, n in zip(starts, lengths)])
        return _token_batch, (_int64_bytes(self.request_ids), tokens, array("q", packed[:-1]).tobytes(),
                              _int64_bytes(self.lengths))

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[int, object]]) -> TokenBatch:
        """From (request id, token ids) pairs, copied into one buffer."""
        if pairs and all(type(ids) in (list, tuple) for _, ids in pairs):
            return cls._from_lists(pairs)
        arrays = [as_int32(ids) for _, ids in pairs]
        lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
        buffer = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int32)
        ids = np.fromiter((request_id for request_id, _ in pairs), dtype=np.int64, count=len(pairs))
        return cls(ids, buffer, starts_of(lengths), lengths)

    @classmethod
    def _from_lists(cls, pairs: Sequence[tuple[int, object]]) -> TokenBatch:
        """Lists (or tuples) of Python ints (a runtime's answers), through the array module: four numpy calls per
        batch rather than several per answer. Right after a poller wakes, each numpy call costs several times its
        warm time (cold caches): a one-token batch took 150-200 us this way before, in every first token's way."""
        buffer, lengths = array("i"), []  # C int: 32 bits
        try:
            for _, ids in pairs:
                buffer.extend(ids)
                lengths.append(len(ids))
        except (TypeError, OverflowError) as error:
            raise TokenAccountingError(f"token ids must be integers that fit in int32 ({error})") from None
        return cls(np.array([request_id for request_id, _ in pairs], dtype=np.int64),
                   np.frombuffer(buffer, dtype=np.int32), np.array(list(accumulate(lengths, initial=0))[:-1],
                                                                   dtype=np.int64),
                   np.array(lengths, dtype=np.int64), buffer.buffer_info()[0])

    def __len__(self) -> int:
        return self.request_ids.size

    def pairs(self) -> list[tuple[int, np.ndarray]]:
        return [(int(r), self.buffer[s:s + n]) for r, s, n in zip(self.request_ids, self.starts, self.lengths)]

    def pointers(self) -> np.ndarray:
        """Each answer's address, for loadgen (valid while this batch is alive)."""
        return self.address + self.starts * self.buffer.itemsize


class GenerationRequest(NamedTuple):
    """One request, for engines that schedule requests one by one (RequestBatch.requests())."""

    request_id: int
    prompt: np.ndarray  # int32 token ids
    max_new_tokens: int
    min_new_tokens: int
    eos_ids: tuple[int, ...]
    stop_sequence: tuple[int, ...] | None = None  # generation ends after these tokens (included in the output)
    stream: bool = False  # emit the first generated token as soon as it exists
    sample_index: int = -1  # the dataset row


@dataclass(frozen=True, slots=True)
class RequestBatch:
    """Requests issued together, as arrays: the SUT builds no Python object per request on the hot path.

    Request i asks for the dataset row `rows[i]`, whose prompt is `prompts[rows[i]]` (the dataset's own sequence,
    or only the batch's rows once detached for another process).
    """

    request_ids: np.ndarray  # int64
    rows: np.ndarray  # int64 dataset rows
    prompts: Sequence[np.ndarray] | Mapping[int, np.ndarray]  # int32 token ids, indexed by row
    stop_sequences: Sequence[tuple[int, ...] | None] | Mapping[int, tuple[int, ...] | None]  # indexed by row
    max_new_tokens: int
    min_new_tokens: int
    eos_ids: tuple[int, ...]
    stream: bool = False

    @classmethod
    def of(cls, prompts: Sequence[np.ndarray], max_new_tokens: int, min_new_tokens: int, eos_ids: tuple[int, ...],
           stream: bool = False, stop_sequences: Sequence[tuple[int, ...] | None] | None = None,
           first_id: int = 0) -> RequestBatch:
        """One request per prompt, with request ids counting from `first_id` (tests and benchmarks)."""
        n = len(prompts)
        return cls(np.arange(first_id, first_id + n, dtype=np.int64), np.arange(n, dtype=np.int64), list(prompts),
                   list(stop_sequences) if stop_sequences is not None else [None] * n, max_new_tokens,
                   min_new_tokens, tuple(eos_ids), stream)

    def __len__(self) -> int:
        return self.request_ids.size

    def take(self, positions) -> RequestBatch:
        """The requests at these positions, sharing this batch's prompts."""
        return RequestBatch(self.request_ids[positions], self.rows[positions], self.prompts, self.stop_sequences,
                            self.max_new_tokens, self.min_new_tokens, self.eos_ids, self.stream)

    def __reduce__(self):
        # Pickled (for another process) with only its own rows' prompts, as raw bytes: numpy's own pickling costs
        # ~10x more, and Server queries cross to their rank one at a time.
        rows = set(self.rows.tolist())
        return _request_batch, (_int64_bytes(self.request_ids), _int64_bytes(self.rows),
                                {r: as_int32(self.prompts[r]).tobytes() for r in rows},
                                {r: self.stop_sequences[r] for r in rows}, self.max_new_tokens, self.min_new_tokens,
                                self.eos_ids, self.stream)

    def requests(self) -> list[GenerationRequest]:
        return [GenerationRequest(request_id, self.prompts[row], self.max_new_tokens, self.min_new_tokens,
                                  self.eos_ids, self.stop_sequences[row], self.stream, row)
                for request_id, row in zip(self.request_ids.tolist(), self.rows.tolist())]


def _int64_bytes(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=np.int64).tobytes()


def _token_batch(request_ids: bytes, buffer: bytes, starts: bytes, lengths: bytes) -> TokenBatch:
    """A pickled TokenBatch, back (its arrays read-only: nothing writes to an answer once handed over)."""
    return TokenBatch(np.frombuffer(request_ids, np.int64), np.frombuffer(buffer, np.int32),
                      np.frombuffer(starts, np.int64), np.frombuffer(lengths, np.int64))


def _request_batch(request_ids: bytes, rows: bytes, prompts: dict[int, bytes],
                   stop_sequences: dict[int, tuple[int, ...] | None], *rest) -> RequestBatch:
    """A pickled RequestBatch, back, with its own rows' prompts (read-only)."""
    return RequestBatch(np.frombuffer(request_ids, np.int64), np.frombuffer(rows, np.int64),
                        {r: np.frombuffer(p, np.int32) for r, p in prompts.items()}, stop_sequences, *rest)


# Answers go back as a TokenBatch, delivered together so the SUT can answer loadgen in one call.
# Called from the backend's own thread; keep it short.
TokenCallback = Callable[[TokenBatch], None]
# (request_id or None for the whole backend, message): the backend failed.
ErrorCallback = Callable[["int | None", str], None]


@dataclass(frozen=True)
class BackendSpec:
    """Everything a backend instance needs to start, picklable so MPI ranks can build their own. A backend's
    `prepare` fills what it needs on rank 0 (a checkpoint, the dataset); the placement adds the instance's devices."""

    backend: BackendConfig
    system: SystemConfig
    benchmark: str
    dataset: DatasetConfig
    checkpoint: str = ""
    instance: int = 0
    devices: tuple[str, ...] = ("cpu",)
    # The MPI world ranks of the instance, its leader first ((0,) in one process): a backend whose instances span
    # ranks (TensorRT-LLM leader mode) names them to its engine.
    ranks: tuple[int, ...] = (0,)


class Backend(Protocol):
    """One backend instance. Its class also has `prepare(cfg, benchmark) -> BackendSpec` (a classmethod run once, on
    rank 0, that resolves what the backend needs) and may have `combine_stats(list[dict]) -> dict`, which merges the
    instances' `stats()` into the engine figures of result.json."""

    def start(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback) -> None:
        """Load the model and start serving; returns when ready."""

    def submit(self, batch: RequestBatch) -> None:
        """Queue requests; never blocks on generation."""

    def pending(self) -> int:
        """Requests submitted and not yet finished."""

    def stop(self) -> None:
        """Finish nothing more, release resources; idempotent."""

    def stats(self) -> dict | None:
        """The engine's own figures for result.json, or None."""
