"""The timed part of a run, in every process that serves it: no cyclic garbage collector and a short GIL switch
interval.

- The timed run allocates per query and per streamed token; the collector's pauses would land in the latencies.
  Objects alive before are frozen (never scanned), the collector is off until the run ends.
- A backend's poller turns a whole engine iteration into Python objects at once (thousands of responses on a busy
  instance, milliseconds of work); meanwhile loadgen's issuing thread, or a rank's thread receiving requests or
  other ranks' first tokens, waits for the GIL up to the switch interval (5 ms by default) before the poller must
  let go. SWITCH_S bounds that wait.
"""
from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SWITCH_S = 0.00005


@contextmanager
def timed_section() -> Iterator[None]:
    gc.collect()
    gc.freeze()
    gc.disable()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_S)
    try:
        yield
    finally:
        sys.setswitchinterval(switch)
        gc.enable()
        gc.unfreeze()
