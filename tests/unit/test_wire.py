"""The SUT's connections between ranks (sut/wire.py): whole frames, the token before anything is read, and one
sentence when rank 0 cannot be reached."""
from __future__ import annotations

import pickle
import socket
import threading
from dataclasses import replace

import pytest

from sut import wire


def test_frames_arrive_whole_in_order_however_the_bytes_are_cut():
    ours, theirs = socket.socketpair()
    sender, receiver = wire.Frames(ours), wire.Frames(theirs)
    big = bytes(range(256)) * (3 * wire.READ // 256)  # larger than one read
    messages = [("small", i) for i in range(100)] + [("big", big), ("after", None)]
    thread = threading.Thread(target=lambda: [sender.send(m) for m in messages])
    thread.start()
    got = []
    while len(got) < len(messages):
        got += receiver.receive(5.0)
    thread.join()
    assert got == messages
    assert receiver.receive(0.01) == []
    sender.close()
    with pytest.raises(EOFError):
        receiver.receive(5.0)


def accept_in_thread(listener, ranks, timeout_s=10.0):
    accepted = {}
    thread = threading.Thread(target=lambda: accepted.update(listener.accept(ranks, timeout_s)))
    thread.start()
    return thread, accepted


def test_only_a_connection_with_the_jobs_token_is_read(monkeypatch):
    """A stranger's connection (wrong token) is closed before anything it sent is unpickled, and gets no
    acknowledgement; the rank with the token gets through and talks both ways."""
    unpickled = []
    real_loads = pickle.loads
    monkeypatch.setattr(wire.pickle, "loads", lambda data: unpickled.append(data) or real_loads(data))
    listener = wire.Listener()
    thread, accepted = accept_in_thread(listener, {1})
    stranger = socket.create_connection(("127.0.0.1", listener.address.port))
    payload = pickle.dumps("not to be read")
    stranger.sendall(b"x" * wire.TOKEN_BYTES + (1).to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload)
    try:
        assert stranger.recv(1) == b""  # closed, not acknowledged
    except ConnectionResetError:  # closed with its frame unread
        pass
    rank1 = wire.connect(listener.address, 1)
    thread.join(10.0)
    assert set(accepted) == {1} and unpickled == []
    rank1.send(("hello", 1))
    assert accepted[1].receive(5.0) == [("hello", 1)]
    accepted[1].send("stop")
    assert rank1.receive(5.0) == ["stop"]


def test_a_listener_of_another_job_is_not_taken_for_rank_0():
    other = wire.Listener()
    thread, accepted = accept_in_thread(other, {1}, timeout_s=1.0)
    ours = replace(other.address, hosts=("127.0.0.1",), token=b"y" * wire.TOKEN_BYTES)
    with pytest.raises(wire.WireError, match="127.0.0.1: not this job's rank 0"):
        wire.connect(ours, 1)
    thread.join(10.0)
    assert accepted == {}


def test_unreachable_rank_0_is_one_sentence_with_the_fix():
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    address = wire.Address(socket.gethostname(), ("127.0.0.1",), port, b"t" * wire.TOKEN_BYTES)
    with pytest.raises(wire.WireError) as error:
        wire.connect(address, 3)
    message = str(error.value)
    assert message.startswith(f"rank 3 could not reach rank 0 ({socket.gethostname()}) on TCP port {port}")
    assert "127.0.0.1: Connection refused" in message and message.endswith("allow it between the job's nodes")


def test_another_hosts_loopback_is_never_tried():
    address = wire.Address("some-other-node", ("127.0.0.1",), 1, b"t" * wire.TOKEN_BYTES)
    with pytest.raises(wire.WireError, match=r"\(none listed\)"):
        wire.connect(address, 1)
