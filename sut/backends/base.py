"""The backend boundary: submit requests; receive a first-tokens event and a final event per request."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from llmkit.config.schema import BackendConfig, DatasetConfig, SystemConfig


class GenerationRequest(NamedTuple):
    # A tuple: the SUT builds one per query on the hot path, and a tuple is the cheapest object to build.
    request_id: int
    prompt: np.ndarray  # int32 token ids
    max_new_tokens: int
    min_new_tokens: int
    eos_ids: tuple[int, ...]
    stop_sequence: tuple[int, ...] | None = None  # generation ends after these tokens (included in the output)
    stream: bool = False  # emit the first generated token as soon as it exists
    sample_index: int = -1  # the dataset row (the replay backend answers with that row's reference)


# A batch of (request_id, token ids) events, delivered together so the SUT can answer loadgen in one call.
# Called from the backend's own thread; keep it short.
TokenEvents = list[tuple[int, np.ndarray]]
TokenCallback = Callable[[TokenEvents], None]
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

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests; never blocks on generation."""

    def pending(self) -> int:
        """Requests submitted and not yet finished."""

    def stop(self) -> None:
        """Finish nothing more, release resources; idempotent."""
