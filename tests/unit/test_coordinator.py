"""Rank 0's side of an MPI launch (sut/mpi.py Coordinator), with a stand-in communicator."""
from __future__ import annotations


def test_rank_0_takes_the_events_of_ready_ranks_while_others_still_start(monkeypatch):
    """A worker rank that is ready sends its heartbeat (a list of events) while another is still loading its model:
    rank 0, still waiting for that one's READY, delivers the list (an instance's error reaches the SUT) instead of
    failing on it."""
    from llmkit.config.schema import SystemConfig
    from sut import mpi
    from sut.placement import place

    messages = [(mpi.EVENT_READY, 1, None, None), [(mpi.EVENT_ALIVE, 1, None, None)],
                [(mpi.EVENT_ERROR, 1, 0, "instance 0 failed")], (mpi.EVENT_READY, 2, None, None)]

    class Comm:
        def recv(self, source, tag):
            assert tag == mpi.TAG_EVENTS
            return messages.pop(0)

    errors = []
    monkeypatch.setattr(mpi, "comm_world", Comm)
    monkeypatch.setattr(mpi.Coordinator, "_pump", lambda self: None)
    placement = place(SystemConfig(name="cpu", dp=2, tp=1, pp=1), world_size=3, spans_ranks=False)
    coordinator = mpi.Coordinator(placement, print, print, lambda rid, message: errors.append((rid, message)))
    coordinator.wait_ready()
    assert messages == [] and errors == [(None, "rank 1, instance 0: instance 0 failed")]
