"""MPI launch: rank 0 hosts loadgen and the dispatcher, ranks 1..N-1 each host one backend instance.

mpi4py is imported only under a launcher (mpirun, srun). All traffic between ranks goes through one pump thread
per rank, so MPI is only ever called from one thread at a time. A rank that fails aborts the whole job with a
message naming the rank, instead of leaving loadgen waiting for answers that never come.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable

from llmkit.log import launcher_rank
from sut.backends.base import BackendSpec, ErrorCallback, RequestBatch, TokenCallback

log = logging.getLogger(__name__)

TAG_REQUESTS, TAG_EVENTS, TAG_STOP = 1, 2, 3
EVENT_READY, EVENT_FIRST, EVENT_FINAL, EVENT_ERROR = "ready", "first", "final", "error"
BACKEND_FAILED_EXIT_CODE = 3
IDLE_SLEEP_S = 0.0005
# A test hook: the rank named here exits abruptly once its backend is up, as a crashed process would.
KILL_RANK_ENV = "LLMKIT_TEST_KILL_RANK"


def under_launcher() -> bool:
    return launcher_rank()[1] > 1


def comm_world():
    from mpi4py import MPI

    return MPI.COMM_WORLD


def abort_job(message: str) -> None:
    """Log the reason and end every rank now (a lone process just exits)."""
    log.critical(message)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    if under_launcher():
        comm_world().Abort(BACKEND_FAILED_EXIT_CODE)
    os._exit(BACKEND_FAILED_EXIT_CODE)


class RemoteInstance:
    """Rank 0's handle on the backend instance hosted by one worker rank."""

    def __init__(self, rank: int, outbox: queue.Queue):
        self.rank = rank
        self._outbox = outbox
        self.outstanding = 0

    def submit(self, batch: RequestBatch) -> None:
        self.outstanding += len(batch)
        self._outbox.put((self.rank, batch.detached()))

    def pending(self) -> int:
        return self.outstanding


class Coordinator:
    """Rank 0's side: one pump thread sends requests to the worker ranks and delivers their events."""

    def __init__(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback):
        self.comm = comm_world()
        self._outbox: queue.Queue = queue.Queue()
        self.instances = [RemoteInstance(rank, self._outbox) for rank in range(1, self.comm.Get_size())]
        self._on_first, self._on_final, self._on_error = on_first, on_final, on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wait_ready(self) -> None:
        """Block until every worker rank has loaded its backend."""
        ready = 0
        while ready < len(self.instances):
            kind, rank, payload = self.comm.recv(source=-1, tag=TAG_EVENTS)  # -1 is MPI.ANY_SOURCE
            if kind == EVENT_ERROR:
                abort_job(f"rank {rank} could not start its backend: {payload}")
            ready += kind == EVENT_READY
        self._thread = threading.Thread(target=self._pump, name="mpi-pump", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        from mpi4py import MPI

        status = MPI.Status()
        while not self._stop.is_set():
            busy = False
            while not self._outbox.empty():
                rank, requests = self._outbox.get_nowait()
                self.comm.send(requests, dest=rank, tag=TAG_REQUESTS)
                busy = True
            while self.comm.iprobe(source=MPI.ANY_SOURCE, tag=TAG_EVENTS, status=status):
                self._deliver(self.comm.recv(source=status.Get_source(), tag=TAG_EVENTS))
                busy = True
            if not busy:
                time.sleep(IDLE_SLEEP_S)

    def _deliver(self, events) -> None:
        for kind, rank, payload in events:
            if kind == EVENT_FIRST:
                self._on_first(payload)
            elif kind == EVENT_FINAL:
                self.instances[rank - 1].outstanding -= len(payload)
                self._on_final(payload)
            elif kind == EVENT_ERROR:
                self._on_error(None, f"rank {rank}: {payload}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for instance in self.instances:
            self.comm.send(None, dest=instance.rank, tag=TAG_STOP)


def serve_worker(spec: BackendSpec, create_backend: Callable[[BackendSpec], object]) -> None:
    """A worker rank: host one backend instance until rank 0 says stop."""
    from mpi4py import MPI

    comm = comm_world()
    rank = comm.Get_rank()
    events: queue.Queue = queue.Queue()
    backend = create_backend(spec)
    try:
        backend.start(
            # Only the answers travel, not the backend's whole token buffer.
            lambda tokens: events.put((EVENT_FIRST, rank, tokens.compact())),
            lambda tokens: events.put((EVENT_FINAL, rank, tokens.compact())),
            lambda rid, message: events.put((EVENT_ERROR, rank, message)),
        )
    except Exception as error:
        comm.send((EVENT_ERROR, rank, f"{type(error).__name__}: {error}"), dest=0, tag=TAG_EVENTS)
        raise
    comm.send((EVENT_READY, rank, None), dest=0, tag=TAG_EVENTS)
    if os.environ.get(KILL_RANK_ENV) == str(rank):
        os._exit(9)
    status = MPI.Status()
    while True:
        busy = False
        if comm.iprobe(source=0, tag=MPI.ANY_TAG, status=status):
            message = comm.recv(source=0, tag=status.Get_tag())
            if status.Get_tag() == TAG_STOP:
                break
            backend.submit(message)
            busy = True
        batch = []
        while not events.empty():
            batch.append(events.get_nowait())
        if batch:
            comm.send(batch, dest=0, tag=TAG_EVENTS)
            busy = True
        if not busy:
            time.sleep(IDLE_SLEEP_S)
    backend.stop()
