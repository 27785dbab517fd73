"""MPI launch (mpirun or srun): rank 0 hosts loadgen and the dispatcher; the other ranks host backend instances as the
placement says (sut/placement.py), or only participate in an instance whose leader is another rank.

mpi4py is imported only under a launcher, and MPI carries only the start-up (the spec and rank 0's address, one
broadcast), the followers' word to stop, and an abort. Requests and answers go over one TCP connection per serving
rank (sut/wire.py): a thread with something to send sends it itself, at once (loadgen's issuing thread its queries,
a backend's poller its first tokens and answers), and one thread per rank, blocked in the kernel until something
arrives, receives. A rank that fails aborts the whole job with a message naming the rank, instead of leaving
loadgen waiting for answers that never come.
"""
from __future__ import annotations

import logging
import os
import selectors
import threading
import time
from collections.abc import Callable, Iterator
from typing import NoReturn

from llmkit.log import launcher_rank, log_critical_now
from llmkit.rundir import StagedDir
from sut.backends.base import Backend, BackendSpec, ErrorCallback, RequestBatch, TokenCallback
from sut.placement import InstancePlace, Placement, instance_spec
from sut.timed import timed_section
from sut.wire import Address, Frames, Listener, WireError, connect

log = logging.getLogger(__name__)

TAG_STOP = 3  # MPI: rank 0's word to a follower rank
EVENT_READY, EVENT_FIRST, EVENT_FINAL, EVENT_ERROR, EVENT_ALIVE, EVENT_STATS = (
    "ready", "first", "final", "error", "alive", "stats")
STOP = None  # rank 0's word to a serving rank, over its connection
BACKEND_FAILED_EXIT_CODE = 3
# A serving rank says it is alive at least this often; rank 0 ends the job when one has said nothing for
# RANK_SILENCE_S (a stopped, wedged or cut-off process), naming it, instead of waiting forever. A rank whose
# connection closes (its process ended) ends the job at once.
HEARTBEAT_S = 1.0
RANK_SILENCE_S = 30.0
# Test hooks: the worker rank named here exits abruptly once its backend is up, as a crashed process would (rank 0:
# fails with an exception once the workers have their spec); the silence after which a rank is declared gone.
KILL_RANK_ENV = "LLMKIT_TEST_KILL_RANK"
SILENCE_ENV = "LLMKIT_TEST_RANK_SILENCE_S"


# Rank 0: set once every worker rank was told to stop and the serving ones have answered (Coordinator.stop). Until
# then they wait for that word, and rank 0 ending otherwise must end the whole job (run_benchmark), or its
# MPI_Finalize waits for them.
_workers_stopped = threading.Event()


def workers_stopped() -> bool:
    return _workers_stopped.is_set()


def rank_silence_s() -> float:
    return float(os.environ.get(SILENCE_ENV) or RANK_SILENCE_S)


def under_launcher() -> bool:
    return launcher_rank()[1] > 1


def comm_world():
    from mpi4py import MPI

    return MPI.COMM_WORLD


def abort_job(message: str) -> NoReturn:
    """Log the reason, discard the half-written run, and end every rank now."""
    log_critical_now(log, message)
    StagedDir.discard_live()
    comm_world().Abort(BACKEND_FAILED_EXIT_CODE)
    os._exit(BACKEND_FAILED_EXIT_CODE)


class RemoteInstance:
    """Rank 0's handle on one backend instance hosted by a worker rank: `submit` sends the requests from the calling
    thread. Each count has one writer: `submitted` the thread that dispatches, `completed` the receiving thread."""

    def __init__(self, place: InstancePlace, links: dict[int, Frames]):
        self.place = place
        self._links = links
        self.submitted = 0
        self.completed = 0

    def submit(self, batch: RequestBatch) -> None:
        self.submitted += len(batch)
        self._links[self.place.host].send((self.place.index, batch))  # only its own prompts travel

    def pending(self) -> int:
        return self.submitted - self.completed


class WorkerEvents:
    """A worker rank's events for rank 0, sent by the thread that has them (a backend's poller), each delivery as it
    comes, so that a first token never waits for another thread to wake; held until `open` has told rank 0 that the
    rank is ready."""

    def __init__(self, link: Frames, rank: int):
        self.link, self.rank = link, rank
        self._lock = threading.Lock()
        self._held: list | None = []

    def callbacks(self, index: int) -> tuple[TokenCallback, TokenCallback, ErrorCallback]:
        """The backend instance's on_first, on_final and on_error. Only the answers travel, not the backend's whole
        token buffer (a pickled TokenBatch is packed)."""
        rank = self.rank
        return (lambda tokens: self._put((EVENT_FIRST, rank, index, tokens)),
                lambda tokens: self._put((EVENT_FINAL, rank, index, tokens)),
                lambda rid, message: self._put((EVENT_ERROR, rank, index, message)))

    def _put(self, event: tuple) -> None:
        if self._held is not None:
            with self._lock:
                if self._held is not None:
                    self._held.append(event)
                    return
        self.link.send([event])

    def open(self) -> None:
        """Say READY (the rank's instances have started), then what was held, in that order."""
        with self._lock:
            self.link.send([(EVENT_READY, self.rank, None, None), *(self._held or [])])
            self._held = None


class Coordinator:
    """Rank 0's side: the dispatching thread sends requests to the instances' hosts (RemoteInstance.submit); one
    thread, waiting on every host's connection at once, receives their events and delivers them."""

    def __init__(self, placement: Placement, listener: Listener, on_first: TokenCallback, on_final: TokenCallback,
                 on_error: ErrorCallback):
        self.placement = placement
        self._listener = listener
        self._links: dict[int, Frames] = {}  # host rank -> its connection, once accepted (wait_ready)
        self.instances = [RemoteInstance(place, self._links) for place in placement.instances]
        self._by_index = {instance.place.index: instance for instance in self.instances}
        self._hosts = sorted({place.host for place in placement.instances})
        self._on_first, self._on_final, self._on_error = on_first, on_final, on_error
        self._selector = selectors.DefaultSelector()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._heard: dict[int, float] = {}  # host rank -> when it last sent anything
        self._stats: dict[int, list[dict]] = {}  # host rank -> its instances' engine figures, once stopped
        self._silence_s = rank_silence_s()

    def wait_ready(self) -> None:
        """Block until every host rank has connected and started its instances. A rank that is ready sends its
        events (its heartbeat, an instance's error) while the others are still starting; they are delivered as they
        come."""
        self._links.update(self._listener.accept(set(self._hosts), self._silence_s))
        if missing := [rank for rank in self._hosts if rank not in self._links]:
            abort_job(f"rank(s) {', '.join(map(str, missing))} did not connect to rank 0 within "
                      f"{self._silence_s:.0f} s: stopped, wedged or cut off; ending the job")
        for rank, link in self._links.items():
            self._selector.register(link.sock, selectors.EVENT_READ, rank)
        ready: set[int] = set()
        while len(ready) < len(self._hosts):
            for rank, events in self._receive(None):
                for kind, _, index, payload in events:
                    if kind == EVENT_ERROR and index is None:
                        abort_job(f"rank {rank} could not start its backend: {payload}")
                    if kind == EVENT_READY:
                        ready.add(rank)
                self._deliver(rank, events)
        now = time.monotonic()
        self._heard = {rank: now for rank in self._hosts}
        self._thread = threading.Thread(target=self._serve, name="rank0-receiver", daemon=True)
        self._thread.start()

    def _receive(self, timeout_s: float | None) -> Iterator[tuple[int, list]]:
        """(rank, events) for every message that arrives within `timeout_s`. A rank whose connection closes before
        it has sent its figures ends the job."""
        for key, _ in self._selector.select(timeout_s):
            rank = key.data
            try:
                messages = self._links[rank].take()
            except (EOFError, OSError):
                self._selector.unregister(key.fileobj)
                if rank not in self._stats:
                    abort_job(f"rank {rank} (instances {self._hosted(rank)}) closed its connection to rank 0: its "
                              "process ended or was killed; ending the job (the run is not written)")
                continue
            for events in messages:
                yield rank, events

    def _serve(self) -> None:
        next_check = time.monotonic() + HEARTBEAT_S
        while len(self._stats) < len(self._hosts):
            for rank, events in self._receive(HEARTBEAT_S):
                self._heard[rank] = time.monotonic()
                self._deliver(rank, events)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + HEARTBEAT_S
                self._check_alive()

    def _hosted(self, rank: int) -> str:
        return ", ".join(str(p.index) for p in self.placement.instances if p.host == rank)

    def _check_alive(self) -> None:
        """End the job when a serving rank has been silent too long (its heartbeat comes every HEARTBEAT_S)."""
        now = time.monotonic()
        for rank, heard in self._heard.items():
            if rank not in self._stats and now - heard > self._silence_s:
                abort_job(f"rank {rank} (instances {self._hosted(rank)}) has given no sign of life for "
                          f"{now - heard:.0f} s: stopped, wedged or cut off; ending the job (the run is not written)")

    def _deliver(self, rank: int, events: list) -> None:
        """Once stopping, answers still arriving are dropped: loadgen's test has ended."""
        for kind, _, index, payload in events:
            if kind == EVENT_STATS:
                self._stats[rank] = payload
            elif self._stopping.is_set() or kind in (EVENT_ALIVE, EVENT_READY):
                continue
            elif kind == EVENT_FIRST:
                self._on_first(payload)
            elif kind == EVENT_FINAL:
                self._by_index[index].completed += len(payload)
                self._on_final(payload)
            elif kind == EVENT_ERROR:
                self._on_error(None, f"rank {rank}, instance {index}: {payload}")

    def stop(self) -> list[dict]:
        """Stop every worker rank; returns the engine figures the hosted instances report."""
        self._stopping.set()
        if self._thread is None:
            return []  # never ready: run_benchmark ends the job
        for link in self._links.values():
            try:
                link.send(STOP)
            except OSError:
                pass  # its end of file is the receiver's to report
        self._thread.join(self._silence_s)
        if self._thread.is_alive():
            waiting = [rank for rank in self._hosts if rank not in self._stats]
            abort_job(f"rank(s) {', '.join(map(str, waiting))} did not stop within {self._silence_s:.0f} s: "
                      "stopped, wedged or cut off; ending the job")
        comm = comm_world()
        for rank in range(1, comm.Get_size()):
            if rank not in self._links:
                comm.send(None, dest=rank, tag=TAG_STOP)
        for link in self._links.values():
            link.close()
        _workers_stopped.set()
        return [stats for rank in self._hosts for stats in self._stats[rank]]


def serve_worker(spec: BackendSpec, placement: Placement, address: Address,
                 create_backend: Callable[[BackendSpec], Backend]) -> None:
    """A worker rank: host its instances until rank 0 says stop, or only participate in another rank's instance."""
    comm = comm_world()
    rank = comm.Get_rank()
    hosted = placement.hosted_by(rank)
    if not hosted:
        # A backend whose followers take part in the engine (TensorRT-LLM leader mode) has `follow(spec)`: what it
        # returns is stopped at the end. The others' followers only wait.
        from sut.backends import backend_class

        follow = getattr(backend_class(spec.backend.name), "follow", None)
        followers = []
        for place in placement.followed_by(rank):
            log.info("rank %d participates in instance %d led by rank %d", rank, place.index, place.host)
            if follow is not None:
                followers.append(follow(instance_spec(spec, place)))
        comm.recv(source=0, tag=TAG_STOP)  # a follower takes no requests: it only waits for the end
        for follower in followers:
            follower.stop()
        return
    try:
        link = connect(address, rank)
    except WireError as error:
        abort_job(str(error))
    events = WorkerEvents(link, rank)
    backends: dict[int, Backend] = {}
    try:
        for place in hosted:
            backend = create_backend(instance_spec(spec, place))
            backend.start(*events.callbacks(place.index))
            backends[place.index] = backend
    except Exception as error:
        link.send([(EVENT_ERROR, rank, None, f"{type(error).__name__}: {error}")])
        raise
    events.open()
    if os.environ.get(KILL_RANK_ENV) == str(rank):
        os._exit(9)
    with timed_section():
        _take_requests(link, backends, rank)
    for backend in backends.values():
        backend.stop()
    link.send([(EVENT_STATS, rank, None, [s for backend in backends.values() if (s := backend.stats()) is not None])])
    link.close()


def _take_requests(link: Frames, backends: dict[int, Backend], rank: int) -> None:
    """Take rank 0's requests into the hosted instances until it says stop; say alive when nothing else was sent
    for HEARTBEAT_S. The instances send their events themselves (WorkerEvents)."""
    while True:
        try:
            messages = link.receive(HEARTBEAT_S)
        except (EOFError, OSError):
            abort_job(f"rank {rank}: rank 0 closed its connection before saying stop (rank 0 ended); ending the job")
        for message in messages:
            if message is STOP:
                return
            index, requests = message
            backends[index].submit(requests)
        if time.monotonic() - link.last_sent >= HEARTBEAT_S:
            link.send([(EVENT_ALIVE, rank, None, None)])
