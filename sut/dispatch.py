"""Spread queries over the data-parallel backend instances: round-robin in Offline, least-pending in Server."""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from sut.backends.base import GenerationRequest


class Instance(Protocol):
    def submit(self, requests: Sequence[GenerationRequest]) -> None: ...

    def pending(self) -> int: ...


class Dispatcher:
    def __init__(self, instances: Sequence[Instance], least_pending: bool):
        if not instances:
            raise ValueError("a dispatcher needs at least one backend instance")
        self.instances = list(instances)
        self.least_pending = least_pending
        self._next = itertools.cycle(range(len(self.instances)))

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        if len(self.instances) == 1:
            self.instances[0].submit(requests)
        elif self.least_pending:
            for request in requests:
                min(self.instances, key=lambda i: i.pending()).submit([request])
        else:
            shares: list[list[GenerationRequest]] = [[] for _ in self.instances]
            for request in requests:
                shares[next(self._next)].append(request)
            for instance, share in zip(self.instances, shares):
                if share:
                    instance.submit(share)
