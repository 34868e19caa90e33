"""Latched alarms whose condition returns before reset (no new annunciation, ``returns``),
late data (active since its source time) and the registry's out of service as its own state."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from safety_hub.alarms import Action, AlarmJournal, AlarmService, AlarmState, IllegalTransition
from safety_hub.alarms.journal import JournalBatch
from safety_hub.alarms.model import REGISTRY_OOS_CAUSE, OutOfService
from safety_hub.clock import VirtualClock
from tests.unit.test_alarms_support import GRADES, HOUR, MINUTE, SECOND, T0, Rig, gas

S = AlarmState
KEY = "HighPressure|e01-chloralkali|PT-2001"
L1 = "Cl2Level1|e01-chloralkali|GT-1101"
L2 = "Cl2Level2|e01-chloralkali|GT-1101"


def test_latched_alarm_chattering_annunciates_once_and_counts_its_returns() -> None:
    """Level-1 gas in and out every 20 s while nobody acknowledges: one annunciation in all,
    every return counted, no flood, yet the alarm chatters in the KPIs."""
    rig = Rig()
    for _ in range(15):
        rig.on(L1, **gas(1), value=1.5)
        rig.advance(10 * SECOND)
        rig.off(L1, **gas(1), value=0.2)
        rig.advance(10 * SECOND)
    rig.on(L1, **gas(1), value=1.5)
    alarm = rig.alarm(L1)
    assert (alarm.state, alarm.count, alarm.returns) == (S.UNACKNOWLEDGED, 1, 15)
    assert alarm.last_active_ms == rig.clock.now_ms()
    assert [e.annunciated for e in rig.events].count(True) == 1
    assert rig.svc.floods() == []
    kpis = rig.svc.kpis(window_ms=HOUR)
    assert kpis.annunciations == 1
    # an edge every 10 s: seven of them (0, 10, ... 60 s) within one minute
    assert [(c.key, c.count) for c in kpis.chattering] == [(L1, 7)]
    rig.svc.acknowledge(alarm.id, "op1")
    rig.off(L1, **gas(1))
    rig.svc.reset(alarm.id, "op1")
    rig.on(L1, **gas(1))
    fresh = rig.alarm(L1)  # after the reset a return is a new alarm again
    assert (fresh.state, fresh.count, fresh.returns) == (S.UNACKNOWLEDGED, 2, 0)


def test_late_data_is_active_since_its_source_time_and_keeps_its_arrival() -> None:
    """A reading that arrives 5 minutes late: active since the reading's time, arrived (and
    annunciated) now; a source time in the future is taken as now."""
    rig = Rig()
    rig.advance(HOUR)
    now = rig.clock.now_ms()
    rig.on(KEY, ts_ms=now - 5 * MINUTE)
    late = rig.alarm(KEY)
    assert (late.active_since_ms, late.last_active_ms) == (now - 5 * MINUTE, now - 5 * MINUTE)
    assert (late.arrived_ms, late.raised_ms, late.event_ts_ms) == (now, now, now - 5 * MINUTE)
    rig.off(KEY)
    assert (rig.alarm(KEY).active_since_ms, rig.alarm(KEY).arrived_ms) == (None, None)
    rig.on(KEY, ts_ms=now + MINUTE)
    assert rig.alarm(KEY).active_since_ms == now


def test_reset_of_a_returned_latch_reannunciates() -> None:
    """The existing reset rule holds for a returned latch: acked, active again, reset -> a new
    annunciation (GB/T 50493: reset while over the limit re-annunciates), returns start over."""
    rig = Rig()
    rig.on(L1, **gas(1))
    rig.off(L1, **gas(1))
    rig.svc.acknowledge(rig.alarm(L1).id, "op1")
    rig.on(L1, **gas(1))
    after = rig.svc.reset(rig.alarm(L1).id, "op1")
    assert (after.state, after.count, after.returns, after.latched) == (
        S.UNACKNOWLEDGED,
        2,
        0,
        True,
    )
    assert rig.events[-1].annunciated


REGISTRY = OutOfService("王磊", "sensor poisoned", T0 - HOUR, "registry")


def _registry_rig() -> Rig:
    return Rig(registry_out_of_service={("e01-chloralkali", "GT-1101"): REGISTRY})


def test_registry_out_of_service_is_its_own_state_with_who_why_since() -> None:
    """A key the registry holds out of service is ``out_of_service`` (not suppressed) with the
    registry's who, why and since, from its first activation; design causes stay apart."""
    rig = _registry_rig()
    rig.svc.suppress(REGISTRY_OOS_CAUSE, [L2])
    rig.svc.suppress("SIS trip SIF-101", [L2])
    (raised,) = rig.on(L2, **gas(2))
    alarm = raised.alarm
    assert (alarm.state, alarm.out_of_service, alarm.suppressed_by) == (
        S.OUT_OF_SERVICE,
        REGISTRY,
        ("SIS trip SIF-101",),
    )
    assert (raised.annunciated, alarm.count) == (False, 0)
    with pytest.raises(IllegalTransition, match="out of service in the plant registry"):
        rig.svc.return_to_service(alarm.id, "op1")
    with pytest.raises(IllegalTransition, match="already out of service"):
        rig.svc.remove_from_service(alarm.id, "op1", "calibration")


def test_registry_hold_and_release_of_an_existing_alarm_are_journaled() -> None:
    """The registry takes an active alarm out of service (journaled with its who and why) and
    back: it shows its true state again, the operator's actions work as before."""
    rig = _registry_rig()
    rig.on(L1, **gas(1))
    rig.advance(SECOND)
    (out,) = rig.svc.suppress(REGISTRY_OOS_CAUSE, [L1])
    assert (out.action, out.to_state, out.user) == (Action.OUT_OF_SERVICE, S.OUT_OF_SERVICE, "王磊")
    assert out.comment == "registry: sensor poisoned"
    assert rig.svc.suppressions() == {L1: (REGISTRY_OOS_CAUSE,)}
    (back,) = rig.svc.release(REGISTRY_OOS_CAUSE)
    assert (back.action, back.to_state, back.alarm.out_of_service) == (
        Action.RETURN_TO_SERVICE,
        S.UNACKNOWLEDGED,
        None,
    )
    operator = rig.svc.remove_from_service(back.alarm.id, "tech1", "calibration")
    assert operator.out_of_service is not None and operator.out_of_service.source == "operator"
    assert rig.svc.return_to_service(operator.id, "tech1").state is S.UNACKNOWLEDGED


def test_journal_with_the_registry_cause_as_suppression_turns_out_of_service(
    tmp_path: Path,
) -> None:
    """An alarm journaled as suppressed by ``out_of_service`` (before it was its own state)
    becomes out of service with the registry's who/why/since when the engine holds it again."""
    path = tmp_path / "alarms.db"
    old = Rig(path)  # a service that does not know the registry: the old behaviour's shape
    old.on(L2, **gas(2))
    alarm = old.alarm(L2)
    legacy = replace(alarm, state=S.SUPPRESSED, suppressed_by=(REGISTRY_OOS_CAUSE,))
    old.journal.write(JournalBatch(alarms=[legacy], suppressed=[(L2, REGISTRY_OOS_CAUSE, T0)]))
    registry = {("e01-chloralkali", "GT-1101"): REGISTRY}
    svc = AlarmService(
        AlarmJournal(path), VirtualClock(T0 + MINUTE), GRADES, registry_out_of_service=registry
    )
    (converted,) = svc.suppress(REGISTRY_OOS_CAUSE, [L2])
    assert (converted.from_state, converted.to_state) == (S.SUPPRESSED, S.OUT_OF_SERVICE)
    assert (converted.alarm.suppressed_by, converted.alarm.out_of_service) == ((), REGISTRY)
    assert svc.suppress(REGISTRY_OOS_CAUSE, [L2]) == []  # and only once
