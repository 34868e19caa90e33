"""The notification planner: alarm transitions in, scheduled notifications and cancellations out.

Pure: no I/O and no clock of its own; every time comes from the transition (the hub's injected
clock), so a replay on a virtual clock plans exactly what a live hub plans. The durable outbox
(``safety_hub/runtime/notify_outbox.py``) stores what it plans and the dispatcher sends it.

- Only an annunciation (``Transition.annunciated``: never a shelved, suppressed or out-of-service
  alarm, nor a child grouped under a root cause) starts the chains of the ``trigger: annunciation``
  policies that match the alarm; a transition whose action is ``disposal_overdue`` starts the
  ``trigger: disposal_overdue`` ones. Every step (and every repeat) is planned at once with its due
  time; who a ``roster:`` target means is resolved for that due time.
- An acknowledgement cancels the pending steps of that annunciation (``unless: acknowledged``), a
  disposal record (``dispose``) all of them;
  shelving, suppression and out of service cancel all of the alarm's pending ones; a new
  annunciation supersedes the pending ones of the earlier ones.
- A return to normal sends the policy's ``on_clear`` message to those already told.

Each notification has a stable ``notification_id`` made of the policy, the alarm id, the
annunciation, the step, the person and the channel: planning the same transition twice (a
recovery after a crash) gives the same ids, and the outbox keeps one row per id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from safety_hub.alarms.grouping import parent_key
from safety_hub.alarms.model import Action, Alarm, Transition
from safety_hub.notify.contacts import ContactPoint, Directory, Recipient
from safety_hub.notify.loader import PolicySet
from safety_hub.notify.schema import TIER_OF_PRIORITY, PolicyModel, StepModel

DISPOSAL_OVERDUE = Action.DISPOSAL_OVERDUE.value
"""The action of the transition that says a red/orange warning was not disposed in time."""
HIDING = frozenset({Action.SHELVE, Action.OUT_OF_SERVICE, Action.SUPPRESS})
KINDS = ("alarm", "escalation", "repeat", "clear", "overdue")


@dataclass(frozen=True, slots=True)
class Scheduled:
    """One message planned for one contact point of one person."""

    notification_id: str
    alarm_id: int
    annunciation: int
    policy: str
    step: str  # "0", "1", "0.r2" (a repeat), "clear", "d0" (a disposal-overdue step)
    kind: str  # one of KINDS
    person_id: str
    person_name: str
    contact: ContactPoint
    due_ms: int
    cancel_on_ack: bool
    facts: dict[str, Any] = field(hash=False, compare=False)

    @property
    def channel(self) -> str:
        return self.contact.channel


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the pending notifications of an alarm: of one annunciation (``annunciation``), or
    of every annunciation before ``before``; ``ack_only``: only those an ack cancels."""

    alarm_id: int
    reason: str
    annunciation: int | None = None
    before: int | None = None
    ack_only: bool = False


@dataclass
class Plan:
    schedule: list[Scheduled] = field(default_factory=list)
    cancel: list[Cancel] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.schedule or self.cancel)


def tier_of(alarm: Alarm) -> str:
    return TIER_OF_PRIORITY[alarm.priority.value]


def facts_of(alarm: Alarm) -> dict[str, Any]:
    """What a message about ``alarm`` says (plain JSON types; stored with the notification)."""
    return {
        "alarm_id": alarm.id,
        "alert": alarm.alert,
        "summary": alarm.summary,
        "summary_en": alarm.summary_en,
        "priority": alarm.priority.value,
        "tier": tier_of(alarm),
        "enterprise": alarm.enterprise,
        "hazard_source": alarm.hazard_source,
        "tag": alarm.tag,
        "zone": alarm.zone,
        "level": alarm.level,
        "value": alarm.value,
        "setpoint": alarm.setpoint,
        "raised_ms": alarm.raised_ms,
    }


def matches(policy: PolicyModel, alarm: Alarm) -> bool:
    m = policy.match
    checks: list[tuple[tuple[str, ...] | None, str | None]] = [
        (m.tier, tier_of(alarm)),
        (m.priority, alarm.priority.value),
        (m.alarm_class, alarm.alarm_class.value),
        (m.enterprise, alarm.enterprise),
        (m.hazard_source, alarm.hazard_source),
        (m.alert, alarm.alert),
    ]
    return all(allowed is None or value in allowed for allowed, value in checks)


def step_applies(step: StepModel, alarm: Alarm) -> bool:
    return step.tier is None or tier_of(alarm) in step.tier


def contacts_for(recipient: Recipient, channels: tuple[str, ...] | None) -> list[ContactPoint]:
    """Without a ``channels`` filter: the person's preferred (first) contact point; with one:
    every contact point of those channels."""
    if channels is None:
        return list(recipient.contacts[:1])
    return [c for c in recipient.contacts if c.channel in channels]


class Planner:
    def __init__(self, policies: PolicySet, directory: Directory) -> None:
        self.policies = policies
        self.directory = directory

    def plan(self, t: Transition) -> Plan:
        alarm = t.alarm
        plan = Plan()
        if t.action is Action.DISPOSAL_OVERDUE:
            for policy in self._matching(alarm, DISPOSAL_OVERDUE):
                plan.schedule.extend(self._chain(policy, alarm, t.ts_ms, overdue=True))
            return plan
        if t.annunciated:
            if alarm.count > 1:
                plan.cancel.append(Cancel(alarm.id, "re-annunciated", before=alarm.count))
            if parent_key(alarm) is None:
                for policy in self._matching(alarm, "annunciation"):
                    plan.schedule.extend(self._chain(policy, alarm, t.ts_ms, overdue=False))
        elif t.action is Action.ACK:
            plan.cancel.append(Cancel(alarm.id, "acknowledged", alarm.count, ack_only=True))
        elif t.action is Action.DISPOSE:
            plan.cancel.append(Cancel(alarm.id, "disposed", alarm.count))
        elif t.action in HIDING:
            plan.cancel.append(Cancel(alarm.id, t.action.value))
        elif t.action is Action.CLEAR and not alarm.hidden and alarm.raised_ms is not None:
            for policy in self._matching(alarm, "annunciation"):
                plan.schedule.extend(self._on_clear(policy, alarm, t.ts_ms))
        return plan

    def _matching(self, alarm: Alarm, start: str) -> Iterator[PolicyModel]:
        return (p for p in self.policies if p.trigger == start and matches(p, alarm))

    def _chain(
        self, policy: PolicyModel, alarm: Alarm, start_ms: int, *, overdue: bool
    ) -> Iterator[Scheduled]:
        facts = facts_of(alarm)
        for si, step in enumerate(policy.steps):
            if not step_applies(step, alarm):
                continue
            label = f"d{si}" if overdue else str(si)
            kind = "overdue" if overdue else ("alarm" if si == 0 else "escalation")
            cancel = step.unless == "acknowledged" and not overdue
            due = start_ms + step.after
            yield from self._messages(
                policy, alarm, step.to, step.channels, (label, kind, due, cancel), facts
            )
            repeat = policy.repeat
            if repeat is None or overdue:
                continue
            for k in range(1, repeat.max + 1):
                at = due + k * repeat.every
                yield from self._messages(
                    policy, alarm, step.to, step.channels, (f"{si}.r{k}", "repeat", at, True), facts
                )

    def _on_clear(self, policy: PolicyModel, alarm: Alarm, now_ms: int) -> Iterator[Scheduled]:
        clear = policy.on_clear
        raised = alarm.raised_ms
        if clear is None or raised is None:
            return
        facts = facts_of(alarm)
        if clear.to is not None:
            yield from self._messages(
                policy, alarm, clear.to, clear.channels, ("clear", "clear", now_ms, False), facts
            )
            return
        acked = alarm.acknowledged_ms
        acked_at = acked if acked is not None and acked >= raised else None
        told: set[str] = set()
        for step in policy.steps:
            due = raised + step.after
            limit = now_ms if step.unless == "never" or acked_at is None else min(now_ms, acked_at)
            if not step_applies(step, alarm) or due > limit:
                continue
            channels = clear.channels if clear.channels is not None else step.channels
            for item in self._messages(
                policy, alarm, step.to, channels, ("clear", "clear", now_ms, False), facts, due
            ):
                if item.notification_id not in told:
                    told.add(item.notification_id)
                    yield item

    def _messages(
        self,
        policy: PolicyModel,
        alarm: Alarm,
        targets: Iterable[str],
        channels: tuple[str, ...] | None,
        what: tuple[str, str, int, bool],
        facts: dict[str, Any],
        resolve_at: int | None = None,
    ) -> Iterator[Scheduled]:
        label, kind, due, cancel = what
        seen: set[str] = set()
        for target in targets:
            at_ms = due if resolve_at is None else resolve_at
            for person in self.directory.resolve(target, enterprise=alarm.enterprise, at_ms=at_ms):
                if person.person_id in seen:
                    continue
                seen.add(person.person_id)
                used: dict[str, int] = {}
                for contact in contacts_for(person, channels):
                    n = used[contact.channel] = used.get(contact.channel, 0) + 1
                    suffix = "" if n == 1 else f"#{n}"
                    yield Scheduled(
                        notification_id=f"{policy.name}/{alarm.id}/{alarm.count}/{label}/"
                        f"{person.person_id}/{contact.channel}{suffix}",
                        alarm_id=alarm.id,
                        annunciation=alarm.count,
                        policy=policy.name,
                        step=label,
                        kind=kind,
                        person_id=person.person_id,
                        person_name=person.name,
                        contact=contact,
                        due_ms=due,
                        cancel_on_ack=cancel,
                        facts=facts,
                    )
