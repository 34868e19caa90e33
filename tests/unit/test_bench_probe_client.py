"""The alarm-latency bench's probing client pauses its own garbage collector while it times
probes (a full collection of the bench process took 30-50 ms and stalled the thread that stamps
each event's arrival), and turns it on again afterwards, also when the probing fails."""

from __future__ import annotations

import gc

import pytest

from bench.alarm_latency import collector_paused


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_a_failure() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the probing failed")
    assert gc.isenabled()
