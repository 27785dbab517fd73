"""The timed section every serving process runs loadgen's run in: no cyclic collector, a short GIL switch
interval, both given back afterwards (also when the run fails)."""
import gc
import sys

import pytest

from sut.timed import SWITCH_S, timed_section


def test_timed_section_turns_the_collector_off_and_shortens_the_switch_interval():
    switch = sys.getswitchinterval()
    with timed_section():
        assert not gc.isenabled()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_S)
        assert gc.get_freeze_count() > 0  # what lived before is frozen, never scanned during the run
    assert gc.isenabled() and sys.getswitchinterval() == pytest.approx(switch) and gc.get_freeze_count() == 0


def test_timed_section_gives_everything_back_when_the_run_fails():
    switch = sys.getswitchinterval()
    with pytest.raises(RuntimeError), timed_section():
        raise RuntimeError("the run failed")
    assert gc.isenabled() and sys.getswitchinterval() == pytest.approx(switch)
