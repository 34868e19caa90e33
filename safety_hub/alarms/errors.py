"""Errors of the alarm service. Each names the alarm, the action and the reason.

Example: ``alarm 42 (Cl2Level2 GT-1101): cannot reset: not acknowledged``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from safety_hub.errors import SafetyHubError


class AlarmRef(Protocol):
    """What a message needs of the alarm it is about (an ``Alarm`` of
    :mod:`safety_hub.alarms.model`): typed here so that the model, whose ``Condition`` raises
    ``InvalidCondition``, and these errors do not import each other."""

    @property
    def id(self) -> int: ...

    @property
    def alert(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def tag(self) -> str | None: ...

    @property
    def zone(self) -> str | None: ...

    @property
    def state(self) -> StrEnum: ...


def describe(alarm: AlarmRef) -> str:
    """``alarm 42 (Cl2Level2 GT-1101)``: the id, the rule and where it is."""
    where = alarm.tag or alarm.zone or alarm.key
    return f"alarm {alarm.id} ({alarm.alert} {where})"


class AlarmError(SafetyHubError):
    """Root of the alarm service's errors."""


class AlarmNotFound(AlarmError):
    """No alarm has this id (or key)."""

    def __init__(self, ref: int | str) -> None:
        self.ref = ref
        what = f"id {ref}" if isinstance(ref, int) else f"key {ref!r}"
        super().__init__(f"alarm service: no alarm with {what}")


def verb(action: str) -> str:
    """How a message names an action: ``ack`` -> ``acknowledge``."""
    return _VERBS.get(action, action.replace("_", " "))


_VERBS = {"ack": "acknowledge", "out_of_service": "remove from service"}


class IllegalTransition(AlarmError):
    """The action is not allowed in the alarm's current state (HTTP 409 material)."""

    def __init__(self, alarm: AlarmRef, action: str, reason: str) -> None:
        self.alarm_id = alarm.id
        self.state = alarm.state  # an AlarmState
        self.action = action
        self.reason = reason
        super().__init__(f"{describe(alarm)}: cannot {verb(action)}: {reason}")


class InvalidAction(AlarmError):
    """The action's arguments are bad: empty reason or user, shelve too long, prune too young."""

    def __init__(self, action: str, reason: str, alarm: AlarmRef | None = None) -> None:
        self.alarm_id = alarm.id if alarm is not None else None
        self.action = action
        self.reason = reason
        head = f"{describe(alarm)}: " if alarm is not None else "alarm service: "
        super().__init__(f"{head}cannot {verb(action)}: {reason}")


class InvalidCondition(AlarmError, ValueError):
    """The rule engine built a `Condition` with a bad field; raised when it is constructed."""

    def __init__(self, key: str, field: str, value: object, reason: str) -> None:
        self.key = key
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"condition {key!r}: {field}={value!r}: {reason}")
