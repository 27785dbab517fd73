"""The backend boundary: submit a RequestBatch; receive first tokens and final answers as TokenBatches."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import numpy as np

from llmkit.config.schema import BackendConfig, DatasetConfig, SystemConfig
from sut.tokens import TokenBatch


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

    def detached(self) -> RequestBatch:
        """The same requests carrying only their own rows' prompts (to pickle for another process)."""
        rows = set(self.rows.tolist())
        return replace(self, prompts={r: self.prompts[r] for r in rows},
                       stop_sequences={r: self.stop_sequences[r] for r in rows})

    def requests(self) -> list[GenerationRequest]:
        return [GenerationRequest(request_id, self.prompts[row], self.max_new_tokens, self.min_new_tokens,
                                  self.eos_ids, self.stop_sequences[row], self.stream, row)
                for request_id, row in zip(self.request_ids.tolist(), self.rows.tolist())]


# Answers go back as a TokenBatch, delivered together so the SUT can answer loadgen in one call.
# Called from the backend's own thread; keep it short.
TokenCallback = Callable[[TokenBatch], None]
# (request_id or None for the whole backend, message): the backend failed.
ErrorCallback = Callable[["int | None", str], None]


@dataclass(frozen=True)
class BackendSpec:
    """Everything a backend instance needs to start, picklable so MPI ranks can build their own."""

    backend: BackendConfig
    system: SystemConfig
    checkpoint: str
    instance: int = 0
    # What the replay backend answers with: the benchmark and dataset (other backends ignore them).
    benchmark: str = ""
    dataset: DatasetConfig | None = None


class Backend(Protocol):
    def start(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback) -> None:
        """Load the model and start serving; returns when ready."""

    def submit(self, batch: RequestBatch) -> None:
        """Queue requests; never blocks on generation."""

    def pending(self) -> int:
        """Requests submitted and not yet finished."""

    def stop(self) -> None:
        """Finish nothing more, release resources; idempotent."""
