"""Rank 0's side of an MPI launch (sut/mpi.py Coordinator), over real connections (socket pairs) and a stand-in
communicator for the followers' word."""
from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from llmkit.config.schema import SystemConfig
from sut import mpi
from sut.backends.base import RequestBatch
from sut.placement import place
from sut.wire import Frames


class Listener:
    """Hands rank 0 its side of one socket pair per serving rank; the test keeps the ranks' sides."""

    def __init__(self, ranks):
        self.ranks = {}
        self._ours = {}
        for rank in ranks:
            ours, theirs = socket.socketpair()
            self._ours[rank], self.ranks[rank] = Frames(ours), Frames(theirs)

    def accept(self, ranks, timeout_s):
        assert ranks == set(self._ours)
        return dict(self._ours)


class Comm:
    def __init__(self, size):
        self.size, self.sent = size, []

    def Get_size(self):
        return self.size

    def send(self, message, dest, tag):
        self.sent.append((dest, tag))


@pytest.fixture
def aborts(monkeypatch):
    """abort_job's messages; the thread that aborts ends (SystemExit, as os._exit would end it)."""
    messages = []

    def abort(message):
        messages.append(message)
        raise SystemExit(mpi.BACKEND_FAILED_EXIT_CODE)

    monkeypatch.setattr(mpi, "abort_job", abort)
    monkeypatch.setattr(mpi, "_workers_stopped", threading.Event())
    return messages


def coordinator_of(placement, listener, **callbacks):
    on_first, on_final = callbacks.get("on_first", print), callbacks.get("on_final", print)
    return mpi.Coordinator(placement, listener, on_first, on_final, callbacks.get("on_error", print))


def test_rank_0_takes_the_events_of_ready_ranks_while_others_still_start(aborts):
    """A worker rank that is ready sends its heartbeat and events while another is still loading its model: rank 0,
    still waiting for that one's READY, delivers them (an instance's error reaches the SUT)."""
    placement = place(SystemConfig(name="cpu", dp=2, tp=1, pp=1), world_size=3, spans_ranks=False)
    listener, errors = Listener([1, 2]), []
    coordinator = coordinator_of(placement, listener, on_error=lambda rid, message: errors.append((rid, message)))
    listener.ranks[1].send([(mpi.EVENT_READY, 1, None, None)])
    listener.ranks[1].send([(mpi.EVENT_ALIVE, 1, None, None)])
    listener.ranks[1].send([(mpi.EVENT_ERROR, 1, 0, "instance 0 failed")])
    listener.ranks[2].send([(mpi.EVENT_READY, 2, None, None)])
    coordinator.wait_ready()
    assert errors == [(None, "rank 1, instance 0: instance 0 failed")]
    for rank in (1, 2):  # the ranks stop, so that the receiving thread ends with the test
        listener.ranks[rank].send([(mpi.EVENT_STATS, rank, None, [])])
    coordinator._thread.join(5.0)
    assert not coordinator._thread.is_alive()


def test_a_rank_that_cannot_start_its_backend_ends_the_job_naming_it(aborts):
    placement = place(SystemConfig(name="cpu", dp=1, tp=1, pp=1), world_size=2, spans_ranks=False)
    listener = Listener([1])
    coordinator = coordinator_of(placement, listener)
    listener.ranks[1].send([(mpi.EVENT_ERROR, 1, None, "OSError: no such engine")])
    with pytest.raises(SystemExit):
        coordinator.wait_ready()
    assert aborts == ["rank 1 could not start its backend: OSError: no such engine"]


def test_requests_go_to_the_instance_host_and_answers_come_back_until_stop(aborts, monkeypatch):
    """Leader placement: rank 1 hosts the instance, rank 2 follows. Requests reach rank 1 over its connection, the
    answers are delivered and counted; stop collects rank 1's figures and tells only the follower over MPI."""
    from sut.backends.base import TokenBatch

    placement = place(SystemConfig(name="cpu", dp=1, tp=2, pp=1), world_size=3, spans_ranks=True)
    comm = Comm(3)
    listener, finals, answered = Listener([1]), [], threading.Event()
    coordinator = coordinator_of(placement, listener, on_final=lambda tokens: (finals.append(tokens), answered.set()))
    rank1 = listener.ranks[1]
    rank1.send([(mpi.EVENT_READY, 1, None, None)])
    coordinator.wait_ready()
    coordinator.instances[0].submit(RequestBatch.of([np.array([5, 6], dtype=np.int32)], 4, 1, (2,)))
    (index, batch), = rank1.receive(5.0)
    assert index == 0 and batch.request_ids.tolist() == [0] and coordinator.instances[0].pending() == 1
    answer = TokenBatch(batch.request_ids, np.array([7, 2], dtype=np.int32), np.array([0]), np.array([2]))
    rank1.send([(mpi.EVENT_FINAL, 1, 0, answer)])
    assert answered.wait(5.0)

    def rank_1_stops():
        assert rank1.receive(5.0) == [mpi.STOP]
        rank1.send([(mpi.EVENT_STATS, 1, None, [{"instance": 0}])])
        rank1.close()

    worker = threading.Thread(target=rank_1_stops)
    worker.start()
    monkeypatch.setattr(mpi, "comm_world", lambda: comm)  # the followers' word goes over MPI
    assert coordinator.stop() == [{"instance": 0}]
    worker.join()
    assert [b.request_ids.tolist() for b in finals] == [[0]] and coordinator.instances[0].pending() == 0
    assert comm.sent == [(2, mpi.TAG_STOP)] and mpi.workers_stopped()


# The receiving thread ends with the stand-in abort's SystemExit (the real one ends the process).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_rank_whose_connection_closes_ends_the_job_naming_it(aborts):
    """A serving rank's process ends (its connection closes) before it was told to stop: rank 0 ends the job at
    once, naming the rank and its instances, instead of waiting out the silence."""
    placement = place(SystemConfig(name="cpu", dp=2, tp=1, pp=1), world_size=3, spans_ranks=False)
    listener = Listener([1, 2])
    coordinator = coordinator_of(placement, listener)
    for rank in (1, 2):
        listener.ranks[rank].send([(mpi.EVENT_READY, rank, None, None)])
    coordinator.wait_ready()
    listener.ranks[2].close()
    coordinator._thread.join(5.0)
    assert len(aborts) == 1 and aborts[0].startswith("rank 2 (instances 1) closed its connection to rank 0: its "
                                                     "process ended or was killed"), aborts
