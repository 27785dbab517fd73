"""The SUT's hot path between rank 0 and the serving ranks of an MPI launch: length-prefixed pickled frames over a
TCP connection, read by a thread blocked in the kernel. It wakes when a frame arrives and takes the GIL once for
it, where an MPI receive would have to be polled (every poll a GIL round and a nap added to each hop). MPI keeps the
start-up (the spec's broadcast carries this listener's Address) and the followers' wait for the end.

Only a connection that has presented the job's token (raw bytes, compared before anything is unpickled) is read,
and a serving rank reads only from the listener that acknowledged its token.
"""
from __future__ import annotations

import hmac
import math
import pickle
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass

BUFFER = 8 << 20  # socket buffers: a busy iteration's events never wait for the reader
READ = 1 << 20  # read at most this much at once
CONNECT_TIMEOUT_S = 5.0
TOKEN_BYTES = 16
ACK = b"\x06"


class WireError(RuntimeError):
    """A rank could not reach rank 0 (the message names the addresses and the fix)."""


class Frames:
    """Whole pickled messages over a stream socket: `send` from any thread; `receive(timeout_s)` (one thread) every
    complete message read, or [] when nothing came in time; `take` the same, for a reader that knows data waits."""

    def __init__(self, sock: socket.socket):
        self.sock, self._buffer = sock, bytearray()
        self._chunk = bytearray(READ)
        self._view = memoryview(self._chunk)
        self._send_lock = threading.Lock()
        self.last_sent = time.monotonic()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._readable: select.poll | None = None  # made by the first `receive` (a reader by selector has none)

    def send(self, message: object) -> None:
        payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            self.sock.sendall(len(payload).to_bytes(4, "little") + payload)
        self.last_sent = time.monotonic()

    def receive(self, timeout_s: float | None) -> list:
        wait_ms = None if timeout_s is None else max(0, math.ceil(timeout_s * 1000))
        if self._readable is None:
            self._readable = select.poll()
            self._readable.register(self.sock.fileno(), select.POLLIN)
        return self.take() if self._readable.poll(wait_ms) else []

    def take(self) -> list:
        """Read what is there (blocking until something is); raises EOFError when the other side is gone."""
        got = self.sock.recv_into(self._chunk)
        if not got:
            raise EOFError
        buffer = self._buffer
        buffer += self._view[:got]
        messages, at = [], 0
        while len(buffer) - at >= 4:
            size = int.from_bytes(buffer[at:at + 4], "little")
            if len(buffer) - at - 4 < size:
                break
            messages.append(pickle.loads(buffer[at + 4:at + 4 + size]))
            at += 4 + size
        del buffer[:at]
        return messages

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Address:
    """Where rank 0 listens, as broadcast to the other ranks with the spec."""

    hostname: str
    hosts: tuple[str, ...]  # its IPv4 addresses, loopback last
    port: int
    token: bytes


class Listener:
    """Rank 0's side: listen on every interface; `accept` the serving ranks' connections, by rank."""

    def __init__(self) -> None:
        import psutil

        self._server = socket.create_server(("", 0), backlog=1024)
        hosts = sorted((a.address for addresses in psutil.net_if_addrs().values() for a in addresses
                        if a.family == socket.AF_INET), key=lambda host: host.startswith("127."))
        self.address = Address(socket.gethostname(), tuple(hosts), self._server.getsockname()[1],
                               secrets.token_bytes(TOKEN_BYTES))

    def accept(self, ranks: set[int], timeout_s: float) -> dict[int, Frames]:
        """Each of `ranks`' connection, once it has presented the job's token (others are closed unread); those that
        did not connect within `timeout_s` are missing from the answer."""
        connected: dict[int, Frames] = {}
        deadline = time.monotonic() + timeout_s
        while len(connected) < len(ranks) and (left := deadline - time.monotonic()) > 0:
            self._server.settimeout(left)
            try:
                sock, _ = self._server.accept()
            except TimeoutError:
                break
            hello = _read_exactly(sock, TOKEN_BYTES + 4)
            rank = int.from_bytes(hello[TOKEN_BYTES:], "little") if hello else -1
            if hello is None or not hmac.compare_digest(hello[:TOKEN_BYTES], self.address.token) \
                    or rank not in ranks or rank in connected:
                sock.close()
                continue
            sock.sendall(ACK)
            connected[rank] = Frames(sock)
        self.close()
        return connected

    def close(self) -> None:
        self._server.close()


def connect(address: Address, rank: int) -> Frames:
    """A serving rank's connection to rank 0 (loopback first on rank 0's own host, never elsewhere), introduced with
    the token and acknowledged."""
    here = socket.gethostname() == address.hostname
    order = sorted((h for h in address.hosts if here or not h.startswith("127.")),
                   key=lambda host: not host.startswith("127."))
    failures = []
    for host in order:
        sock = None
        try:
            sock = socket.create_connection((host, address.port), timeout=CONNECT_TIMEOUT_S)
            sock.sendall(address.token + rank.to_bytes(4, "little"))
            if _read_exactly(sock, len(ACK)) == ACK:
                return Frames(sock)
            failures.append(f"{host}: not this job's rank 0")
        except OSError as error:
            failures.append(f"{host}: {error.strerror or error}")
        if sock is not None:
            sock.close()
    raise WireError(f"rank {rank} could not reach rank 0 ({address.hostname}) on TCP port {address.port} at any of its "
                    f"addresses ({'; '.join(failures) or 'none listed'}): the job's ranks must reach each other over "
                    f"TCP; allow it between the job's nodes")


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    """`size` bytes within CONNECT_TIMEOUT_S, else None; the socket is left blocking."""
    sock.settimeout(CONNECT_TIMEOUT_S)
    data = b""
    try:
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    finally:
        sock.settimeout(None)
    return data
