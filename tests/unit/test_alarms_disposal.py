"""The closed loop: disposal records per episode, disposal time limits and overdue warnings."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from safety_hub.alarms import AlarmJournal, AlarmService, IllegalTransition, InvalidAction
from safety_hub.alarms.disposal import DEFAULT_LIMITS_MS, MAX_TEXT
from safety_hub.alarms.model import Action, AlarmState, Priority
from safety_hub.clock import VirtualClock
from tests.unit.test_alarms_support import GRADES, HOUR, MINUTE, Rig

RED = "Cl2Level2|e01-chloralkali|GT-1101"
ORANGE = "Pressure|e01-chloralkali|PT-2001"
YELLOW = "Temp|e01-chloralkali|TT-3001"
BLUE = "Info|e01-chloralkali|XT-1"


def _raise(rig: Rig, key: str, priority: str) -> int:
    rig.on(key, priority=priority, hazard_source="")
    return rig.alarm(key).id


def test_red_warning_goes_overdue_once_at_its_limit_on_the_virtual_clock() -> None:
    rig = Rig()
    alarm_id = _raise(rig, RED, "critical")
    raised = rig.clock.now_ms()
    alarm = rig.svc.get(alarm_id)
    assert alarm.disposal_due_ms == raised + 30 * MINUTE
    assert (alarm.disposal, alarm.disposal_overdue) == (None, False)

    rig.advance(30 * MINUTE - 1)
    assert rig.svc.tick() == []
    rig.advance(1)
    [overdue] = rig.svc.tick()
    assert overdue.action is Action.DISPOSAL_OVERDUE
    assert overdue.from_state is overdue.to_state is AlarmState.UNACKNOWLEDGED
    assert not overdue.annunciated
    assert (
        overdue.alarm.disposal_overdue and overdue.alarm.disposal_overdue_ms == raised + 30 * MINUTE
    )
    assert overdue.as_json()["alarm"]["disposal_overdue"] is True
    rig.advance(HOUR)
    assert rig.svc.tick() == []  # once per episode


def test_orange_yellow_and_blue_limits() -> None:
    rig = Rig()
    orange = _raise(rig, ORANGE, "high")
    yellow = _raise(rig, YELLOW, "medium")
    blue = _raise(rig, BLUE, "low")
    now = rig.clock.now_ms()
    assert rig.svc.get(orange).disposal_due_ms == now + 2 * HOUR
    assert rig.svc.get(yellow).disposal_due_ms is None  # a record is needed, no time limit
    assert rig.svc.get(blue).disposal_due_ms is None
    rig.advance(2 * HOUR)
    assert [(t.alarm.id, t.action) for t in rig.svc.tick()] == [(orange, Action.DISPOSAL_OVERDUE)]


def test_dispose_records_who_what_when_and_leaves_the_state_alone() -> None:
    rig = Rig()
    alarm_id = _raise(rig, RED, "critical")
    rig.advance(40 * MINUTE)
    rig.svc.tick()
    after = rig.svc.dispose(alarm_id, "op1", "false_alarm", "  sensor drift after rain ")
    assert after.state is AlarmState.UNACKNOWLEDGED and not after.disposal_overdue
    assert after.disposal is not None
    assert (after.disposal.category, after.disposal.text, after.disposal.by) == (
        "false_alarm",
        "sensor drift after rain",
        "op1",
    )
    assert after.disposal.at_ms == rig.clock.now_ms()
    assert after.disposal_overdue_ms is not None  # it was late: kept for the record
    last = rig.events[-1]
    assert (last.action, last.user, last.comment) == (
        Action.DISPOSE,
        "op1",
        "false_alarm: sensor drift after rain",
    )
    [(alarm, record)] = rig.svc.disposals()
    assert (alarm.id, record) == (alarm_id, after.disposal)


def test_dispose_refuses_what_is_not_applicable() -> None:
    rig = Rig()
    red = _raise(rig, RED, "critical")
    blue = _raise(rig, BLUE, "low")
    with pytest.raises(IllegalTransition, match="blue"):
        rig.svc.dispose(blue, "op1", "other", "x")
    with pytest.raises(InvalidAction, match="category"):
        rig.svc.dispose(red, "op1", "vandalism", "x")
    with pytest.raises(InvalidAction, match="text"):
        rig.svc.dispose(red, "op1", "other", " ")
    with pytest.raises(InvalidAction, match="text"):
        rig.svc.dispose(red, "op1", "other", "x" * (MAX_TEXT + 1))
    rig.svc.dispose(red, "op1", "real_release", "valve packing leak, isolated")
    with pytest.raises(IllegalTransition, match="already disposed"):
        rig.svc.dispose(red, "op2", "other", "again")


def test_a_new_annunciation_is_a_new_episode_needing_a_new_disposal() -> None:
    rig = Rig()
    alarm_id = _raise(rig, ORANGE, "high")
    rig.svc.dispose(alarm_id, "op1", "maintenance", "line purge")
    rig.advance(MINUTE)
    rig.off(ORANGE, priority="high", hazard_source="")
    cleared = rig.svc.get(alarm_id)
    assert cleared.disposal is not None  # clearing is no new episode
    rig.advance(MINUTE)
    rig.on(ORANGE, priority="high", hazard_source="")
    again = rig.svc.get(alarm_id)
    assert (again.disposal, again.disposal_overdue_ms) == (None, None)
    assert again.disposal_due_ms == rig.clock.now_ms() + 2 * HOUR
    rig.svc.dispose(alarm_id, "op1", "instrument_fault", "transmitter replaced")
    assert [r.category for _, r in rig.svc.disposals()] == ["maintenance", "instrument_fault"]


def test_disposal_after_clear_and_while_shelved_is_allowed_but_hidden_does_not_go_overdue() -> None:
    rig = Rig()
    red = _raise(rig, RED, "critical")
    rig.svc.shelve(red, "op1", "known", rig.clock.now_ms() + 8 * HOUR)
    rig.advance(HOUR)
    assert rig.svc.tick() == []  # shelved: no escalation
    orange = _raise(rig, ORANGE, "high")
    rig.off(ORANGE, priority="high", hazard_source="")
    rig.svc.acknowledge(orange, "op1")
    assert rig.svc.get(orange).state is AlarmState.NORMAL
    assert rig.svc.dispose(orange, "op1", "false_alarm", "spike").disposal is not None
    assert rig.svc.dispose(red, "op1", "maintenance", "planned work").disposal is not None


def test_configured_limits() -> None:
    rig = Rig(disposal_limits={Priority.CRITICAL: 5 * MINUTE, Priority.MEDIUM: HOUR})
    red = _raise(rig, RED, "critical")
    yellow = _raise(rig, YELLOW, "medium")
    orange = _raise(rig, ORANGE, "high")
    now = rig.clock.now_ms()
    assert rig.svc.get(red).disposal_due_ms == now + 5 * MINUTE
    assert rig.svc.get(yellow).disposal_due_ms == now + HOUR
    assert rig.svc.get(orange).disposal_due_ms is None
    assert DEFAULT_LIMITS_MS[Priority.CRITICAL] == 30 * MINUTE


def test_due_times_and_disposals_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "alarms.db"
    rig = Rig(path)
    red = _raise(rig, RED, "critical")
    orange = _raise(rig, ORANGE, "high")
    rig.svc.dispose(orange, "op1", "real_release", "flange leak")
    # killed without closing; a new service on the same file, on a clock 31 min on
    clock = VirtualClock(rig.clock.now_ms() + 31 * MINUTE)
    reborn = AlarmService(AlarmJournal(path), clock, GRADES)
    assert reborn.get(orange).disposal == rig.svc.get(orange).disposal
    [overdue] = reborn.tick()
    assert (overdue.alarm.id, overdue.action) == (red, Action.DISPOSAL_OVERDUE)
    again = AlarmService(AlarmJournal(path), clock, GRADES)
    assert again.get(red).disposal_overdue and again.tick() == []
    assert [r.text for _, r in again.disposals()] == ["flange leak"]


def test_alarm_rows_from_before_disposal_still_load(tmp_path: Path) -> None:
    path = tmp_path / "alarms.db"
    rig = Rig(path)
    red = _raise(rig, RED, "critical")
    with closing(sqlite3.connect(path)) as raw, raw:
        for alarm_id, data in raw.execute("SELECT id, data FROM alarms").fetchall():
            old = json.loads(data)
            for name in ("disposal", "disposal_due_ms", "disposal_overdue_ms", "disposal_overdue"):
                del old[name]
            raw.execute("UPDATE alarms SET data = ? WHERE id = ?", (json.dumps(old), alarm_id))
    clock = VirtualClock(rig.clock.now_ms() + HOUR)
    reborn = AlarmService(AlarmJournal(path), clock, GRADES)
    old_alarm = reborn.get(red)
    assert (old_alarm.disposal, old_alarm.disposal_due_ms, old_alarm.disposal_overdue) == (
        None,
        None,
        False,
    )
    assert reborn.tick() == []  # no due time was recorded: it cannot go overdue
    assert reborn.dispose(red, "op1", "other", "old episode").disposal is not None


def test_disposal_kpis_rate_time_to_dispose_and_false_alarms_per_detector() -> None:
    rig = Rig()
    red = _raise(rig, RED, "critical")
    orange = _raise(rig, ORANGE, "high")
    _raise(rig, YELLOW, "medium")  # never disposed
    _raise(rig, BLUE, "low")  # needs none
    rig.advance(10 * MINUTE)
    rig.svc.dispose(red, "op1", "false_alarm", "bump test gas")
    rig.advance(10 * MINUTE)
    rig.svc.dispose(orange, "op1", "real_release", "flange leak")
    rig.advance(MINUTE)
    rig.off(RED, priority="critical", hazard_source="")
    rig.svc.acknowledge(red, "op1")
    rig.on(RED, priority="critical", hazard_source="")  # a second red episode, not disposed
    rig.svc.dispose(rig.alarm(RED).id, "op1", "false_alarm", "again the bump test")
    kpis = rig.svc.kpis(window_ms=HOUR).disposal
    assert (kpis.needed, kpis.disposed, kpis.disposals) == (4, 3, 3)
    assert kpis.rate_pct == pytest.approx(75.0)
    assert kpis.median_time_to_dispose_ms == 10 * MINUTE
    assert kpis.p90_time_to_dispose_ms == 20 * MINUTE
    assert [(f.tag, f.count) for f in kpis.false_alarms] == [("GT-1101", 2)]
    assert rig.svc.kpis(window_ms=HOUR).as_json()["disposal"]["rate_pct"] == pytest.approx(75.0)
    empty = rig.svc.kpis(now_ms=rig.clock.now_ms() + 3 * HOUR, window_ms=HOUR).disposal
    assert (empty.needed, empty.rate_pct, empty.median_time_to_dispose_ms) == (0, None, None)
