"""Alarm lifecycle (ISA-18.2 / IEC 62682): transitions, latching, shelving, suppression."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from safety_hub.alarms import (
    Action,
    AlarmError,
    AlarmNotFound,
    AlarmState,
    IllegalTransition,
    InvalidAction,
    InvalidCondition,
    Priority,
    Transition,
)
from safety_hub.alarms.lifecycle import effective_priority
from safety_hub.errors import SafetyHubError
from tests.unit.test_alarms_support import (
    CL2_SOURCE,
    HOUR,
    MINUTE,
    SECOND,
    T0,
    TANK_SOURCE,
    Rig,
    gas,
)

S = AlarmState
KEY = "HighPressure|e01-chloralkali|PT-2001"
CAUSE = "SIS trip SIF-101"
L1 = "Cl2Level1|e01-chloralkali|GT-1101"
L2 = "Cl2Level2|e01-chloralkali|GT-1101"

# --- the transition table ----------------------------------------------------------------------
# Starting situations; the suffix L marks a latching alarm (gas, SIS trip).
#   N normal · U unacknowledged · A acknowledged · R returned-to-normal unacknowledged
#   UL / AL unacknowledged / acknowledged, latching, active · LU / LA latched, cleared, un-/acked
#   SH shelved (condition active) · SU suppressed by design (active) · OOS out of service (active)
# Each outcome is again one of those situations, or X: IllegalTransition, nothing changes.
EXPECTED_FLAGS: dict[str, tuple[AlarmState, dict[str, bool]]] = {
    "N": (S.NORMAL, {"active": False, "latched": False}),
    "U": (S.UNACKNOWLEDGED, {"active": True, "acknowledged": False, "latched": False}),
    "A": (S.ACKNOWLEDGED, {"active": True, "acknowledged": True, "latched": False}),
    "R": (S.RTN_UNACKNOWLEDGED, {"active": False, "acknowledged": False, "latched": False}),
    "UL": (S.UNACKNOWLEDGED, {"active": True, "acknowledged": False, "latched": True}),
    "AL": (S.ACKNOWLEDGED, {"active": True, "acknowledged": True, "latched": True}),
    "LU": (S.LATCHED, {"active": False, "acknowledged": False, "latched": True}),
    "LA": (S.LATCHED, {"active": False, "acknowledged": True, "latched": True}),
    "SH": (S.SHELVED, {}),
    "SU": (S.SUPPRESSED, {}),
    "OOS": (S.OUT_OF_SERVICE, {}),
}

ACTIONS = (
    "ack",
    "reset",
    "shelve",
    "unshelve",
    "remove",
    "return",
    "on",
    "off",
    "suppress",
    "release",
    "expire",
)
# fmt: off
TABLE: dict[str, tuple[str, ...]] = {
    #        ack   reset  shelve unshelve remove return  on     off    suppress release expire
    "N":   ("X",  "X",   "SH",  "X",     "OOS", "X",   "U",   "N",   "SU",    "N",    "N"),
    "U":   ("A",  "X",   "SH",  "X",     "OOS", "X",   "U",   "R",   "SU",    "U",    "U"),
    "A":   ("X",  "X",   "SH",  "X",     "OOS", "X",   "A",   "N",   "SU",    "A",    "A"),
    "R":   ("N",  "X",   "SH",  "X",     "OOS", "X",   "U",   "R",   "SU",    "R",    "R"),
    "UL":  ("AL", "X",   "SH",  "X",     "OOS", "X",   "UL",  "LU",  "SU",    "UL",   "UL"),
    "AL":  ("X",  "UL",  "SH",  "X",     "OOS", "X",   "AL",  "LA",  "SU",    "AL",   "AL"),
    "LU":  ("LA", "X",   "SH",  "X",     "OOS", "X",   "UL",  "LU",  "SU",    "LU",   "LU"),
    "LA":  ("X",  "N",   "SH",  "X",     "OOS", "X",   "AL",  "LA",  "SU",    "LA",   "LA"),
    "SH":  ("X",  "X",   "X",   "U",     "OOS", "X",   "SH",  "SH",  "SH",    "SH",   "U"),
    "SU":  ("X",  "X",   "SH",  "X",     "OOS", "X",   "SU",  "SU",  "SU",    "U",    "SU"),
    "OOS": ("X",  "X",   "X",   "X",     "X",   "U",   "OOS", "OOS", "OOS",   "OOS",  "OOS"),
}
# fmt: on
OPERATOR_ACTIONS = {"ack", "reset", "shelve", "unshelve", "remove", "return"}


def _arrange(rig: Rig, start: str) -> None:
    latch = start in ("UL", "AL", "LU", "LA")
    rig.on(KEY, latch=latch)
    alarm_id = rig.alarm(KEY).id
    if start in ("N", "A", "AL"):
        rig.svc.acknowledge(alarm_id, "op1")
    if start in ("N", "R", "LU", "LA"):
        rig.off(KEY, latch=latch)
    if start == "LA":
        rig.svc.acknowledge(alarm_id, "op1")
    if start == "SH":
        rig.svc.shelve(alarm_id, "op1", "chattering after maintenance", T0 + HOUR)
    if start == "SU":
        rig.svc.suppress(CAUSE, [KEY])
    if start == "OOS":
        rig.svc.remove_from_service(alarm_id, "tech1", "detector calibration")


def _act(rig: Rig, action: str, latch: bool) -> None:
    alarm_id = rig.alarm(KEY).id
    svc = rig.svc
    perform: dict[str, Callable[[], object]] = {
        "ack": lambda: svc.acknowledge(alarm_id, "op2"),
        "reset": lambda: svc.reset(alarm_id, "op2"),
        "shelve": lambda: svc.shelve(alarm_id, "op2", "nuisance", rig.clock.now_ms() + HOUR),
        "unshelve": lambda: svc.unshelve(alarm_id, "op2"),
        "remove": lambda: svc.remove_from_service(alarm_id, "tech2", "sensor replaced"),
        "return": lambda: svc.return_to_service(alarm_id, "tech2"),
        "on": lambda: rig.on(KEY, latch=latch, value=7.5),
        "off": lambda: rig.off(KEY, latch=latch),
        "suppress": lambda: svc.suppress(CAUSE, [KEY]),
        "release": lambda: svc.release(CAUSE),
        "expire": lambda: (rig.advance(2 * HOUR), svc.tick()),
    }
    perform[action]()


CASES = [
    pytest.param(start, action, TABLE[start][i], id=f"{start}-{action}-{TABLE[start][i]}")
    for start in TABLE
    for i, action in enumerate(ACTIONS)
]


@pytest.mark.parametrize(("start", "action", "outcome"), CASES)
def test_transition_table(start: str, action: str, outcome: str) -> None:
    """Every (state, action) pair gives the ISA-18.2 state of the table, or is refused unchanged."""
    rig = Rig()
    rig.advance(SECOND)
    _arrange(rig, start)
    state, flags = EXPECTED_FLAGS[start]
    assert rig.alarm(KEY).state is state  # the arrangement itself is right
    before, rows = rig.alarm(KEY), len(rig.svc.journal())
    rig.advance(SECOND)

    if outcome == "X":
        with pytest.raises(IllegalTransition) as raised:
            _act(rig, action, latch=start in ("UL", "AL", "LU", "LA"))
        assert raised.value.state is state
        assert rig.alarm(KEY) == before
        assert len(rig.svc.journal()) == rows
        return

    _act(rig, action, latch=start in ("UL", "AL", "LU", "LA"))
    after = rig.alarm(KEY)
    state, flags = EXPECTED_FLAGS[outcome]
    assert after.state is state
    for flag, value in flags.items():
        assert getattr(after, flag) is value, flag
    journal = rig.svc.journal()
    if after != before:
        assert journal[-1].to_state is after.state
        assert rig.events[-1].alarm == after
    if action in OPERATOR_ACTIONS:
        assert journal[-1].user in ("op2", "tech2")


def test_illegal_transition_names_alarm_action_and_reason() -> None:
    """An illegal action says which alarm, what was refused and why, and carries those as data."""
    rig = Rig()
    rig.on(L2, **gas(2))
    alarm = rig.alarm(L2)
    with pytest.raises(IllegalTransition) as raised:
        rig.svc.reset(alarm.id, "op1")
    error = raised.value
    assert str(error) == f"alarm {alarm.id} (Cl2Level2 GT-1101): cannot reset: not acknowledged"
    assert (error.alarm_id, error.state, error.action) == (alarm.id, S.UNACKNOWLEDGED, "reset")
    assert isinstance(error, AlarmError) and isinstance(error, SafetyHubError)


def test_unknown_alarm_id_is_not_found() -> None:
    """Actions on an id that does not exist raise AlarmNotFound; find() of an unknown key is None."""
    rig = Rig()
    with pytest.raises(AlarmNotFound, match="no alarm with id 99"):
        rig.svc.acknowledge(99, "op1")
    assert rig.svc.find("Nope|e01|X") is None


# --- gas alarms: priority, latching, reset ---------------------------------------------------


def test_cl2_levels_latch_until_acknowledged_and_reset() -> None:
    """Cl2 level 1 and 2 raise, stay latched after the gas falls back, and clear only by ack+reset."""
    rig = Rig()
    rig.on(L1, **gas(1), value=1.3)
    rig.advance(5 * SECOND)
    rig.on(L2, **gas(2), value=2.6)
    level1, level2 = rig.alarm(L1), rig.alarm(L2)
    assert level1.priority is Priority.MEDIUM  # level 1: as the rule says
    assert (level2.priority, level2.rule_priority) == (Priority.HIGH, Priority.MEDIUM)
    assert level1.state is level2.state is S.UNACKNOWLEDGED
    assert level1.latched and level2.latched

    rig.advance(MINUTE)
    rig.off(L2, **gas(2), value=0.4)
    rig.off(L1, **gas(1), value=0.4)
    for key in (L1, L2):
        alarm = rig.alarm(key)
        assert (alarm.state, alarm.active, alarm.latched) == (S.LATCHED, False, True)
        with pytest.raises(IllegalTransition, match="not acknowledged"):
            rig.svc.reset(alarm.id, "op1")

    rig.advance(30 * SECOND)
    for key in (L1, L2):
        acked = rig.svc.acknowledge(rig.alarm(key).id, "op1")
        assert (acked.state, acked.acknowledged, acked.acknowledged_by) == (S.LATCHED, True, "op1")
    rig.advance(10 * SECOND)
    for key in (L1, L2):
        done = rig.svc.reset(rig.alarm(key).id, "op1", comment="area checked, no residue")
        assert (done.state, done.latched) == (S.NORMAL, False)
    assert rig.svc.list() == []
    assert [e.action for e in rig.svc.journal(alarm_id=rig.alarm(L2).id)] == [
        Action.RAISE,
        Action.CLEAR,
        Action.ACK,
        Action.RESET,
    ]


def test_reset_while_gas_still_present_reannunciates() -> None:
    """A reset while the concentration is still over the limit re-annunciates at once."""
    rig = Rig()
    rig.on(L2, **gas(2), value=3.0)
    alarm_id = rig.alarm(L2).id
    rig.advance(20 * SECOND)
    rig.svc.acknowledge(alarm_id, "op1")
    rig.advance(20 * SECOND)
    after = rig.svc.reset(alarm_id, "op1")
    assert (after.state, after.acknowledged, after.latched) == (S.UNACKNOWLEDGED, False, True)
    assert (after.count, after.raised_ms, after.first_raised_ms) == (2, T0 + 40 * SECOND, T0)
    assert rig.events[-1].action is Action.RESET and rig.events[-1].annunciated


def test_gas_returning_to_an_acknowledged_latch_stays_acknowledged() -> None:
    """Gas that comes back while the latch holds (acked, not reset) is the same alarm: it is
    acknowledged and active again, counts the return and does not annunciate."""
    rig = Rig()
    rig.on(L1, **gas(1))
    rig.off(L1, **gas(1))
    rig.svc.acknowledge(rig.alarm(L1).id, "op1")
    rig.advance(SECOND)
    (back,) = rig.on(L1, **gas(1), value=1.8, ts_ms=rig.clock.now_ms() - 300)
    alarm = rig.alarm(L1)
    assert (alarm.state, alarm.active, alarm.count, alarm.acknowledged_by) == (
        S.ACKNOWLEDGED,
        True,
        1,
        "op1",
    )
    assert (alarm.returns, alarm.last_active_ms) == (1, T0 + SECOND - 300)
    assert (back.action, back.annunciated, back.from_state) == (Action.REACTIVATE, False, S.LATCHED)


@pytest.mark.parametrize(
    ("rule", "level", "grade", "effective"),
    [
        ("medium", 2, 1, "high"),
        ("low", 2, 2, "high"),
        ("critical", 2, 1, "critical"),
        ("medium", 1, 1, "medium"),
        ("medium", 2, 3, "medium"),
        ("low", 2, None, "low"),
        ("low", None, 1, "low"),
    ],
)
def test_grade_rule_raises_level2_on_grade_1_2_sources(
    rule: str, level: int | None, grade: int | None, effective: str
) -> None:
    """A level-2 alarm on a grade-1/2 source is at least high; nothing else changes priority."""
    assert effective_priority(Priority(rule), level, grade) is Priority(effective)


def test_grade_rule_uses_the_hazard_source_of_the_alarm() -> None:
    """The service looks up the grade of the alarm's own hazard source (grade 3 stays medium)."""
    rig = Rig()
    rig.on("TankGasLevel2|e02|GT-3001", **gas(2, "GT-3001"), hazard_source=TANK_SOURCE)
    rig.on("Cl2Level2|e01|GT-1102", **gas(2, "GT-1102"), hazard_source="HS-UNKNOWN")
    assert rig.alarm("TankGasLevel2|e02|GT-3001").priority is Priority.MEDIUM
    assert rig.alarm("Cl2Level2|e01|GT-1102").priority is Priority.MEDIUM


# --- re-trigger, first-out, ordering -----------------------------------------------------------


def test_retrigger_updates_the_same_instance() -> None:
    """A re-trigger while active updates value and time of the one instance, never a duplicate."""
    rig = Rig()
    rig.on(KEY, value=10.0)
    rig.advance(SECOND)
    rig.on(KEY, value=11.0)
    rig.advance(SECOND)
    transitions = rig.on(KEY, value=12.5)
    alarm = rig.alarm(KEY)
    assert (alarm.count, alarm.value, alarm.raised_ms) == (1, 12.5, T0)
    assert alarm.event_ts_ms == T0 + 2 * SECOND
    assert [t.action for t in transitions] == [Action.UPDATE]
    assert not transitions[0].annunciated
    assert len(rig.svc.list()) == 1
    assert [e.action for e in rig.svc.journal()] == [Action.RAISE, Action.UPDATE, Action.UPDATE]


def test_new_activation_of_a_normal_alarm_reannunciates_same_id() -> None:
    """An alarm that went back to normal re-annunciates unacknowledged under its stable id."""
    rig = Rig()
    rig.on(KEY)
    first_id = rig.alarm(KEY).id
    rig.svc.acknowledge(first_id, "op1")
    rig.off(KEY)
    assert rig.alarm(KEY).state is S.NORMAL
    rig.advance(MINUTE)
    rig.on(KEY)
    again = rig.alarm(KEY)
    assert (again.id, again.state, again.count, again.raised_ms) == (
        first_id,
        S.UNACKNOWLEDGED,
        2,
        T0 + MINUTE,
    )
    assert again.acknowledged_ms is None


def test_clear_of_unknown_or_normal_alarm_changes_nothing() -> None:
    """A return-to-normal for a key with no alarm, or an alarm already clear, is not journaled."""
    rig = Rig()
    assert rig.off(KEY) == []
    rig.on(KEY)
    rig.off(KEY)
    assert rig.off(KEY) == []
    assert len(rig.svc.journal()) == 2


def test_first_out_stays_pinned_and_later_alarms_follow_in_time_order() -> None:
    """The first alarm of a hazard source's episode stays on top; the others follow by time."""
    rig = Rig()
    early = "PressureHigh|e01-chloralkali|PT-1001"
    rig.on(early)  # an episode that ends before the incident: its alarm keeps the lowest id
    rig.svc.acknowledge(rig.alarm(early).id, "op1")
    rig.off(early)
    assert rig.svc.first_out(CL2_SOURCE) is None

    rig.advance(MINUTE)
    rig.on(L1, **gas(1))
    for tag in ("GT-1102", "GT-1103"):
        rig.advance(10 * SECOND)
        rig.on(f"Cl2Level1|e01-chloralkali|{tag}", **gas(1, tag))
    rig.advance(10 * SECOND)
    rig.on(early)
    rig.on("OtherArea|e02|TT-1", hazard_source=TANK_SOURCE)

    first = rig.svc.first_out(CL2_SOURCE)
    assert first is not None and first.key == L1 and first.id > rig.alarm(early).id
    listed = [a.key for a in rig.svc.list(hazard_source=CL2_SOURCE)]
    assert listed == [
        L1,
        "Cl2Level1|e01-chloralkali|GT-1102",
        "Cl2Level1|e01-chloralkali|GT-1103",
        early,
    ]
    rig.svc.acknowledge(rig.alarm(L1).id, "op1")
    rig.off(L1, **gas(1))
    rig.svc.reset(rig.alarm(L1).id, "op1")  # the first-out itself is back to normal...
    assert rig.svc.first_out(CL2_SOURCE) == rig.alarm(L1)  # ...and stays pinned
    assert rig.svc.first_out(TANK_SOURCE) == rig.alarm("OtherArea|e02|TT-1")


def test_first_out_episode_ends_when_nothing_of_the_source_is_shown() -> None:
    """When every alarm of the source is normal the episode ends; the next alarm is first-out."""
    rig = Rig()
    rig.on(KEY)
    rig.svc.acknowledge(rig.alarm(KEY).id, "op1")
    rig.off(KEY)
    assert rig.svc.first_out(CL2_SOURCE) is None
    rig.on(L2, **gas(2))
    rig.on(KEY)
    first = rig.svc.first_out(CL2_SOURCE)
    assert first is not None and first.key == L2


# --- shelving ----------------------------------------------------------------------------------


def test_shelve_expires_back_to_the_annunciated_state() -> None:
    """A shelved alarm returns at expiry: still active, it annunciates again (unacknowledged)."""
    rig = Rig()
    rig.on(KEY)
    alarm_id = rig.alarm(KEY).id
    rig.svc.acknowledge(alarm_id, "op1")
    shelved = rig.svc.shelve(alarm_id, "op1", "known nuisance, work order 4711", T0 + 30 * MINUTE)
    assert shelved.state is S.SHELVED
    assert shelved.shelved is not None
    assert (shelved.shelved.by, shelved.shelved.until_ms) == ("op1", T0 + 30 * MINUTE)
    assert rig.svc.journal()[-1].comment == "known nuisance, work order 4711"

    rig.advance(30 * MINUTE - 1)
    assert rig.svc.tick() == []
    rig.advance(1)
    [expired] = rig.svc.tick()
    assert (expired.action, expired.from_state, expired.to_state) == (
        Action.SHELVE_EXPIRED,
        S.SHELVED,
        S.UNACKNOWLEDGED,
    )
    assert expired.alarm.shelved is None and expired.alarm.count == 2


def test_shelved_alarm_tracks_its_condition_without_annunciating() -> None:
    """While shelved the condition is followed (not annunciated); at expiry the true state shows."""
    rig = Rig()
    rig.on(KEY)
    alarm_id = rig.alarm(KEY).id
    rig.svc.shelve(alarm_id, "op1", "chattering", T0 + HOUR)
    rig.off(KEY)
    rig.on(KEY, value=3.0)
    rig.off(KEY, value=1.0)
    alarm = rig.alarm(KEY)
    assert (alarm.state, alarm.active, alarm.count, alarm.value) == (S.SHELVED, False, 1, 1.0)
    rig.advance(HOUR)
    rig.svc.tick()
    assert rig.alarm(KEY).state is S.NORMAL


def test_shelve_needs_user_reason_and_a_limited_duration() -> None:
    """Shelving without user or reason, into the past or beyond the maximum is invalid."""
    rig = Rig(max_shelve_ms=2 * HOUR)
    rig.on(KEY)
    alarm_id = rig.alarm(KEY).id
    bad: list[tuple[str, str, int, str]] = [
        ("op1", "", T0 + HOUR, "reason is required"),
        ("op1", "   ", T0 + HOUR, "reason is required"),
        ("", "nuisance", T0 + HOUR, "user is required"),
        ("op1", "nuisance", T0, "not after now"),
        ("op1", "nuisance", T0 + 2 * HOUR + 1, "longer than the maximum 2 h"),
    ]
    for user, reason, until, message in bad:
        with pytest.raises(InvalidAction, match=message):
            rig.svc.shelve(alarm_id, user, reason, until)
    assert rig.svc.shelve(alarm_id, "op1", "nuisance", T0 + 2 * HOUR).state is S.SHELVED


def test_default_maximum_shelve_is_eight_hours() -> None:
    """Without configuration a shelve may last 8 h and not a millisecond more."""
    rig = Rig()
    rig.on(KEY)
    alarm_id = rig.alarm(KEY).id
    with pytest.raises(InvalidAction, match="longer than the maximum 8 h"):
        rig.svc.shelve(alarm_id, "op1", "nuisance", T0 + 8 * HOUR + 1)
    assert rig.svc.shelve(alarm_id, "op1", "nuisance", T0 + 8 * HOUR).state is S.SHELVED


def test_unshelve_by_operator_shows_the_true_state() -> None:
    """An operator's unshelve of a latched gas alarm that cleared meanwhile shows it latched."""
    rig = Rig()
    rig.on(L1, **gas(1))
    alarm_id = rig.alarm(L1).id
    rig.svc.shelve(alarm_id, "op1", "detector drifting", T0 + HOUR)
    rig.off(L1, **gas(1))
    back = rig.svc.unshelve(alarm_id, "op1", comment="technician on site")
    assert (back.state, back.latched, back.acknowledged) == (S.LATCHED, True, False)
    assert rig.svc.journal()[-1].comment == "technician on site"


# --- out of service, suppression by design -------------------------------------------------


def test_out_of_service_and_back() -> None:
    """Out of service needs a reason and a person; on return the alarm shows its true state."""
    rig = Rig()
    rig.on(L1, **gas(1))
    alarm_id = rig.alarm(L1).id
    with pytest.raises(InvalidAction, match="reason is required"):
        rig.svc.remove_from_service(alarm_id, "tech1", "")
    rig.advance(MINUTE)
    oos = rig.svc.remove_from_service(alarm_id, "tech1", "calibration with test gas")
    assert oos.state is S.OUT_OF_SERVICE
    assert oos.out_of_service is not None
    assert (oos.out_of_service.by, oos.out_of_service.since_ms) == ("tech1", T0 + MINUTE)
    with pytest.raises(IllegalTransition, match="cannot acknowledge: out of service"):
        rig.svc.acknowledge(alarm_id, "op1")
    rig.off(L1, **gas(1))
    rig.on(L1, **gas(1), value=5.0)  # test gas: tracked, never annunciated
    rig.off(L1, **gas(1))
    assert rig.alarm(L1).count == 1
    back = rig.svc.return_to_service(alarm_id, "tech1")
    assert (back.state, back.out_of_service) == (S.LATCHED, None)  # the latch from before


def test_suppression_by_design_counts_its_causes() -> None:
    """An alarm held by two design causes stays suppressed until both are released."""
    rig = Rig()
    consequence = "FlowLow|e01-chloralkali|FT-2002"
    rig.on(consequence)
    rig.svc.suppress(CAUSE, [consequence])
    rig.svc.suppress("unit U2 out of service", [consequence])
    assert rig.alarm(consequence).suppressed_by == (CAUSE, "unit U2 out of service")
    assert rig.svc.suppress(CAUSE, [consequence]) == []  # same cause again: nothing new

    [released] = rig.svc.release(CAUSE)
    assert released.alarm.state is S.SUPPRESSED
    assert released.alarm.suppressed_by == ("unit U2 out of service",)
    [revealed] = rig.svc.release("unit U2 out of service", [consequence])
    assert (revealed.action, revealed.to_state) == (Action.UNSUPPRESS, S.UNACKNOWLEDGED)
    assert rig.svc.suppressions() == {}
    assert rig.svc.release(CAUSE) == []


def test_suppression_of_a_key_before_its_alarm_exists() -> None:
    """A SIS trip can suppress a consequential alarm before it first raises; it never sounds."""
    rig = Rig()
    consequence = "FlowLow|e01-chloralkali|FT-2002"
    assert rig.svc.suppress(CAUSE, [consequence]) == []  # no alarm yet, so no transition
    [row] = rig.svc.journal()
    assert (row.alarm_id, row.key, row.action, row.comment) == (
        None,
        consequence,
        Action.SUPPRESS,
        CAUSE,
    )
    [raised] = rig.on(consequence)
    assert (raised.to_state, raised.annunciated, raised.alarm.count) == (S.SUPPRESSED, False, 0)
    assert raised.alarm.raised_ms is None
    [revealed] = rig.svc.release(CAUSE)
    assert revealed.to_state is S.UNACKNOWLEDGED and revealed.alarm.count == 1


def test_suppress_needs_a_cause() -> None:
    """A suppression without a cause is refused: the journal must say why."""
    rig = Rig()
    with pytest.raises(InvalidAction, match="cause is required"):
        rig.svc.suppress(" ", [KEY])


# --- listeners, payload, condition ---------------------------------------------------------------


def test_listeners_get_each_transition_after_it_is_journaled() -> None:
    """A listener sees a transition only once the journal holds it, and sees all of them."""
    rig = Rig()
    seen: list[tuple[int, bool]] = []

    def listener(transition: Transition) -> None:
        seqs = [e.id for e in rig.svc.journal()]
        seen.append((transition.seq, transition.seq in seqs))

    rig.svc.subscribe(listener)
    rig.on(KEY)
    rig.svc.acknowledge(rig.alarm(KEY).id, "op1")
    rig.off(KEY)
    assert seen == [(1, True), (2, True), (3, True)]


def test_failing_listener_does_not_undo_or_block_the_alarm() -> None:
    """A listener that raises is logged and counted; the transition and other listeners stand."""
    rig = Rig()

    def broken(transition: Transition) -> None:
        raise RuntimeError("mqtt down")

    rig.svc.subscribe(broken)
    after: list[Transition] = []
    rig.svc.subscribe(after.append)
    rig.on(KEY)
    assert rig.alarm(KEY).state is S.UNACKNOWLEDGED
    assert len(after) == 1 and rig.svc.listener_errors == 1


def test_transition_json_is_the_documented_payload() -> None:
    """as_json() is plain JSON with the schema, the action, the states and the alarm snapshot."""
    rig = Rig()
    [raised] = rig.on(L2, **gas(2), value=2.4, labels={"operator_position": "console-1"})
    payload = json.loads(json.dumps(raised.as_json(), ensure_ascii=False))
    assert payload["schema"] == "safety-hub/alarm-event/v1"
    assert (payload["action"], payload["from_state"], payload["to_state"]) == (
        "raise",
        "normal",
        "unacknowledged",
    )
    assert payload["annunciated"] is True
    alarm = payload["alarm"]
    assert (alarm["priority"], alarm["rule_priority"], alarm["level"]) == ("high", "medium", 2)
    assert alarm["summary"] == "氯气浓度二级报警 GT-1101"
    assert alarm["labels"] == {"operator_position": "console-1"}
    assert set(alarm) >= {"id", "key", "state", "shelved", "out_of_service", "suppressed_by"}


def test_on_delay_is_recorded_and_bounded() -> None:
    """The rule's on-delay is recorded on the alarm; over 60 s (GB/T 50493) is refused."""
    rig = Rig()
    rig.on(L1, **gas(1), on_delay_s=10.0)
    assert rig.alarm(L1).on_delay_s == 10.0
    with pytest.raises(InvalidCondition, match="on_delay_s=61"):
        rig.condition(L1, True, on_delay_s=61.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("priority", "urgent"), ("alarm_class", "weather"), ("level", 3), ("value", float("nan"))],
)
def test_condition_rejects_bad_fields(field: str, value: object) -> None:
    """A condition with an unknown priority, class, level or a non-finite value is refused."""
    with pytest.raises(InvalidCondition, match=field):
        Rig().condition(KEY, True, **{field: value})


def test_list_filters_and_pages() -> None:
    """list() filters by state, priority, enterprise and source; normal ones only when asked."""
    rig = Rig()
    rig.on(L2, **gas(2))
    rig.advance(SECOND)
    rig.on(KEY, priority="low")
    rig.advance(SECOND)
    rig.on("TT|e02-tanks|TT-1", enterprise="e02-tanks", hazard_source=TANK_SOURCE)
    rig.svc.acknowledge(rig.alarm("TT|e02-tanks|TT-1").id, "op1")
    rig.off("TT|e02-tanks|TT-1")
    svc = rig.svc
    assert [a.key for a in svc.list()] == [L2, KEY]
    assert [a.key for a in svc.list(include_normal=True)][-1] == "TT|e02-tanks|TT-1"
    assert [a.key for a in svc.list(state="normal")] == ["TT|e02-tanks|TT-1"]
    assert [a.key for a in svc.list(priority=Priority.HIGH)] == [L2]
    assert svc.list(enterprise="e02-tanks") == []
    assert [a.key for a in svc.list(limit=1, offset=1)] == [KEY]
