"""Spread queries over the data-parallel backend instances: round-robin in Offline, least-pending in Server."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from sut.backends.base import RequestBatch


class Instance(Protocol):
    def submit(self, batch: RequestBatch) -> None: ...

    def pending(self) -> int: ...


class Dispatcher:
    def __init__(self, instances: Sequence[Instance], least_pending: bool):
        if not instances:
            raise ValueError("a dispatcher needs at least one backend instance")
        self.instances = list(instances)
        self.least_pending = least_pending
        self._next = 0  # the instance that gets the next request round-robin

    def submit(self, batch: RequestBatch) -> None:
        count = len(self.instances)
        if count == 1:
            self.instances[0].submit(batch)
        elif self.least_pending:
            # A Server query comes alone: it goes as it is, without a copy of the batch.
            singles = [batch] if len(batch) == 1 else [batch.take(slice(i, i + 1)) for i in range(len(batch))]
            for single in singles:
                min(self.instances, key=lambda i: i.pending()).submit(single)
        else:
            turns = (np.arange(len(batch)) + self._next) % count
            self._next = (self._next + len(batch)) % count
            for index, instance in enumerate(self.instances):
                share = np.flatnonzero(turns == index)
                if share.size:
                    instance.submit(batch.take(share))
