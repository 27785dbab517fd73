"""Exhaustive tests of token accounting: the ledger's rules for one query, and the same rules over whole batches."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from sut.backends.base import TokenAccountingError, TokenBatch, as_int32
from sut.ledger import MIN_OUTPUT_TOKENS, TokenLedger

EOS = frozenset({2})
LLAMA_EOS = frozenset({128009, 128001, 128008})


@pytest.fixture(autouse=True, params=["answer by answer", "whole batch"])
def check_path(request, monkeypatch):
    """Every rule is checked on both of the ledger's paths: Python per answer (small batches) and array operations
    over the whole batch."""
    monkeypatch.setattr(TokenLedger, "SMALL_BATCH", 10**9 if request.param == "answer by answer" else 0)
    return request.param


def answer(request_id: int, ids) -> TokenBatch:
    return TokenBatch.from_pairs([(request_id, ids)])


def issued(streaming: bool, eos=EOS, n: int = 1) -> tuple[TokenLedger, np.ndarray]:
    ledger = TokenLedger(streaming, eos)
    return ledger, ledger.issue([1000 + i for i in range(n)])


def test_offline_final_only():
    ledger, (rid,) = issued(streaming=False)
    loadgen_ids, lengths = ledger.final(answer(rid, [5, 6, 2]))
    assert loadgen_ids == [1000] and lengths.tolist() == [3]
    assert ledger.outstanding == 0


def test_offline_rejects_first_tokens():
    ledger, (rid,) = issued(streaming=False)
    with pytest.raises(TokenAccountingError, match="does not stream"):
        ledger.first(answer(rid, [5]))


def test_streaming_first_then_final():
    ledger, (rid,) = issued(streaming=True)
    assert ledger.first(answer(rid, [5])) == [1000]
    assert ledger.final(answer(rid, [5, 6, 7]))[1].tolist() == [3]


def test_streaming_final_before_first_is_refused():
    ledger, (rid,) = issued(streaming=True)
    with pytest.raises(TokenAccountingError, match="before its first tokens"):
        ledger.final(answer(rid, [5, 6]))


@pytest.mark.parametrize(("first", "final"), [([5, 6], [5, 7, 8]), ([9], [5, 6]), ([5, 6, 7], [5, 6])])
def test_first_must_be_a_prefix_of_final(first, final):
    ledger, (rid,) = issued(streaming=True)
    ledger.first(answer(rid, first))
    with pytest.raises(TokenAccountingError, match="does not start with"):
        ledger.final(answer(rid, final))


def test_first_twice_and_final_twice_are_refused():
    ledger, (rid,) = issued(streaming=True)
    ledger.first(answer(rid, [5]))
    with pytest.raises(TokenAccountingError, match="already reported"):
        ledger.first(answer(rid, [5]))
    ledger.final(answer(rid, [5, 6]))
    with pytest.raises(TokenAccountingError, match="completed twice"):
        ledger.final(answer(rid, [5, 6]))


def test_empty_first_payload_is_refused():
    ledger, (rid,) = issued(streaming=True)
    with pytest.raises(TokenAccountingError, match="empty"):
        ledger.first(answer(rid, []))


@pytest.mark.parametrize("n", range(MIN_OUTPUT_TOKENS))
def test_fewer_than_two_tokens_is_refused(n):
    ledger, (rid,) = issued(streaming=False)
    with pytest.raises(TokenAccountingError, match="at least 2"):
        ledger.final(answer(rid, [7] * n))


TRIM_CASES = [
    ([5, 6, 2], EOS, [5, 6, 2]),
    ([5, 6, 2, 2], EOS, [5, 6, 2]),
    ([5, 6, 2, 2, 2, 2], EOS, [5, 6, 2]),
    ([5, 2, 6], EOS, [5, 2, 6]),
    ([5, 6, 128009, 128009], LLAMA_EOS, [5, 6, 128009]),
    ([5, 6, 128009, 128001], LLAMA_EOS, [5, 6, 128009]),
    ([5, 6, 2, 2], LLAMA_EOS, [5, 6, 2, 2]),
]


@pytest.mark.parametrize(("ids", "eos", "expected"), TRIM_CASES)
def test_at_most_one_trailing_eos(ids, eos, expected):
    ledger, (rid,) = issued(streaming=False, eos=eos)
    assert ledger.final(answer(rid, ids))[1].tolist() == [len(expected)]


def test_a_batch_is_trimmed_answer_by_answer():
    ledger = TokenLedger(False, EOS | LLAMA_EOS)
    cases = [ids for ids, eos, _ in TRIM_CASES if eos is EOS] * 3
    rids = ledger.issue(list(range(len(cases))))
    tokens = TokenBatch.from_pairs(list(zip(rids.tolist(), cases)))
    _, lengths = ledger.final(tokens)
    expected = [len(e) for ids, eos, e in TRIM_CASES if eos is EOS] * 3
    assert lengths.tolist() == expected and ledger.outstanding == 0


def test_only_eos_after_trim_is_too_short():
    ledger, (rid,) = issued(streaming=False)
    with pytest.raises(TokenAccountingError, match="at least 2"):
        ledger.final(answer(rid, [2, 2, 2]))


def test_trim_keeps_first_prefix_rule():
    ledger, (rid,) = issued(streaming=True)
    ledger.first(answer(rid, [5]))
    assert ledger.final(answer(rid, [5, 6, 2, 2]))[1].tolist() == [3]


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint16])
def test_payload_is_int32_with_n_tokens_equal_to_ids(dtype):
    tokens = answer(0, np.array([5, 6, 7], dtype=dtype))
    assert tokens.buffer.dtype == np.int32 and tokens.buffer.flags["C_CONTIGUOUS"]
    assert tokens.lengths.tolist() == [3] and tokens.buffer.nbytes == 4 * 3


def test_non_integer_and_out_of_range_ids_are_refused():
    with pytest.raises(TokenAccountingError, match="integers"):
        as_int32(np.array([1.5, 2.0]))
    with pytest.raises(TokenAccountingError, match="int32"):
        as_int32(np.array([2**40], dtype=np.int64))
    with pytest.raises(TokenAccountingError, match="one-dimensional"):
        as_int32(np.array([[1, 2]]))


def test_answers_as_python_lists_take_the_array_module_path_with_the_same_checks():
    """A runtime's answers (lists or tuples of ints) skip numpy per answer; the batch is the same, its address is its
    buffer's, and a float or an id beyond int32 is refused as from arrays."""
    tokens = TokenBatch.from_pairs([(3, [5, 6]), (4, (7,)), (9, [])])
    assert tokens.buffer.dtype == np.int32 and tokens.buffer.tolist() == [5, 6, 7]
    assert tokens.starts.tolist() == [0, 2, 3] and tokens.lengths.tolist() == [2, 1, 0]
    assert tokens.request_ids.tolist() == [3, 4, 9] and tokens.address == tokens.buffer.ctypes.data
    with pytest.raises(TokenAccountingError, match="integers"):
        TokenBatch.from_pairs([(0, [5]), (1, [1.5])])
    with pytest.raises(TokenAccountingError, match="int32"):
        TokenBatch.from_pairs([(0, [2**40])])


def test_every_event_order_from_every_state():
    """All sequences of up to three events: legal prefixes never raise, only the full legal order completes."""
    events = ("first", "final")
    for streaming in (False, True):
        legal = ["first", "final"] if streaming else ["final"]
        for length in range(1, 4):
            for order in itertools.product(events, repeat=length):
                ledger, (rid,) = issued(streaming)
                is_prefix = list(order) == legal[: len(order)]
                try:
                    for event in order:
                        getattr(ledger, event)(answer(rid, [5] if event == "first" else [5, 6]))
                except TokenAccountingError:
                    assert not is_prefix, (streaming, order)
                else:
                    assert is_prefix, (streaming, order)
                    assert (ledger.outstanding == 0) == (list(order) == legal)


def test_unknown_and_duplicate_requests_are_refused():
    ledger, rids = issued(streaming=False, n=3)
    with pytest.raises(TokenAccountingError, match="request 3 was never issued"):
        ledger.final(answer(3, [5, 6]))
    with pytest.raises(TokenAccountingError, match="request 1 is answered twice in one batch"):
        ledger.final(TokenBatch.from_pairs([(1, [5, 6]), (0, [5, 6]), (1, [5, 6])]))


def test_an_answer_outside_its_buffer_is_refused():
    ledger, (rid,) = issued(streaming=False)
    bad = TokenBatch(np.array([rid]), np.array([5, 6], dtype=np.int32), np.array([1]), np.array([2]))
    with pytest.raises(TokenAccountingError, match="outside its token buffer"):
        ledger.final(bad)


def test_the_ring_keeps_its_size_over_a_long_run_and_knows_old_requests():
    ledger = TokenLedger(False, EOS, capacity=8)
    first = ledger.issue([7])
    ledger.final(answer(int(first[0]), [5, 6]))
    for step in range(1000):  # a long run with 3 queries in flight at a time
        rids = ledger.issue([10 * step + i for i in range(3)])
        loadgen_ids, _ = ledger.final(TokenBatch.from_pairs([(int(r), [5, 6]) for r in rids[::-1]]))
        assert loadgen_ids == [10 * step + i for i in (2, 1, 0)]
    assert ledger.capacity == 8 and ledger.outstanding == 0
    with pytest.raises(TokenAccountingError, match="completed twice"):
        ledger.final(answer(int(first[0]), [5, 6]))  # its ring position has been reused many times since


def test_the_ring_grows_around_queries_still_in_flight():
    ledger = TokenLedger(True, EOS, capacity=4)
    old = ledger.issue([1, 2])
    ledger.first(TokenBatch.from_pairs([(int(old[0]), [5, 9]), (int(old[1]), [5])]))
    new = ledger.issue(list(range(100, 120)))  # would overwrite the two in flight: the ring grows
    assert ledger.capacity >= 2 * 22
    ledger.first(TokenBatch.from_pairs([(int(r), [5]) for r in new]))
    loadgen_ids, _ = ledger.final(TokenBatch.from_pairs([(int(r), [5, 6]) for r in new]))
    assert loadgen_ids == list(range(100, 120))
    with pytest.raises(TokenAccountingError, match="does not start with"):
        ledger.final(answer(int(old[0]), [5, 6]))  # its two-token first payload survived the move
    loadgen_ids, _ = ledger.final(answer(int(old[1]), [5, 6, 2]))
    assert loadgen_ids == [2]


def test_pointers_into_a_shared_buffer_and_the_packed_copy_that_travels():
    import pickle

    buffer = np.arange(20, dtype=np.int32)
    tokens = TokenBatch(np.array([4, 5]), buffer, np.array([10, 2]), np.array([3, 2]))
    assert tokens.pointers().tolist() == [buffer.ctypes.data + 40, buffer.ctypes.data + 8]
    sent = pickle.loads(pickle.dumps(tokens))
    assert [(rid, ids.tolist()) for rid, ids in sent.pairs()] == [(4, [10, 11, 12]), (5, [2, 3])]
    assert sent.buffer.size == 5 and sent.starts.tolist() == [0, 3] and sent.address == sent.buffer.ctypes.data


def _outcome(ledger_path: int, streaming: bool, script: list, issued_first: int = 20) -> list:
    """Run a script of (event, [(request index, ids)...]) on a fresh ledger; each step's result or error text. An
    ("issue", k) step issues k more queries: in a ring of 4, completed requests then share places with live ones."""
    ledger = TokenLedger(streaming, EOS | {7}, capacity=4)
    ledger.SMALL_BATCH = ledger_path
    rids = ledger.issue(list(range(500, 500 + issued_first))).tolist() + [10**6]  # the last is never issued
    outcome: list = []
    for event, arg in script:
        if event == "issue":
            rids[-1:-1] = ledger.issue(list(range(600 + len(rids), 600 + len(rids) + arg))).tolist()
            continue
        tokens = TokenBatch.from_pairs([(rids[i % len(rids)], ids) for i, ids in arg])
        try:
            result = getattr(ledger, event)(tokens)
            outcome.append(result if event == "first" else (result[0], result[1].tolist()))
        except TokenAccountingError as error:
            outcome.append(str(error))
    return outcome + [ledger.outstanding]


def test_both_paths_agree_on_random_scripts():
    rng = np.random.default_rng(0)
    vocab = [2, 7, 5, 6, 9]
    for _ in range(300):
        streaming = bool(rng.integers(2))
        script = []
        for _ in range(rng.integers(1, 5)):
            event = "first" if streaming and rng.random() < 0.5 else "final"
            indices = rng.integers(0, 21, rng.integers(1, 6)).tolist()
            script.append((event, [(i, rng.choice(vocab, rng.integers(0, 6)).tolist()) for i in indices]))
        assert _outcome(10**9, streaming, script) == _outcome(0, streaming, script), script


def test_a_completed_request_sharing_a_ring_place_with_a_live_one_is_named_alike_on_both_paths():
    """Request 0 completed, then request 4 took its place in a ring of 4: a batch answering 4 and 0 (out of order) is
    refused for answering 0 again on both paths, not as one request answered twice within the batch."""
    messages = []
    for path in (10**9, 0):
        ledger = TokenLedger(False, EOS, capacity=4)
        ledger.SMALL_BATCH = path
        ids = ledger.issue([10, 11, 12, 13]).tolist()
        ledger.final(answer(ids[0], [5, 6, 2]))
        (late,) = ledger.issue([14]).tolist()
        assert late & 3 == ids[0] & 3  # the same place in the ring
        with pytest.raises(TokenAccountingError) as error:
            ledger.final(TokenBatch.from_pairs([(late, [5, 6, 2]), (ids[0], [5, 6, 2])]))
        messages.append(str(error.value))
    assert messages[0] == messages[1] and f"request {ids[0]}" in messages[0], messages


def test_both_paths_agree_while_the_ring_wraps():
    rng = np.random.default_rng(1)
    vocab = [2, 7, 5, 6, 9]
    for _ in range(300):
        streaming = bool(rng.integers(2))
        script: list = []
        for _ in range(rng.integers(2, 9)):
            if rng.random() < 0.35:
                script.append(("issue", int(rng.integers(1, 3))))
                continue
            event = "first" if streaming and rng.random() < 0.5 else "final"
            indices = rng.integers(0, 12, rng.integers(1, 5)).tolist()
            script.append((event, [(i, rng.choice(vocab, rng.integers(0, 6)).tolist()) for i in indices]))
        assert _outcome(10**9, streaming, script, 2) == _outcome(0, streaming, script, 2), script
