"""MPI launch (mpirun or srun): rank 0 hosts loadgen and the dispatcher; the other ranks host backend instances as the
placement says (sut/placement.py), or only participate in an instance whose leader is another rank.

mpi4py is imported only under a launcher. All traffic between ranks goes through one pump thread per rank, so MPI
is only ever called from one thread at a time. A rank that fails aborts the whole job with a message naming the
rank, instead of leaving loadgen waiting for answers that never come.
"""
from __future__ import annotations

import logging
import os
import queue
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
# A pump with nothing to do waits on its own rank's queue (what this rank sends wakes it at once) and looks for
# messages from the other ranks every POLL_S while traffic is recent (BUSY_S), every IDLE_SLEEP_S after: each hop
# between ranks adds at most that to a request's or a first token's way.
POLL_S, IDLE_SLEEP_S, BUSY_S = 0.0001, 0.0005, 0.05
# A serving rank says it is alive at least this often; rank 0 ends the job when one has said nothing for
# RANK_SILENCE_S (a stopped, wedged or cut-off process), naming it, instead of waiting forever.
HEARTBEAT_S = 1.0
RANK_SILENCE_S = 30.0
# Test hooks: the rank named here exits abruptly once its backend is up, as a crashed process would; the silence
# after which a rank is declared gone.
KILL_RANK_ENV = "LLMKIT_TEST_KILL_RANK"
SILENCE_ENV = "LLMKIT_TEST_RANK_SILENCE_S"


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


class RemoteInstance:
    """Rank 0's handle on one backend instance hosted by a worker rank. Each count has one writer: `submitted` the
    thread that dispatches, `completed` the pump thread."""

    def __init__(self, place: InstancePlace, outbox: queue.Queue):
        self.place = place
        self._outbox = outbox
        self.submitted = 0
        self.completed = 0

    def submit(self, batch: RequestBatch) -> None:
        self.submitted += len(batch)
        self._outbox.put((self.place.host, self.place.index, batch.detached()))

    def pending(self) -> int:
        return self.submitted - self.completed


def drain(source: queue.Queue) -> list:
    """Everything waiting in `source`, without blocking."""
    items = []
    while True:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            return items


class Nap:
    """A pump's wait between rounds: it returns at once with what its own rank put in `source`, else after POLL_S
    (traffic within BUSY_S) or IDLE_SLEEP_S, to look for other ranks' messages."""

    def __init__(self):
        self.last_busy = time.monotonic()

    def take(self, source: queue.Queue, busy: bool) -> list:
        now = time.monotonic()
        if busy:
            self.last_busy = now
            return []
        try:
            return [source.get(timeout=POLL_S if now - self.last_busy < BUSY_S else IDLE_SLEEP_S)]
        except queue.Empty:
            return []


class Sends:
    """Sends that never block the pump: a large message waits for its receiver while the pump keeps receiving (a
    blocking send both ways at once would deadlock two ranks)."""

    def __init__(self, comm):
        self.comm = comm
        self._open: list = []

    def send(self, message, dest: int, tag: int) -> None:
        self._open.append(self.comm.isend(message, dest=dest, tag=tag))

    def progress(self) -> None:
        self._open = [request for request in self._open if not request.test()[0]]

    def wait(self) -> None:
        for request in self._open:
            request.wait()
        self._open = []


class Coordinator:
    """Rank 0's side: one pump thread sends requests to the instances' hosts and delivers their events."""

    def __init__(self, placement: Placement, on_first: TokenCallback, on_final: TokenCallback,
                 on_error: ErrorCallback):
        self.comm = comm_world()
        self._sends = Sends(self.comm)
        self.placement = placement
        self._outbox: queue.Queue = queue.Queue()
        self.instances = [RemoteInstance(place, self._outbox) for place in placement.instances]
        self._by_index = {instance.place.index: instance for instance in self.instances}
        self._hosts = sorted({place.host for place in placement.instances})
        self._on_first, self._on_final, self._on_error = on_first, on_final, on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heard: dict[int, float] = {}  # host rank -> when it last sent anything
        self._silence_s = rank_silence_s()

    def wait_ready(self) -> None:
        """Block until every host rank has started its instances."""
        ready = 0
        while ready < len(self._hosts):
            kind, rank, _, payload = self.comm.recv(source=-1, tag=TAG_EVENTS)  # -1 is MPI.ANY_SOURCE
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
        outgoing: list = []
        nap = Nap()
        while not self._stop.is_set():
            busy = False
            outgoing += drain(self._outbox)
            for rank, index, requests in outgoing:
                self._sends.send((index, requests), dest=rank, tag=TAG_REQUESTS)
                busy = True
            outgoing = []
            while self.comm.iprobe(source=MPI.ANY_SOURCE, tag=TAG_EVENTS, status=status):
                source = status.Get_source()
                self._deliver(self.comm.recv(source=source, tag=TAG_EVENTS))
                self._heard[source] = time.monotonic()
                busy = True
            self._sends.progress()
            outgoing += nap.take(self._outbox, busy)
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
            self._sends.send(None, dest=rank, tag=TAG_STOP)
        stats: list[dict] = []
        waiting, status = set(self._hosts), MPI.Status()
        deadline = time.monotonic() + self._silence_s
        while waiting:
            if time.monotonic() > deadline:
                abort_job(f"rank(s) {', '.join(map(str, sorted(waiting)))} did not stop within "
                          f"{self._silence_s:.0f} s: stopped, wedged or cut off; ending the job")
            if self.comm.iprobe(source=MPI.ANY_SOURCE, tag=TAG_STATS, status=status):
                waiting.discard(status.Get_source())
                stats += self.comm.recv(source=status.Get_source(), tag=TAG_STATS)
            elif self.comm.iprobe(source=MPI.ANY_SOURCE, tag=TAG_EVENTS, status=status):
                self.comm.recv(source=status.Get_source(), tag=TAG_EVENTS)
            else:
                self._sends.progress()
                time.sleep(IDLE_SLEEP_S)
        self._sends.wait()
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
    events: queue.Queue = queue.Queue()
    backends: dict[int, Backend] = {}
    try:
        for place in hosted:
            backend = create_backend(instance_spec(spec, place))
            index = place.index
            backend.start(
                # Only the answers travel, not the backend's whole token buffer.
                lambda tokens, index=index: events.put((EVENT_FIRST, rank, index, tokens.compact())),
                lambda tokens, index=index: events.put((EVENT_FINAL, rank, index, tokens.compact())),
                lambda rid, message, index=index: events.put((EVENT_ERROR, rank, index, message)),
            )
            backends[index] = backend
    except Exception as error:
        comm.send((EVENT_ERROR, rank, None, f"{type(error).__name__}: {error}"), dest=0, tag=TAG_EVENTS)
        raise
    comm.send((EVENT_READY, rank, None, None), dest=0, tag=TAG_EVENTS)
    if os.environ.get(KILL_RANK_ENV) == str(rank):
        os._exit(9)
    sends = Sends(comm)
    with timed_section():
        _pump_worker(comm, sends, backends, events)
    for backend in backends.values():
        backend.stop()
    sends.wait()
    comm.send([s for backend in backends.values() if (s := backend.stats()) is not None], dest=0, tag=TAG_STATS)


def _pump_worker(comm, sends: Sends, backends: dict[int, Backend], events: queue.Queue) -> None:
    from mpi4py import MPI

    status = MPI.Status()
    rank, last_sent = comm.Get_rank(), time.monotonic()
    batch: list = []
    nap = Nap()
    while True:
        busy = False
        while comm.iprobe(source=0, tag=MPI.ANY_TAG, status=status):
            message = comm.recv(source=0, tag=status.Get_tag())
            if status.Get_tag() == TAG_STOP:
                return
            index, requests = message
            backends[index].submit(requests)
            busy = True
        batch += drain(events)
        if not batch and time.monotonic() - last_sent >= HEARTBEAT_S:
            batch.append((EVENT_ALIVE, rank, None, None))
        if batch:
            # First tokens go alone, ahead: a small message travels at once, where one with answers in it may wait
            # for the receiver (MPI's rendezvous for large messages). Same source and tag keep the order.
            firsts = [event for event in batch if event[0] == EVENT_FIRST]
            if firsts and len(firsts) < len(batch):
                sends.send(firsts, dest=0, tag=TAG_EVENTS)
                batch = [event for event in batch if event[0] != EVENT_FIRST]
            sends.send(batch, dest=0, tag=TAG_EVENTS)
            last_sent = time.monotonic()
            busy = True
            batch = []
        sends.progress()
        batch += nap.take(events, busy)
