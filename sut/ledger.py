"""The token ledger: what the SUT may report to loadgen, checked for whole batches of answers at numpy speed.

The MLPerf LLM rules (loadgen contract and TEST06):
- payloads are int32 token ids and `n_tokens` equals the number of ids sent;
- a final answer has at least 2 tokens (loadgen cannot compute TPOT from 1);
- at most one trailing EOS;
- in streaming scenarios the first-token payload is reported once, before the final one, and is a prefix of it;
- every issued query is answered exactly once.
A backend that breaks a rule is a bug in the harness, so violations raise TokenAccountingError.

A large batch is checked with a handful of array operations; a small one (one Server query) answer by answer, where
Python is cheaper than numpy's fixed cost per call. Both check the same rules with the same messages, and both end in
the same commit step, which records the new state.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from sut.backends.base import TokenAccountingError, TokenBatch

MIN_OUTPUT_TOKENS = 2
# Query states in the ledger's ring.
FREE, ISSUED, FIRST_REPORTED = 0, 1, 2
# Below this many answers, plain Python per answer costs less than numpy's fixed cost per call.
SMALL_BATCH = 16


def check_layout(tokens: TokenBatch) -> None:
    """The batch's arrays fit together (a broken backend, not a broken answer)."""
    buffer = tokens.buffer
    if buffer.dtype != np.int32 or buffer.ndim != 1 or not buffer.flags.c_contiguous:
        raise TokenAccountingError(f"a token buffer must be one-dimensional contiguous int32, got {buffer.dtype} "
                                   f"with shape {buffer.shape}")
    n = len(tokens)
    if tokens.starts.shape != (n,) or tokens.lengths.shape != (n,):
        raise TokenAccountingError(f"a batch of {n} answers needs {n} starts and {n} lengths, got "
                                   f"{tokens.starts.shape} and {tokens.lengths.shape}")
    if tokens.request_ids.dtype.kind not in "iu":
        raise TokenAccountingError(f"request ids must be integers, got {tokens.request_ids.dtype}")


def _outside_buffer() -> TokenAccountingError:
    return TokenAccountingError("an answer's start or length points outside its token buffer")


# What each broken rule says, shared by the per-answer and the whole-batch checks.
def _never_issued(request: int) -> TokenAccountingError:
    return TokenAccountingError(f"request {request} was never issued")


def _twice_in_batch(request: int) -> TokenAccountingError:
    return TokenAccountingError(f"request {request} is answered twice in one batch")


def _wrong_state(request: int, found: int, wanted: int) -> TokenAccountingError:
    if found == FREE:
        return TokenAccountingError(f"request {request} answered after it was completed (completed twice)")
    if wanted == FIRST_REPORTED:
        return TokenAccountingError(f"final answer to request {request} before its first tokens in a streaming "
                                    "scenario")
    return TokenAccountingError(f"first tokens of request {request} reported when they were already reported")


def _empty_first(request: int) -> TokenAccountingError:
    return TokenAccountingError(f"first-token payload of request {request} is empty")


def _too_short(request: int, length: int) -> TokenAccountingError:
    return TokenAccountingError(f"answer to request {request} has {length} token(s); loadgen needs at least "
                                f"{MIN_OUTPUT_TOKENS} (min_new_tokens)")


def _not_prefix(request: int) -> TokenAccountingError:
    return TokenAccountingError(f"final answer to request {request} does not start with the first tokens already "
                                "reported")


def _trimmed_end(buffer: np.ndarray, start: int, end: int, eos: frozenset[int]) -> int:
    """The end of an answer cut to at most one trailing EOS (engines may pad finished sequences with EOS)."""
    while end - start >= 2 and int(buffer[end - 1]) in eos and int(buffer[end - 2]) in eos:
        end -= 1
    return end


class TokenLedger:
    """Every query's reporting state, in a ring indexed by request id.

    Request ids count up from 0 and are never reused, so an answer for a query already completed is recognised
    even after its place in the ring holds another query. The ring only holds queries in flight: it doubles when
    issuing would overwrite one, and otherwise keeps its size however long the run.

    A large batch is checked with array operations; a small one (one Server query) answer by answer, where
    Python is cheaper than numpy's fixed cost per call. Both apply the same rules with the same messages.
    """

    SMALL_BATCH = SMALL_BATCH

    def __init__(self, streaming: bool, eos_ids: Iterable[int], capacity: int = 1 << 16):
        self.streaming = streaming
        self.eos = frozenset(int(e) for e in eos_ids)
        self._eos_list = sorted(self.eos)
        self._next = 0
        self.outstanding = 0
        self._allocate(capacity)
        self._long_firsts: dict[int, np.ndarray] = {}  # first payloads of more than one token, by request id

    @property
    def capacity(self) -> int:
        """Queries the ring can hold in flight before it grows."""
        return self._capacity

    def _allocate(self, capacity: int) -> None:
        self._capacity, self._mask = capacity, capacity - 1
        self._state = np.zeros(capacity, dtype=np.uint8)
        # A list, not an array: loadgen's ids arrive and leave as Python ints, and whole slices copy cheaply.
        self._loadgen_ids: list[int] = [0] * capacity
        self._first_token = np.zeros(capacity, dtype=np.int32)
        self._first_length = np.zeros(capacity, dtype=np.int64)
        self._scratch = np.zeros(capacity, dtype=np.int64)

    # issuing ---------------------------------------------------------------------------------------
    def issue(self, loadgen_ids: Sequence[int]) -> np.ndarray:
        """Record newly issued queries; returns their request ids."""
        n, first = len(loadgen_ids), self._next
        ids = np.arange(first, first + n, dtype=np.int64)
        if n == 1:
            if self._state[first & self._mask] != FREE:
                self._grow(1)
            position = first & self._mask
            self._state[position], self._first_length[position] = ISSUED, 0
            self._loadgen_ids[position] = loadgen_ids[0]
        else:
            if n > self._capacity or any(self._state[ring].any() for ring, _ in self._spans(first, n)):
                self._grow(n)
            for ring, new in self._spans(first, n):
                self._state[ring] = ISSUED
                self._first_length[ring] = 0
                self._loadgen_ids[ring] = loadgen_ids[new]
        self._next += n
        self.outstanding += n
        return ids

    def _spans(self, first: int, n: int) -> list[tuple[slice, slice]]:
        """(ring slice, slice of the n new ids) for ids first..first+n-1: one span, or two where the ring wraps."""
        start = first & self._mask
        head = min(n, self._capacity - start)
        spans = [(slice(start, start + head), slice(0, head))]
        if head < n:
            spans.append((slice(0, n - head), slice(head, n)))
        return spans

    def _grow(self, n: int) -> None:
        """A ring at least twice the span from the oldest query in flight to the newest after issuing n more."""
        live = np.flatnonzero(self._state != FREE)
        ids = self._next - 1 - ((self._next - 1 - live) % self._capacity)
        oldest = int(ids.min()) if ids.size else self._next
        capacity = self._capacity
        while capacity < 2 * (self._next + n - oldest):
            capacity *= 2
        old = (self._state[live], self._first_token[live], self._first_length[live])
        old_loadgen_ids = [self._loadgen_ids[position] for position in live.tolist()]
        self._allocate(capacity)
        positions = ids & self._mask
        self._state[positions], self._first_token[positions], self._first_length[positions] = old
        for position, loadgen_id in zip(positions.tolist(), old_loadgen_ids):
            self._loadgen_ids[position] = loadgen_id

    def _loadgen_ids_at(self, positions: np.ndarray) -> list[int]:
        start, n = int(positions[0]), positions.size
        if int(positions[-1]) - start == n - 1 and (n < 3 or (np.diff(positions) == 1).all()):
            return self._loadgen_ids[start:start + n]  # answered in the order issued: one slice
        return list(map(self._loadgen_ids.__getitem__, positions.tolist()))

    # answering -------------------------------------------------------------------------------------
    def first(self, tokens: TokenBatch) -> list[int]:
        """Check first-token payloads; returns the loadgen ids to report them for."""
        if not self.streaming:
            raise TokenAccountingError("first tokens reported in a scenario that does not stream (Offline)")
        if len(tokens) < self.SMALL_BATCH:
            return self._small_first(tokens)
        positions = self._positions(tokens, ISSUED)
        lengths = tokens.lengths
        if lengths.min() == 0:
            raise _empty_first(self._first_bad(tokens, lengths == 0))
        long_payloads = {int(tokens.request_ids[row]): tokens.buffer[tokens.starts[row]:tokens.starts[row] + lengths[row]]
                         for row in np.flatnonzero(lengths > 1).tolist()}
        return self._commit_first(positions, tokens.buffer[tokens.starts], lengths, long_payloads)

    def final(self, tokens: TokenBatch) -> tuple[list[int], np.ndarray]:
        """Check final answers and complete their queries; returns the loadgen ids and the lengths to report
        (each answer cut to at most one trailing EOS)."""
        if len(tokens) < self.SMALL_BATCH:
            return self._small_final(tokens)
        positions = self._positions(tokens, FIRST_REPORTED if self.streaming else ISSUED)
        lengths = self._trimmed_lengths(tokens)
        if lengths.min() < MIN_OUTPUT_TOKENS:
            row = int(np.flatnonzero(lengths < MIN_OUTPUT_TOKENS)[0])
            raise _too_short(int(tokens.request_ids[row]), int(lengths[row]))
        long_ids = self._check_prefixes(tokens, positions, lengths) if self.streaming else []
        return self._commit_final(positions, long_ids), lengths

    # the commit step, shared by both check paths ---------------------------------------------------------
    def _commit_first(self, positions: np.ndarray, first_tokens, lengths, long_payloads: dict) -> list[int]:
        """Record checked first-token payloads (the first token and the length of each, the whole payload where it
        is longer than one token); returns their loadgen ids."""
        self._first_token[positions] = first_tokens
        self._first_length[positions] = lengths
        for request, payload in long_payloads.items():
            self._long_firsts[request] = payload.copy()
        self._state[positions] = FIRST_REPORTED
        return self._loadgen_ids_at(positions)

    def _commit_final(self, positions: np.ndarray, long_ids: Iterable[int]) -> list[int]:
        """Complete checked queries: their places in the ring are free again; returns their loadgen ids."""
        for request in long_ids:
            del self._long_firsts[request]
        self._state[positions] = FREE
        self.outstanding -= positions.size
        return self._loadgen_ids_at(positions)

    # whole batches -----------------------------------------------------------------------------------
    def _positions(self, tokens: TokenBatch, wanted: int) -> np.ndarray:
        """Ring positions of the batch's requests, after checking each was issued, is answered once in the batch
        and is in the `wanted` state."""
        check_layout(tokens)
        ids, starts, lengths = tokens.request_ids, tokens.starts, tokens.lengths
        if starts.min() < 0 or lengths.min() < 0 or (starts + lengths).max() > tokens.buffer.size:
            raise _outside_buffer()
        lowest, highest = int(ids.min()), int(ids.max())
        if lowest < 0 or highest >= self._next:
            raise _never_issued(self._first_bad(tokens, (ids < 0) | (ids >= self._next)))
        positions = ids & self._mask
        if not (ids[1:] > ids[:-1]).all():  # ids in increasing order are distinct; otherwise look for a repeat
            order = np.arange(ids.size)
            self._scratch[positions] = order
            kept = self._scratch[positions]
            # The same place twice is the same request twice unless one is older than the ring (checked below)
            twice = (kept != order) & (ids[kept] == ids)
            if twice.any():
                raise _twice_in_batch(self._first_bad(tokens, twice))
        state = self._state[positions]
        oldest_in_ring = self._next - self._capacity
        if lowest < oldest_in_ring:  # ids older than the ring's span were completed before it last wrapped
            state = np.where(ids < oldest_in_ring, FREE, state)
        bad = state != wanted
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _wrong_state(int(ids[row]), int(state[row]), wanted)
        return positions

    # small batches, answer by answer -----------------------------------------------------------------
    def _small_rows(self, tokens: TokenBatch, wanted: int) -> list[tuple[int, int, int, int]]:
        """(request id, ring position, start, length) of each answer, checked in the order _positions checks a
        batch, so that both report the same broken rule."""
        check_layout(tokens)
        size, oldest_in_ring = tokens.buffer.size, self._next - self._capacity
        rows = list(zip(tokens.request_ids.tolist(), tokens.starts.tolist(), tokens.lengths.tolist()))
        for _, start, length in rows:
            if start < 0 or length < 0 or start + length > size:
                raise _outside_buffer()
        for request, _, _ in rows:
            if request < 0 or request >= self._next:
                raise _never_issued(request)
        if len({request for request, _, _ in rows}) < len(rows):
            counts = Counter(request for request, _, _ in rows)
            raise _twice_in_batch(next(request for request, _, _ in rows if counts[request] > 1))
        checked = []
        for request, start, length in rows:
            position = request & self._mask
            # Ids older than the ring's span were completed before it last wrapped.
            found = FREE if request < oldest_in_ring else int(self._state[position])
            if found != wanted:
                raise _wrong_state(request, found, wanted)
            checked.append((request, position, start, length))
        return checked

    def _small_first(self, tokens: TokenBatch) -> list[int]:
        rows, buffer = self._small_rows(tokens, ISSUED), tokens.buffer
        for request, _, _, length in rows:
            if length == 0:
                raise _empty_first(request)
        # Committed item by item (every rule was checked above): right after a poller wakes, each numpy call on
        # whole positions costs tens of microseconds, an item a fraction of one.
        first_token, first_length, state, loadgen_ids = (self._first_token, self._first_length, self._state,
                                                         self._loadgen_ids)
        answered = []
        for request, position, start, length in rows:
            first_token[position], first_length[position] = buffer[start], length
            if length > 1:
                self._long_firsts[request] = buffer[start:start + length].copy()
            state[position] = FIRST_REPORTED
            answered.append(loadgen_ids[position])
        return answered

    def _small_final(self, tokens: TokenBatch) -> tuple[list[int], np.ndarray]:
        rows = self._small_rows(tokens, FIRST_REPORTED if self.streaming else ISSUED)
        buffer = tokens.buffer
        lengths = [_trimmed_end(buffer, start, start + length, self.eos) - start for _, _, start, length in rows]
        for (request, _, _, _), length in zip(rows, lengths):
            if length < MIN_OUTPUT_TOKENS:
                raise _too_short(request, length)
        long_ids = []
        if self.streaming:
            for (request, position, start, _), length in zip(rows, lengths):
                first_length = int(self._first_length[position])
                if length < first_length or int(buffer[start]) != int(self._first_token[position]) or (
                        first_length > 1
                        and not np.array_equal(buffer[start:start + first_length], self._long_firsts[request])):
                    raise _not_prefix(request)
                if first_length > 1:
                    long_ids.append(request)
        for request in long_ids:  # committed item by item, as in _small_first
            del self._long_firsts[request]
        state, loadgen_ids = self._state, self._loadgen_ids
        for _, position, _, _ in rows:
            state[position] = FREE
        self.outstanding -= len(rows)
        return [loadgen_ids[position] for _, position, _, _ in rows], np.array(lengths, dtype=np.int64)

    def _is_eos(self, values: np.ndarray) -> np.ndarray:
        hit = values == self._eos_list[0]
        for eos in self._eos_list[1:]:
            hit |= values == eos
        return hit

    def _trimmed_lengths(self, tokens: TokenBatch) -> np.ndarray:
        """Lengths with repeated trailing EOS cut to one, for a whole batch."""
        lengths = tokens.lengths
        rows = np.flatnonzero(lengths >= 2) if lengths.min() < 2 else slice(None)
        last = (tokens.starts + lengths)[rows] - 1
        doubled = self._is_eos(tokens.buffer[last]) & self._is_eos(tokens.buffer[last - 1])
        if not doubled.any():
            return lengths
        rows = np.arange(lengths.size)[rows][doubled]
        lengths = lengths.copy()
        for row, end in zip(rows.tolist(), (last[doubled] + 1).tolist()):  # rare: answers padded with EOS
            start = int(tokens.starts[row])
            lengths[row] = _trimmed_end(tokens.buffer, start, end, self.eos) - start
        return lengths

    def _check_prefixes(self, tokens: TokenBatch, positions: np.ndarray, lengths: np.ndarray) -> list[int]:
        """Check each final answer starts with its first tokens; returns the requests with long first payloads."""
        first_lengths = self._first_length[positions]
        mismatch = (lengths < first_lengths) | (tokens.buffer[tokens.starts] != self._first_token[positions])
        long_rows = np.flatnonzero(first_lengths > 1).tolist()
        for row in long_rows:
            first, start = self._long_firsts[int(tokens.request_ids[row])], tokens.starts[row]
            if not mismatch[row] and not np.array_equal(tokens.buffer[start:start + first.size], first):
                mismatch[row] = True
        if mismatch.any():
            raise _not_prefix(self._first_bad(tokens, mismatch))
        return [int(tokens.request_ids[row]) for row in long_rows]

    @staticmethod
    def _first_bad(tokens: TokenBatch, bad: np.ndarray) -> int:
        return int(tokens.request_ids[int(np.flatnonzero(bad)[0])])
