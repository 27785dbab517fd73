"""The batches the SUT hands its backends: splitting over data-parallel instances, and what travels between ranks."""
from __future__ import annotations

import pickle

import numpy as np

from sut.backends.base import RequestBatch, TokenBatch
from sut.dispatch import Dispatcher


class Recorder:
    def __init__(self):
        self.batches: list[RequestBatch] = []

    def submit(self, batch: RequestBatch) -> None:
        self.batches.append(batch)

    def pending(self) -> int:
        return sum(len(b) for b in self.batches)


def batch(n: int, first_id: int = 0) -> RequestBatch:
    prompts = [np.full(3, i, dtype=np.int32) for i in range(n)]
    return RequestBatch.of(prompts, 8, 2, (2,), stop_sequences=[(9, 9)] * n, first_id=first_id)


def test_round_robin_carries_on_across_batches():
    instances = [Recorder() for _ in range(3)]
    dispatcher = Dispatcher(instances, least_pending=False)
    dispatcher.submit(batch(4))
    dispatcher.submit(batch(2, first_id=4))
    ids = [np.concatenate([b.request_ids for b in i.batches]).tolist() for i in instances]
    assert ids == [[0, 3], [1, 4], [2, 5]]
    # Each share keeps its requests' own rows and prompts.
    share = instances[1].batches[0]
    assert [r.prompt.tolist() for r in share.requests()] == [[1, 1, 1]]


def test_least_pending_goes_to_the_idlest_instance():
    busy, idle = Recorder(), Recorder()
    busy.submit(batch(5))
    Dispatcher([busy, idle], least_pending=True).submit(batch(3, first_id=10))
    assert idle.pending() == 3 and busy.pending() == 5


def test_a_pickled_batch_carries_only_its_own_prompts():
    whole = batch(1000)
    copy = pickle.loads(pickle.dumps(whole.take(np.array([5, 700]))))
    assert set(copy.prompts) == {5, 700} and set(copy.stop_sequences) == {5, 700}
    assert [(r.request_id, r.prompt.tolist(), r.stop_sequence, r.sample_index) for r in copy.requests()] == [
        (5, [5, 5, 5], (9, 9), 5), (700, [700] * 3, (9, 9), 700)]


def test_tokens_travel_without_the_engine_buffer():
    engine_buffer = np.arange(10_000, dtype=np.int32)
    tokens = TokenBatch(np.array([3, 4]), engine_buffer, np.array([9000, 10]), np.array([3, 2]))
    sent = pickle.loads(pickle.dumps(tokens))
    assert sent.buffer.size == 5 and sent.address == sent.buffer.ctypes.data
    assert [(rid, ids.tolist()) for rid, ids in sent.pairs()] == [(3, [9000, 9001, 9002]), (4, [10, 11])]
