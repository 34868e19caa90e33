"""No sequence of conditions, operator actions, suppressions and clock ticks corrupts an alarm."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from safety_hub.alarms import (
    AlarmService,
    AlarmState,
    IllegalTransition,
    InvalidAction,
)
from safety_hub.alarms.model import DISPLAYED_STATES, HIDDEN_STATES
from tests.unit.test_alarms_support import GRADES, HOUR, MINUTE, SECOND, TANK_SOURCE, Rig, gas

KEYS = {
    "Cl2Level2|e01-chloralkali|GT-1101": gas(2),  # latching, grade-1 source
    "PressureHigh|e01-chloralkali|PT-2001": {},  # not latching
    "TankLevelHigh|e02-tanks|LT-3001": {"hazard_source": TANK_SOURCE, "latch": True},
}
CAUSES = ("SIS trip SIF-101", "unit U2 out of service")
keys = st.sampled_from(sorted(KEYS))
users = st.sampled_from(["op1", "op2"])


class AlarmLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rig = Rig()
        self.condition: dict[str, bool] = {}  # what the engine last said, per key

    def _alarm_id(self, key: str) -> int | None:
        alarm = self.rig.svc.find(key)
        return None if alarm is None else alarm.id

    def _try(self, key: str, action: str, user: str) -> None:
        alarm_id = self._alarm_id(key)
        if alarm_id is None:
            return
        svc = self.rig.svc
        now = self.rig.clock.now_ms()
        calls = {
            "ack": lambda: svc.acknowledge(alarm_id, user),
            "reset": lambda: svc.reset(alarm_id, user),
            "shelve": lambda: svc.shelve(alarm_id, user, "nuisance", now + 20 * MINUTE),
            "unshelve": lambda: svc.unshelve(alarm_id, user),
            "remove": lambda: svc.remove_from_service(alarm_id, user, "maintenance"),
            "return": lambda: svc.return_to_service(alarm_id, user),
        }
        before = svc.get(alarm_id)
        try:
            calls[action]()
        except (IllegalTransition, InvalidAction):
            assert svc.get(alarm_id) == before  # a refused action changes nothing

    @rule(key=keys, active=st.booleans(), value=st.floats(0, 10))
    def condition_changes(self, key: str, active: bool, value: float) -> None:
        self.rig.svc.apply(self.rig.condition(key, active, value=value, **KEYS[key]))
        if active or key in self.condition:
            self.condition[key] = active

    @rule(
        key=keys,
        action=st.sampled_from(["ack", "reset", "shelve", "unshelve", "remove", "return"]),
        user=users,
    )
    def operator_acts(self, key: str, action: str, user: str) -> None:
        self._try(key, action, user)

    @rule(key=keys, cause=st.sampled_from(CAUSES), hold=st.booleans())
    def plant_state_changes(self, key: str, cause: str, hold: bool) -> None:
        if hold:
            self.rig.svc.suppress(cause, [key])
        else:
            self.rig.svc.release(cause, [key])

    @rule(ms=st.sampled_from([1, SECOND, 10 * MINUTE, HOUR]))
    def time_passes(self, ms: int) -> None:
        self.rig.advance(ms)
        self.rig.svc.tick()

    @precondition(lambda self: bool(self.condition))
    @rule()
    def process_restarts(self) -> None:
        before = self.rig.svc.list(include_normal=True)
        self.rig.svc = AlarmService(self.rig.journal, self.rig.clock, GRADES)
        assert self.rig.svc.list(include_normal=True) == before

    @invariant()
    def alarms_are_consistent(self) -> None:
        svc = self.rig.svc
        now = self.rig.clock.now_ms()
        alarms = svc.list(include_normal=True, limit=100)
        assert len({a.key for a in alarms}) == len(alarms) == len(self.condition)
        journal = svc.journal(limit=100_000)
        suppressions = svc.suppressions()
        for alarm in alarms:
            assert alarm.active is self.condition[alarm.key]
            assert (alarm.active_since_ms is not None) is alarm.active
            # the strongest hiding shows; otherwise the in-service state matches the flags
            if alarm.out_of_service is not None:
                assert alarm.state is AlarmState.OUT_OF_SERVICE
            elif alarm.shelved is not None:
                assert alarm.state is AlarmState.SHELVED
                assert alarm.shelved.until_ms > now  # tick() ran: nothing overdue
            elif alarm.suppressed_by:
                assert alarm.state is AlarmState.SUPPRESSED
            else:
                assert alarm.state not in HIDDEN_STATES
                flags = (alarm.active, alarm.acknowledged, alarm.latched)
                match alarm.state:
                    case AlarmState.NORMAL:
                        assert not alarm.active and not alarm.latched
                    case AlarmState.UNACKNOWLEDGED:
                        assert flags[:2] == (True, False)
                    case AlarmState.ACKNOWLEDGED:
                        assert flags[:2] == (True, True)
                    case AlarmState.RTN_UNACKNOWLEDGED:
                        assert flags == (False, False, False)
                    case AlarmState.LATCHED:
                        assert not alarm.active and alarm.latched
            assert alarm.suppressed_by == suppressions.get(alarm.key, ())
            if alarm.latched:
                assert alarm.latching and alarm.state is not AlarmState.NORMAL
            if alarm.acknowledged_ms is not None:
                assert alarm.raised_ms is not None and alarm.acknowledged_ms >= alarm.raised_ms
                assert alarm.acknowledged and alarm.acknowledged_by
            if alarm.state in DISPLAYED_STATES:
                assert alarm.raised_ms is not None
            # the journal explains the alarm: its last row, its annunciations
            rows = [e for e in journal if e.alarm_id == alarm.id]
            assert rows[-1].to_state is alarm.state
            announced = [e.ts_ms for e in rows if e.annunciated]
            assert alarm.count == len(announced)
            assert alarm.raised_ms == (announced[-1] if announced else None)
            assert all(a.to_state is b.from_state for a, b in pairwise(rows))
        for source in {a.hazard_source for a in alarms}:
            pinned = svc.first_out(source)
            if pinned is not None:
                assert any(
                    a.hazard_source == source and a.state in DISPLAYED_STATES for a in alarms
                )


AlarmLifecycle.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAlarmLifecycle = AlarmLifecycle.TestCase
TestAlarmLifecycle.__doc__ = (
    "Random sequences keep every alarm, its journal and its pins consistent."
)
