"""MPI launch (mpirun or srun): rank 0 hosts loadgen and the dispatcher; the other ranks host backend instances as the
placement says (sut/placement.py), or only participate in an instance whose leader is another rank.

mpi4py is imported only under a launcher. A thread with something to send sends it itself, at once (loadgen's
issuing thread its queries, a backend's poller its first tokens and answers); one pump thread per rank receives.
Every MPI call of a rank goes through its Link, one at a time, so the launcher need only provide
MPI_THREAD_SERIALIZED. A rank that fails aborts the whole job with a message naming the rank, instead of leaving
loadgen waiting for answers that never come.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from llmkit.log import launcher_rank, log_critical_now
from llmkit.rundir import StagedDir
from sut.backends.base import Backend, BackendSpec, ErrorCallback, RequestBatch, TokenCallback
from sut.placement import InstancePlace, Placement, instance_spec
from sut.timed import timed_section

log = logging.getLogger(__name__)

TAG_REQUESTS, TAG_EVENTS, TAG_STOP, TAG_STATS = 1, 2, 3, 4
EVENT_READY, EVENT_FIRST, EVENT_FINAL, EVENT_ERROR, EVENT_ALIVE = "ready", "first", "final", "error", "alive"
BACKEND_FAILED_EXIT_CODE = 3
# A pump looks for messages from the other ranks every POLL_S while traffic is recent (BUSY_S), every IDLE_SLEEP_S
# after: each hop between ranks adds at most that to a request's or a first token's way.
POLL_S, IDLE_SLEEP_S, BUSY_S = 0.0001, 0.0005, 0.05
# A serving rank says it is alive at least this often; rank 0 ends the job when one has said nothing for
# RANK_SILENCE_S (a stopped, wedged or cut-off process), naming it, instead of waiting forever.
HEARTBEAT_S = 1.0
RANK_SILENCE_S = 30.0
# Test hooks: the worker rank named here exits abruptly once its backend is up, as a crashed process would (rank 0:
# fails with an exception once the workers have their spec); the silence after which a rank is declared gone.
KILL_RANK_ENV = "LLMKIT_TEST_KILL_RANK"
SILENCE_ENV = "LLMKIT_TEST_RANK_SILENCE_S"


# Rank 0: set once every worker rank was told to stop and has answered (Coordinator.stop). Until then they wait for
# that word, and rank 0 ending otherwise must end the whole job (run_benchmark), or its MPI_Finalize waits for them.
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


def abort_job(message: str) -> None:
    """Log the reason, discard the half-written run, and end every rank now."""
    log_critical_now(log, message)
    StagedDir.discard_live()
    comm_world().Abort(BACKEND_FAILED_EXIT_CODE)
    os._exit(BACKEND_FAILED_EXIT_CODE)


class Link:
    """A rank's MPI calls, from any of its threads, one at a time. Sends never block: a large message waits for its
    receiver (MPI's rendezvous) while the pump keeps receiving (a blocking send both ways at once would deadlock two
    ranks), and `progress` completes what has gone."""

    def __init__(self, comm):
        self.comm = comm
        self._lock = threading.Lock()
        self._open: list = []
        self.last_sent = time.monotonic()

    def send(self, message, dest: int, tag: int) -> None:
        with self._lock:
            request = self.comm.isend(message, dest=dest, tag=tag)
            if not request.test()[0]:  # a small message has gone already: nothing left for the pump to complete
                self._open.append(request)
        self.last_sent = time.monotonic()

    def receive(self, source: int, tag: int, status) -> tuple[bool, object]:
        """(True, the next message from `source` with `tag`) if one is waiting (`status` says whose, which tag),
        else (False, None); MPI.ANY_SOURCE and MPI.ANY_TAG allowed."""
        with self._lock:
            if not self.comm.iprobe(source=source, tag=tag, status=status):
                return False, None
            return True, self.comm.recv(source=status.Get_source(), tag=status.Get_tag())

    def progress(self) -> None:
        with self._lock:
            if self._open:
                self._open = [request for request in self._open if not request.test()[0]]

    def wait(self) -> None:
        with self._lock:
            for request in self._open:
                request.wait()
            self._open = []


class Nap:
    """A pump's wait between rounds: POLL_S while traffic (received, or sent by any thread of the rank) is within
    BUSY_S, IDLE_SLEEP_S after."""

    def __init__(self, link: Link):
        self.link = link
        self.last_busy = time.monotonic()

    def take(self, busy: bool) -> None:
        now = time.monotonic()
        if busy:
            self.last_busy = now
            return
        recent = max(self.last_busy, self.link.last_sent)
        time.sleep(POLL_S if now - recent < BUSY_S else IDLE_SLEEP_S)


class RemoteInstance:
    """Rank 0's handle on one backend instance hosted by a worker rank: `submit` sends the requests from the calling
    thread. Each count has one writer: `submitted` the thread that dispatches, `completed` the pump thread."""

    def __init__(self, place: InstancePlace, link: Link):
        self.place = place
        self._link = link
        self.submitted = 0
        self.completed = 0

    def submit(self, batch: RequestBatch) -> None:
        self.submitted += len(batch)
        self._link.send((self.place.index, batch.detached()), dest=self.place.host, tag=TAG_REQUESTS)

    def pending(self) -> int:
        return self.submitted - self.completed


class WorkerEvents:
    """A worker rank's events for rank 0, sent by the thread that has them (a backend's poller), each delivery as it
    comes, so that a first token never waits for another thread to wake; held until `open` has told rank 0 that the
    rank is ready."""

    def __init__(self, link: Link, rank: int):
        self.link, self.rank = link, rank
        self._lock = threading.Lock()
        self._held: list | None = []

    def callbacks(self, index: int) -> tuple[TokenCallback, TokenCallback, ErrorCallback]:
        """The backend instance's on_first, on_final and on_error. Only the answers travel, not the backend's whole
        token buffer."""
        rank = self.rank
        return (lambda tokens: self._put((EVENT_FIRST, rank, index, tokens.compact())),
                lambda tokens: self._put((EVENT_FINAL, rank, index, tokens.compact())),
                lambda rid, message: self._put((EVENT_ERROR, rank, index, message)))

    def _put(self, event: tuple) -> None:
        if self._held is not None:
            with self._lock:
                if self._held is not None:
                    self._held.append(event)
                    return
        self.link.send([event], dest=0, tag=TAG_EVENTS)

    def open(self) -> None:
        """Say READY (the rank's instances have started), then send what was held, in that order."""
        with self._lock:
            self.link.send((EVENT_READY, self.rank, None, None), dest=0, tag=TAG_EVENTS)
            if self._held:
                self.link.send(self._held, dest=0, tag=TAG_EVENTS)
            self._held = None


class Coordinator:
    """Rank 0's side: the dispatching thread sends requests to the instances' hosts (RemoteInstance.submit); one pump
    thread receives their events and delivers them."""

    def __init__(self, placement: Placement, on_first: TokenCallback, on_final: TokenCallback,
                 on_error: ErrorCallback):
        self.comm = comm_world()
        self._link = Link(self.comm)
        self.placement = placement
        self.instances = [RemoteInstance(place, self._link) for place in placement.instances]
        self._by_index = {instance.place.index: instance for instance in self.instances}
        self._hosts = sorted({place.host for place in placement.instances})
        self._on_first, self._on_final, self._on_error = on_first, on_final, on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heard: dict[int, float] = {}  # host rank -> when it last sent anything
        self._silence_s = rank_silence_s()

    def wait_ready(self) -> None:
        """Block until every host rank has started its instances. A rank that is ready sends its events (a list:
        its heartbeat, an instance's error) while the others are still starting; they are delivered as they come."""
        ready = 0
        while ready < len(self._hosts):
            message = self.comm.recv(source=-1, tag=TAG_EVENTS)  # -1 is MPI.ANY_SOURCE
            if isinstance(message, list):
                self._deliver(message)
                continue
            kind, rank, _, payload = message
            if kind == EVENT_ERROR:
                abort_job(f"rank {rank} could not start its backend: {payload}")
            ready += kind == EVENT_READY
        now = time.monotonic()
        self._heard = {rank: now for rank in self._hosts}
        self._thread = threading.Thread(target=self._pump, name="mpi-pump", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        from mpi4py import MPI

        status = MPI.Status()
        next_check = time.monotonic() + HEARTBEAT_S
        nap = Nap(self._link)
        while not self._stop.is_set():
            busy = False
            while True:
                found, events = self._link.receive(MPI.ANY_SOURCE, TAG_EVENTS, status)
                if not found:
                    break
                self._deliver(events)
                self._heard[status.Get_source()] = time.monotonic()
                busy = True
            self._link.progress()
            nap.take(busy)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + HEARTBEAT_S
                self._check_alive()

    def _check_alive(self) -> None:
        """End the job when a serving rank has been silent too long (its heartbeat comes every HEARTBEAT_S)."""
        now = time.monotonic()
        for rank, heard in self._heard.items():
            if now - heard > self._silence_s:
                hosted = ", ".join(str(p.index) for p in self.placement.instances if p.host == rank)
                abort_job(f"rank {rank} (instances {hosted}) has given no sign of life for {now - heard:.0f} s: "
                          f"stopped, wedged or cut off; ending the job (the run is not written)")

    def _deliver(self, events) -> None:
        for kind, rank, index, payload in events:
            if kind == EVENT_ALIVE:
                continue
            if kind == EVENT_FIRST:
                self._on_first(payload)
            elif kind == EVENT_FINAL:
                self._by_index[index].completed += len(payload)
                self._on_final(payload)
            elif kind == EVENT_ERROR:
                self._on_error(None, f"rank {rank}, instance {index}: {payload}")

    def stop(self) -> list[dict]:
        """Stop every worker rank; returns the engine figures the hosted instances report. Events still arriving
        meanwhile are received (and dropped), so that no worker stays blocked sending them."""
        from mpi4py import MPI

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for rank in range(1, self.comm.Get_size()):
            self._link.send(None, dest=rank, tag=TAG_STOP)
        stats: list[dict] = []
        waiting, status = set(self._hosts), MPI.Status()
        deadline = time.monotonic() + self._silence_s
        while waiting:
            if time.monotonic() > deadline:
                abort_job(f"rank(s) {', '.join(map(str, sorted(waiting)))} did not stop within "
                          f"{self._silence_s:.0f} s: stopped, wedged or cut off; ending the job")
            found, message = self._link.receive(MPI.ANY_SOURCE, MPI.ANY_TAG, status)
            if found and status.Get_tag() == TAG_STATS:
                waiting.discard(status.Get_source())
                stats += message
            elif not found:
                self._link.progress()
                time.sleep(IDLE_SLEEP_S)
        self._link.wait()
        _workers_stopped.set()
        return stats


def serve_worker(spec: BackendSpec, placement: Placement, create_backend: Callable[[BackendSpec], Backend]) -> None:
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
    link = Link(comm)
    events = WorkerEvents(link, rank)
    backends: dict[int, Backend] = {}
    try:
        for place in hosted:
            backend = create_backend(instance_spec(spec, place))
            backend.start(*events.callbacks(place.index))
            backends[place.index] = backend
    except Exception as error:
        comm.send((EVENT_ERROR, rank, None, f"{type(error).__name__}: {error}"), dest=0, tag=TAG_EVENTS)
        raise
    events.open()
    if os.environ.get(KILL_RANK_ENV) == str(rank):
        os._exit(9)
    with timed_section():
        _pump_worker(link, backends, rank)
    for backend in backends.values():
        backend.stop()
    link.wait()
    comm.send([s for backend in backends.values() if (s := backend.stats()) is not None], dest=0, tag=TAG_STATS)


def _pump_worker(link: Link, backends: dict[int, Backend], rank: int) -> None:
    """Take rank 0's requests into the hosted instances until it says stop; say alive when nothing else was sent
    for HEARTBEAT_S. The instances send their events themselves (WorkerEvents)."""
    from mpi4py import MPI

    status = MPI.Status()
    nap = Nap(link)
    while True:
        busy = False
        while True:
            found, message = link.receive(0, MPI.ANY_TAG, status)
            if not found:
                break
            if status.Get_tag() == TAG_STOP:
                return
            index, requests = message
            backends[index].submit(requests)
            busy = True
        if time.monotonic() - link.last_sent >= HEARTBEAT_S:
            link.send([(EVENT_ALIVE, rank, None, None)], dest=0, tag=TAG_EVENTS)
        link.progress()
        nap.take(busy)
