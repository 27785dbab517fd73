"""Token accounting: what the SUT may report to loadgen for one query, as a small state machine.

The MLPerf LLM rules (loadgen contract and TEST06):
- payloads are int32 token ids and `n_tokens` equals the number of ids sent;
- a final answer has at least 2 tokens (loadgen cannot compute TPOT from 1);
- at most one trailing EOS;
- in streaming scenarios the first-token payload is reported once, before the final one, and is a prefix of it.
A backend that breaks a rule is a bug in the harness, so violations raise TokenAccountingError.
"""
from __future__ import annotations

from enum import Enum

import numpy as np

MIN_OUTPUT_TOKENS = 2


class TokenAccountingError(RuntimeError):
    pass


class QueryState(str, Enum):
    ISSUED = "issued"
    FIRST_REPORTED = "first_reported"
    COMPLETED = "completed"


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


def trim_trailing_eos(ids: np.ndarray, eos_ids: frozenset[int]) -> np.ndarray:
    """Keep at most one EOS at the end (engines may pad finished sequences with repeated EOS)."""
    if ids.size < 2 or int(ids[-2]) not in eos_ids:
        return ids
    end = ids.size
    while end >= 2 and int(ids[end - 1]) in eos_ids and int(ids[end - 2]) in eos_ids:
        end -= 1
    return ids[:end]


class QueryTokens:
    """The reporting state of one query. `first()` then `final()` in streaming scenarios, `final()` alone otherwise."""

    __slots__ = ("streaming", "eos_ids", "state", "first_ids")

    def __init__(self, streaming: bool, eos_ids: frozenset[int]):
        self.streaming = streaming
        self.eos_ids = eos_ids
        self.state = QueryState.ISSUED
        self.first_ids: np.ndarray | None = None

    def first(self, ids) -> np.ndarray:
        if not self.streaming:
            raise TokenAccountingError("first tokens reported in a scenario that does not stream (Offline)")
        if self.state is not QueryState.ISSUED:
            raise TokenAccountingError(f"first tokens reported when the query is already {self.state.value}")
        first = as_int32(ids)
        if first.size == 0:
            raise TokenAccountingError("first-token payload is empty")
        self.first_ids = first
        self.state = QueryState.FIRST_REPORTED
        return first

    def final(self, ids) -> np.ndarray:
        if self.state is QueryState.COMPLETED:
            raise TokenAccountingError("query completed twice")
        if self.streaming and self.state is not QueryState.FIRST_REPORTED:
            raise TokenAccountingError("final answer before the first tokens in a streaming scenario")
        final = trim_trailing_eos(as_int32(ids), self.eos_ids)
        if final.size < MIN_OUTPUT_TOKENS:
            raise TokenAccountingError(
                f"answer has {final.size} token(s); loadgen needs at least {MIN_OUTPUT_TOKENS} (min_new_tokens)"
            )
        if self.first_ids is not None:
            n = self.first_ids.size
            if final.size < n or not np.array_equal(final[:n], self.first_ids):
                raise TokenAccountingError("final answer does not start with the first tokens already reported")
        self.state = QueryState.COMPLETED
        return final
