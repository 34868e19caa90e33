"""The closed loop (预警处置闭环): disposal records and disposal time limits, as pure functions.

Every warning of tier yellow or above (priority medium, high, critical) needs a disposal record
per annunciation episode: an alarm that annunciates again starts a new episode and needs a new
record. A red or orange warning not disposed within its time limit goes overdue once per
episode (``Action.DISPOSAL_OVERDUE``). Disposal is a record, not an ISA-18.2 state: it never
changes ``state``. See docs/alarms.md, "Disposal".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from safety_hub.alarms.errors import IllegalTransition, InvalidAction
from safety_hub.alarms.model import Action, Alarm, Disposal, JournalEntry, Priority

# 真实泄漏, 误报, 检维修, 仪表故障, 其他
CATEGORIES = ("real_release", "false_alarm", "maintenance", "instrument_fault", "other")
FALSE_ALARM = "false_alarm"
MAX_TEXT = 2000  # characters, like an action's comment

MINUTE_MS = 60_000
# Defaults (docs/configuration.md): a red warning (critical: level-2 gas, SIS trip) must be dealt
# with within the half hour an emergency response takes to reach and assess it; an orange one
# within a shift's first two hours; a yellow one needs a record but has no time limit.
DEFAULT_LIMITS_MS: dict[Priority, int | None] = {
    Priority.CRITICAL: 30 * MINUTE_MS,
    Priority.HIGH: 120 * MINUTE_MS,
    Priority.MEDIUM: None,
}


def needs_disposal(alarm: Alarm) -> bool:
    """Tier yellow or above, and annunciated at least once."""
    return alarm.priority.rank >= Priority.MEDIUM.rank and alarm.raised_ms is not None


def new_episode(alarm: Alarm, limits: Mapping[Priority, int | None]) -> Alarm:
    """The alarm just annunciated: no disposal yet, the due time from its tier's limit."""
    limit = limits.get(alarm.priority) if needs_disposal(alarm) else None
    due = None if limit is None or alarm.raised_ms is None else alarm.raised_ms + limit
    return replace(alarm, disposal=None, disposal_due_ms=due, disposal_overdue_ms=None)


def dispose(alarm: Alarm, *, category: str, text: str, by: str, now_ms: int) -> Disposal:
    """The disposal record of the alarm's current episode; raises when not applicable."""
    action = Action.DISPOSE.value
    if category not in CATEGORIES:
        raise InvalidAction(action, f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise InvalidAction(action, f"text must have 1 to {MAX_TEXT} characters", alarm)
    if alarm.priority.rank < Priority.MEDIUM.rank:
        raise IllegalTransition(
            alarm, action, "a blue (low priority) warning needs no disposal record"
        )
    if alarm.raised_ms is None:
        raise IllegalTransition(alarm, action, "it has never annunciated")
    if alarm.disposal is not None:
        d = alarm.disposal
        raise IllegalTransition(
            alarm,
            action,
            f"already disposed for this episode ({d.category}, by {d.by} at {d.at_ms}); "
            "a new annunciation needs a new disposal",
        )
    return Disposal(category, text, by, now_ms, alarm.raised_ms)


def with_disposal(alarm: Alarm, record: Disposal, now_ms: int) -> Alarm:
    return replace(alarm, disposal=record, changed_ms=now_ms)


def falls_overdue(alarm: Alarm, now_ms: int) -> bool:
    """Due, not disposed, not yet marked overdue, and shown (a hidden alarm does not escalate)."""
    return (
        alarm.disposal_due_ms is not None
        and alarm.disposal is None
        and alarm.disposal_overdue_ms is None
        and not alarm.hidden
        and alarm.disposal_due_ms <= now_ms
    )


def mark_overdue(alarm: Alarm, now_ms: int) -> Alarm:
    return replace(alarm, disposal_overdue_ms=now_ms, changed_ms=now_ms)


def comment(record: Disposal) -> str:
    """The journal comment of a ``dispose`` row: ``category: text``."""
    return f"{record.category}: {record.text}"


def from_entry(entry: JournalEntry) -> Disposal | None:
    """The record a ``dispose`` journal row carries (None for any other row)."""
    if entry.action is not Action.DISPOSE or entry.comment is None or entry.raised_ms is None:
        return None
    category, _, text = entry.comment.partition(": ")
    return Disposal(category, text, entry.user or "", entry.ts_ms, entry.raised_ms)


def records(
    entries: Iterable[JournalEntry], alarms: Mapping[int, Alarm]
) -> list[tuple[Alarm, Disposal]]:
    """The (alarm as it is now, record) of every ``dispose`` row among ``entries``."""
    out = []
    for entry in entries:
        record = from_entry(entry)
        alarm = None if entry.alarm_id is None else alarms.get(entry.alarm_id)
        if record is not None and alarm is not None:
            out.append((alarm, record))
    return out
