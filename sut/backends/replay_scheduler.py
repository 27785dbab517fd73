"""One scheduler thread for every replay instance of a process.

A GPU engine's threads run in C++ and leave the SUT's interpreter alone; eight simulated instances with a thread
each would compete with the SUT for it and measure the simulation instead of the harness. So all instances of a
process share this thread: one heap of due events, waits of at least MIN_WAIT_S for the next (a submit wakes it
sooner), and every event due at a wake-up delivered together, one TokenBatch of first tokens and one of final answers per set of callbacks (in one process
all instances share the SUT's callbacks, so a wake-up is at most two loadgen calls).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import defaultdict

log = logging.getLogger(__name__)

FIRST, FINAL = 0, 1
# The scheduler never waits less than this for the next due event (a submit wakes it sooner): events due meanwhile go
# out together (at most this late), as an engine's iteration would deliver them, instead of one wake-up per event.
MIN_WAIT_S = 0.001


class Scheduler:
    """The process's scheduler; instances join it when they start and leave it when they stop."""

    _shared: Scheduler | None = None
    _registry_lock = threading.Lock()

    @classmethod
    def join(cls, instance) -> Scheduler:
        with cls._registry_lock:
            if cls._shared is None:
                cls._shared = Scheduler()
            cls._shared._add(instance)
            return cls._shared

    @classmethod
    def leave(cls, instance) -> None:
        with cls._registry_lock:
            scheduler = cls._shared
            if scheduler is None or not scheduler._remove(instance):
                return
            cls._shared = None
        scheduler._thread.join()

    def __init__(self):
        self.condition = threading.Condition()
        self._instances: list = []
        self._heap: list = []
        self._order = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="replay-scheduler", daemon=True)
        self._thread.start()

    def _add(self, instance) -> None:
        with self.condition:
            self._instances.append(instance)

    def _remove(self, instance) -> bool:
        """Drop the instance; True when it was the last one and the thread has been told to end."""
        with self.condition:
            self._instances.remove(instance)
            self._stopping = not self._instances
            self.condition.notify()
            return self._stopping

    def wake(self) -> None:
        """Called with `condition` held, after an instance queued new requests."""
        self.condition.notify()

    def _serve(self) -> None:
        try:
            self._loop()
        except Exception as error:  # the engine thread must report, never die silently
            log.exception("the replay scheduler failed")
            for instance in list(self._instances):
                instance.fail(f"replay scheduler failed: {type(error).__name__}: {error}")

    def _loop(self) -> None:
        while True:
            with self.condition:
                if self._stopping:
                    return
                now = time.perf_counter()
                instant = [(i, i.take_waiting()) for i in self._instances if i.instant and i.has_waiting()]
                if not instant:
                    for instance in self._instances:
                        if not instance.instant:
                            instance.admit(self, now)
                    if not self._heap:
                        self.condition.wait()
                        continue
                    delay = self._heap[0][0] - now
                    if delay > 0:
                        self.condition.wait(timeout=max(delay, MIN_WAIT_S))
                        continue
            if instant:  # an instant engine needs no schedule: everything waiting is answered whole
                for instance, waiting in instant:
                    instance.complete_now(waiting, now)
                continue
            self._deliver_due()

    def _deliver_due(self) -> None:
        """Pop every event that is due and deliver them grouped by their instances' callbacks."""
        now = time.perf_counter()
        heap = self._heap
        groups: dict = defaultdict(lambda: ([], []))
        with self.condition:  # the instances' slots and pending counts change here
            while heap and heap[0][0] <= now:
                _, _, kind, instance, request_id, start, length, submitted, first_at = heapq.heappop(heap)
                firsts, finals = groups[instance.callbacks]
                if kind == FIRST:
                    instance.first_sent[request_id] = now
                    firsts.append((request_id, start, 1))
                else:
                    finals.append((request_id, start, length))
                    instance.record(request_id, length, submitted, first_at, now)
        for (on_first, on_final, table), (firsts, finals) in groups.items():
            if firsts:
                on_first(table.batch(firsts))
            if finals:
                on_final(table.batch(finals))

    def push(self, time_due: float, kind: int, instance, request_id: int, start: int, length: int, submitted: float,
             first_at: float) -> None:
        """Schedule an event (called from this thread, with `condition` held, by an instance admitting requests)."""
        heapq.heappush(self._heap, (time_due, next(self._order), kind, instance, request_id, start, length, submitted,
                                    first_at))
