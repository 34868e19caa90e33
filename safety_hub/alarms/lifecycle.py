"""The ISA-18.2 alarm lifecycle as pure functions: ``(alarm, event, now) -> alarm``.

Nothing here reads a clock, touches storage or calls anyone: `AlarmService` looks the alarm up,
calls one of these, journals the result and tells the listeners. An illegal action raises
`IllegalTransition`; bad arguments raise `InvalidAction`. The transition table is in
docs/alarms.md.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from safety_hub.alarms.errors import IllegalTransition, InvalidAction
from safety_hub.alarms.model import (
    OOS_REGISTRY,
    REGISTRY_OOS_CAUSE,
    Action,
    Alarm,
    AlarmClass,
    AlarmState,
    Condition,
    OutOfService,
    Priority,
    Shelve,
)

_HIDDEN_REASON = {
    AlarmState.SHELVED: "shelved",
    AlarmState.SUPPRESSED: "suppressed by design",
    AlarmState.OUT_OF_SERVICE: "out of service",
}


def effective_priority(rule_priority: Priority, level: int | None, grade: int | None) -> Priority:
    """GB 18218: a level-2 alarm on a grade-1 or grade-2 major hazard source is at least high."""
    if level == 2 and grade in (1, 2) and rule_priority.rank < Priority.HIGH.rank:
        return Priority.HIGH
    return rule_priority


def on_condition(
    alarm: Alarm | None,
    condition: Condition,
    *,
    new_id: int,
    now_ms: int,
    grade: int | None,
    suppressed_by: tuple[str, ...],
    out_of_service: OutOfService | None = None,
) -> tuple[Alarm, Action] | None:
    """The alarm after a condition change, or None when nothing changes.

    A clear of an unknown key or of an alarm whose condition is already clear changes nothing.
    A re-trigger while active is an update (value and time), never a second instance.
    ``suppressed_by`` and ``out_of_service`` (the registry's) apply to a new instance only.
    """
    if alarm is None:
        if not condition.active:
            return None
        alarm = _new_alarm(condition, new_id, now_ms, grade, suppressed_by)
        if out_of_service is not None:
            alarm = replace(alarm, out_of_service=out_of_service, state=AlarmState.OUT_OF_SERVICE)
    described = replace(alarm, **_description(condition, grade))
    if condition.active:
        if alarm.active:
            return replace(described, changed_ms=now_ms), Action.UPDATE
        activated = _activate(described, condition, now_ms)
        if activated.hidden:
            return activated, Action.RAISE  # tracks the condition, does not annunciate or latch
        if activated.latched:
            return _reactivate(activated), Action.REACTIVATE
        return _annunciate(activated, now_ms), Action.RAISE
    if not alarm.active:
        return None
    cleared = replace(
        described,
        active=False,
        active_since_ms=None,
        arrived_ms=None,
        cleared_ms=now_ms,
        changed_ms=now_ms,
    )
    if cleared.hidden:
        return cleared, Action.CLEAR
    if cleared.latched:
        state = AlarmState.LATCHED
    elif cleared.acknowledged:
        state = AlarmState.NORMAL
    else:
        state = AlarmState.RTN_UNACKNOWLEDGED
    return replace(cleared, state=state), Action.CLEAR


def _activate(alarm: Alarm, condition: Condition, now_ms: int) -> Alarm:
    """The condition became active: since its source time (never later than now, so late data
    keeps when it happened), arrived now."""
    since = min(condition.ts_ms, now_ms)
    return replace(
        alarm,
        active=True,
        active_since_ms=since,
        last_active_ms=since,
        arrived_ms=now_ms,
        changed_ms=now_ms,
    )


def _reactivate(alarm: Alarm) -> Alarm:
    """The condition came back while the latch holds (GB/T 50493, ISA-18.2 latching): the same
    alarm is in alarm again, not a new one. It stays acknowledged or not as it was, counts the
    return and does not annunciate."""
    state = AlarmState.ACKNOWLEDGED if alarm.acknowledged else AlarmState.UNACKNOWLEDGED
    return replace(alarm, state=state, returns=alarm.returns + 1)


def acknowledge(alarm: Alarm, *, user: str, now_ms: int) -> Alarm:
    """Unacknowledged -> acknowledged; RTN-unacknowledged -> normal; latched stays latched."""
    _require(alarm, Action.ACK, user=user)
    _require_in_service(alarm, Action.ACK)
    if alarm.state is AlarmState.NORMAL:
        raise IllegalTransition(alarm, Action.ACK, "nothing to acknowledge")
    if alarm.acknowledged:
        raise IllegalTransition(alarm, Action.ACK, "already acknowledged")
    state = {
        AlarmState.UNACKNOWLEDGED: AlarmState.ACKNOWLEDGED,
        AlarmState.RTN_UNACKNOWLEDGED: AlarmState.NORMAL,
        AlarmState.LATCHED: AlarmState.LATCHED,
    }[alarm.state]
    return replace(
        alarm,
        state=state,
        acknowledged=True,
        acknowledged_ms=now_ms,
        acknowledged_by=user,
        changed_ms=now_ms,
    )


def reset(alarm: Alarm, *, user: str, now_ms: int) -> Alarm:
    """Release a latch that was acknowledged; while the condition is still there, re-annunciate."""
    _require(alarm, Action.RESET, user=user)
    _require_in_service(alarm, Action.RESET)
    if not alarm.latched:
        raise IllegalTransition(alarm, Action.RESET, "not latched")
    if not alarm.acknowledged:
        raise IllegalTransition(alarm, Action.RESET, "not acknowledged")
    if alarm.active:
        return _annunciate(alarm, now_ms)
    return replace(alarm, state=AlarmState.NORMAL, latched=False, changed_ms=now_ms)


def shelve(
    alarm: Alarm, *, user: str, reason: str, until_ms: int, now_ms: int, max_shelve_ms: int
) -> Alarm:
    """Hide the alarm until ``until_ms`` (at most ``max_shelve_ms`` from now)."""
    _require(alarm, Action.SHELVE, user=user, reason=reason)
    if until_ms <= now_ms:
        raise InvalidAction(
            Action.SHELVE, f"until_ms {until_ms} is not after now ({now_ms})", alarm
        )
    if until_ms - now_ms > max_shelve_ms:
        raise InvalidAction(
            Action.SHELVE,
            f"{_hours(until_ms - now_ms)} is longer than the maximum {_hours(max_shelve_ms)}",
            alarm,
        )
    if alarm.out_of_service is not None:
        raise IllegalTransition(alarm, Action.SHELVE, "out of service")
    if alarm.shelved is not None:
        raise IllegalTransition(alarm, Action.SHELVE, "already shelved")
    shelf = Shelve(by=user, reason=reason, since_ms=now_ms, until_ms=until_ms)
    return _settle(replace(alarm, shelved=shelf), now_ms, was_hidden=alarm.hidden)


def unshelve(alarm: Alarm, *, user: str | None, now_ms: int, action: Action) -> Alarm:
    """End a shelve, by an operator (`Action.UNSHELVE`) or at expiry (`Action.SHELVE_EXPIRED`)."""
    if action is Action.UNSHELVE:
        _require(alarm, action, user=user)
    if alarm.shelved is None:
        raise IllegalTransition(alarm, action, "not shelved")
    return _settle(replace(alarm, shelved=None), now_ms, was_hidden=alarm.hidden)


def remove_from_service(alarm: Alarm, *, user: str, reason: str, now_ms: int) -> Alarm:
    _require(alarm, Action.OUT_OF_SERVICE, user=user, reason=reason)
    if alarm.out_of_service is not None:
        raise IllegalTransition(alarm, Action.OUT_OF_SERVICE, "already out of service")
    oos = OutOfService(by=user, reason=reason, since_ms=now_ms)
    return _settle(replace(alarm, out_of_service=oos), now_ms, was_hidden=alarm.hidden)


def return_to_service(alarm: Alarm, *, user: str, now_ms: int) -> Alarm:
    _require(alarm, Action.RETURN_TO_SERVICE, user=user)
    if alarm.out_of_service is None:
        raise IllegalTransition(alarm, Action.RETURN_TO_SERVICE, "not out of service")
    if alarm.out_of_service.source == OOS_REGISTRY:
        raise IllegalTransition(
            alarm, Action.RETURN_TO_SERVICE, "out of service in the plant registry"
        )
    return _settle(replace(alarm, out_of_service=None), now_ms, was_hidden=alarm.hidden)


def set_registry_out_of_service(
    alarm: Alarm, oos: OutOfService | None, design_causes: tuple[str, ...], *, now_ms: int
) -> Alarm:
    """The plant registry holds the alarm's tag out of service (``oos``, its who, why and
    since) or no longer does (None). The registry's word replaces an operator's out of service;
    releasing it touches only the registry's. ``design_causes`` are the alarm's suppression
    causes other than the registry's (an older journal kept the registry's among them)."""
    current = alarm.out_of_service
    if oos is None and (current is None or current.source != OOS_REGISTRY):
        oos = current
    changed = replace(alarm, out_of_service=oos, suppressed_by=design_causes)
    return _settle(changed, now_ms, was_hidden=alarm.hidden)


def set_suppressed_by(alarm: Alarm, causes: tuple[str, ...], *, now_ms: int) -> Alarm:
    """Suppression by design: the alarm is suppressed while any cause holds it."""
    return _settle(replace(alarm, suppressed_by=causes), now_ms, was_hidden=alarm.hidden)


def _settle(alarm: Alarm, now_ms: int, *, was_hidden: bool) -> Alarm:
    """The state after a hiding flag changed: the strongest hiding, or the true in-service state.

    An alarm coming back into service shows what its condition is now: active -> annunciated
    (unacknowledged) again; cleared with its latch holding -> latched; else normal.
    """
    alarm = replace(alarm, changed_ms=now_ms)
    if alarm.out_of_service is not None:
        return replace(alarm, state=AlarmState.OUT_OF_SERVICE)
    if alarm.shelved is not None:
        return replace(alarm, state=AlarmState.SHELVED)
    if alarm.suppressed_by:
        return replace(alarm, state=AlarmState.SUPPRESSED)
    if not was_hidden:
        return alarm
    if alarm.active:
        return _annunciate(alarm, now_ms)
    if alarm.latched:
        return replace(alarm, state=AlarmState.LATCHED)
    return replace(alarm, state=AlarmState.NORMAL)


def _annunciate(alarm: Alarm, now_ms: int) -> Alarm:
    return replace(
        alarm,
        state=AlarmState.UNACKNOWLEDGED,
        acknowledged=False,
        acknowledged_ms=None,
        acknowledged_by=None,
        latched=alarm.latched or alarm.latching,
        raised_ms=now_ms,
        first_raised_ms=now_ms if alarm.first_raised_ms is None else alarm.first_raised_ms,
        count=alarm.count + 1,
        returns=0,
        changed_ms=now_ms,
    )


def _new_alarm(
    condition: Condition,
    alarm_id: int,
    now_ms: int,
    grade: int | None,
    suppressed_by: tuple[str, ...],
) -> Alarm:
    """A fresh instance, not yet active: normal, or suppressed if a design cause holds its key."""
    return Alarm(
        id=alarm_id,
        key=condition.key,
        state=AlarmState.SUPPRESSED if suppressed_by else AlarmState.NORMAL,
        active=False,
        acknowledged=False,
        latched=False,
        shelved=None,
        out_of_service=None,
        suppressed_by=suppressed_by,
        raised_ms=None,
        first_raised_ms=None,
        acknowledged_ms=None,
        acknowledged_by=None,
        cleared_ms=None,
        active_since_ms=None,
        changed_ms=now_ms,
        count=0,
        **_description(condition, grade),
    )


def _description(condition: Condition, grade: int | None) -> dict[str, Any]:
    """What the latest condition says about its alarm (the rule may have changed meanwhile)."""
    rule_priority = Priority(condition.priority)
    return {
        "alert": condition.alert,
        "enterprise": condition.enterprise,
        "hazard_source": condition.hazard_source,
        "tag": condition.tag,
        "zone": condition.zone,
        "priority": effective_priority(rule_priority, condition.level, grade),
        "rule_priority": rule_priority,
        "alarm_class": AlarmClass(condition.alarm_class),
        "level": condition.level,
        "latching": condition.latch,
        "event_ts_ms": condition.ts_ms,
        "value": condition.value,
        "setpoint": condition.setpoint,
        "on_delay_s": condition.on_delay_s,
        "summary": condition.summary,
        "summary_en": condition.summary_en,
        "labels": dict(condition.labels),
    }


def _require(alarm: Alarm, action: Action, **texts: str | None) -> None:
    """Who (and, where asked, why) must be given: the journal records both."""
    for name, text in texts.items():
        if not (text and text.strip()):
            raise InvalidAction(action, f"{name} is required", alarm)


def _require_in_service(alarm: Alarm, action: Action) -> None:
    if alarm.hidden:
        raise IllegalTransition(alarm, action, _HIDDEN_REASON[alarm.state])


def _hours(ms: int) -> str:
    return f"{ms / 3_600_000:g} h"


def registry_cause_as_design(alarm: Alarm | None, cause: str) -> bool:
    """A journal from before out of service was its own state kept the registry's cause among
    the alarm's design causes: holding it again turns that into the out-of-service state."""
    return (
        alarm is not None
        and cause == REGISTRY_OOS_CAUSE
        and REGISTRY_OOS_CAUSE in alarm.suppressed_by
    )
