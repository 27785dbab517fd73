"""Exhaustive tests of the token-accounting state machine."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from sut.tokens import MIN_OUTPUT_TOKENS, QueryState, QueryTokens, TokenAccountingError, as_int32, trim_trailing_eos

EOS = frozenset({2})
LLAMA_EOS = frozenset({128009, 128001, 128008})


def test_offline_final_only():
    query = QueryTokens(streaming=False, eos_ids=EOS)
    final = query.final([5, 6, 2])
    assert final.dtype == np.int32 and final.tolist() == [5, 6, 2]
    assert query.state is QueryState.COMPLETED


def test_offline_rejects_first_tokens():
    with pytest.raises(TokenAccountingError, match="does not stream"):
        QueryTokens(streaming=False, eos_ids=EOS).first([5])


def test_streaming_first_then_final():
    query = QueryTokens(streaming=True, eos_ids=EOS)
    assert query.first([5]).tolist() == [5]
    assert query.state is QueryState.FIRST_REPORTED
    assert query.final([5, 6, 7]).tolist() == [5, 6, 7]


def test_streaming_final_before_first_is_refused():
    with pytest.raises(TokenAccountingError, match="before the first tokens"):
        QueryTokens(streaming=True, eos_ids=EOS).final([5, 6])


def test_first_must_be_a_prefix_of_final():
    query = QueryTokens(streaming=True, eos_ids=EOS)
    query.first([5, 6])
    with pytest.raises(TokenAccountingError, match="does not start with"):
        query.final([5, 7, 8])


def test_first_longer_than_final_is_refused():
    query = QueryTokens(streaming=True, eos_ids=EOS)
    query.first([5, 6, 7])
    with pytest.raises(TokenAccountingError, match="does not start with"):
        query.final([5, 6])


def test_first_twice_and_final_twice_are_refused():
    query = QueryTokens(streaming=True, eos_ids=EOS)
    query.first([5])
    with pytest.raises(TokenAccountingError, match="already"):
        query.first([5])
    query.final([5, 6])
    with pytest.raises(TokenAccountingError, match="completed twice"):
        query.final([5, 6])


def test_empty_first_payload_is_refused():
    with pytest.raises(TokenAccountingError, match="empty"):
        QueryTokens(streaming=True, eos_ids=EOS).first([])


@pytest.mark.parametrize("n", range(MIN_OUTPUT_TOKENS))
def test_fewer_than_two_tokens_is_refused(n):
    with pytest.raises(TokenAccountingError, match="at least 2"):
        QueryTokens(streaming=False, eos_ids=EOS).final([7] * n)


@pytest.mark.parametrize(
    ("ids", "eos", "expected"),
    [
        ([5, 6, 2], EOS, [5, 6, 2]),
        ([5, 6, 2, 2], EOS, [5, 6, 2]),
        ([5, 6, 2, 2, 2, 2], EOS, [5, 6, 2]),
        ([5, 2, 6], EOS, [5, 2, 6]),
        ([5, 6, 128009, 128009], LLAMA_EOS, [5, 6, 128009]),
        ([5, 6, 128009, 128001], LLAMA_EOS, [5, 6, 128009]),
        ([5, 6, 2, 2], LLAMA_EOS, [5, 6, 2, 2]),
    ],
)
def test_at_most_one_trailing_eos(ids, eos, expected):
    assert QueryTokens(streaming=False, eos_ids=eos).final(ids).tolist() == expected


def test_only_eos_after_trim_is_too_short():
    with pytest.raises(TokenAccountingError, match="at least 2"):
        QueryTokens(streaming=False, eos_ids=EOS).final([2, 2, 2])


def test_trim_keeps_first_prefix_rule():
    query = QueryTokens(streaming=True, eos_ids=EOS)
    query.first([5])
    assert query.final([5, 6, 2, 2]).tolist() == [5, 6, 2]


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint16])
def test_payload_is_int32_with_n_tokens_equal_to_ids(dtype):
    final = QueryTokens(streaming=False, eos_ids=EOS).final(np.array([5, 6, 7], dtype=dtype))
    assert final.dtype == np.int32
    assert final.nbytes == 4 * final.size
    assert final.flags["C_CONTIGUOUS"]


def test_non_integer_and_out_of_range_ids_are_refused():
    with pytest.raises(TokenAccountingError, match="integers"):
        as_int32(np.array([1.5, 2.0]))
    with pytest.raises(TokenAccountingError, match="int32"):
        as_int32(np.array([2**40], dtype=np.int64))
    with pytest.raises(TokenAccountingError, match="one-dimensional"):
        as_int32(np.array([[1, 2]]))


def test_every_event_order_from_every_state():
    """All sequences of up to three events: legal prefixes never raise, only the full legal order completes."""
    events = ("first", "final")
    for streaming in (False, True):
        legal = ["first", "final"] if streaming else ["final"]
        for length in range(1, 4):
            for order in itertools.product(events, repeat=length):
                query = QueryTokens(streaming=streaming, eos_ids=EOS)
                is_prefix = list(order) == legal[: len(order)]
                try:
                    for event in order:
                        getattr(query, event)([5] if event == "first" else [5, 6])
                except TokenAccountingError:
                    assert not is_prefix, (streaming, order)
                else:
                    assert is_prefix, (streaming, order)
                    assert (query.state is QueryState.COMPLETED) == (list(order) == legal)


def test_trim_trailing_eos_on_empty_and_single():
    assert trim_trailing_eos(np.array([], dtype=np.int32), EOS).size == 0
    assert trim_trailing_eos(np.array([2], dtype=np.int32), EOS).tolist() == [2]
