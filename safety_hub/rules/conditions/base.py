"""The contract between the rule engine and its condition kinds.

``EngineHooks`` is all an alarm instance may ask of the engine: a delay timer, a watchdog, an
emitted change. The feed protocols (``ValueFeed`` ...) are all the engine calls on the instances
that a reading, a batch or a gateway status feeds. ``AlarmInstance`` is the state machine every
instance shares, ``CompiledRule`` what the instances of one rule share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Self

from safety_hub.registry import TagInfo
from safety_hub.rules.model import Rule

NORMAL, PENDING_ON, ACTIVE, PENDING_OFF = 0, 1, 2, 3
"""Alarm instance states. ACTIVE and PENDING_OFF are raised (a raise was emitted)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def format_value(value: float | None) -> str:
    """A value or setpoint as alarm text shows it (``""`` for none)."""
    return "" if value is None else f"{value:.6g}"


# what the instances may ask of the engine ----------------------------------------------------


class EngineHooks(Protocol):
    """What an alarm instance may ask of the engine."""

    def schedule(self, inst: AlarmInstance, due: int) -> None:
        """Call ``inst.fire_delay`` at hub time ``due``, unless ``inst.due`` changed by then."""
        ...

    def watch(self, inst: AlarmInstance, due: int) -> None:
        """Call ``inst.fire_watch`` at hub time ``due``, unless ``inst.watch_due`` changed by
        then."""
        ...

    def emit(self, inst: AlarmInstance, active: bool, ts: int) -> None:
        """``inst`` was raised (``active``) or cleared at time ``ts``."""
        ...

    def group(self, inst: AlarmInstance, parent: str | None) -> None:
        """Group ``inst`` under the alarm with key ``parent`` (its root cause; None: under
        none). A grouped instance is suppressed by its parent (``conditions/grouping.py``)."""
        ...

    def grace_over(self, inst: AlarmInstance, now: int) -> None:
        """Ungroup ``inst`` if the grace after its parent cleared is over at ``now`` (and the
        parent was not raised again)."""
        ...


# what the engine calls on the instances ------------------------------------------------------


class ValueFeed(Protocol):
    """Fed a tag's value: every valid one, or (out of range) every one of good quality."""

    def feed(self, ts: int, v: float, hooks: EngineHooks) -> None: ...


class QualityFeed(Protocol):
    """Fed every reading of a tag with its quality."""

    def feed(self, ts: int, v: float, q: str, hooks: EngineHooks) -> None: ...


class DataFeed(Protocol):
    """Told the hub time of every reading of a tag, evaluated or not (a sign of life). The
    engine calls it only while ``state`` is raised or no watchdog is set."""

    state: int
    watch_due: int | None

    def on_data(self, received: int, hooks: EngineHooks) -> None: ...


class MemberFeed(Protocol):
    """Fed every reading of a zone member ``index``: its value and whether it is valid."""

    def member(
        self, index: int, ts: int, v: float, valid: bool, now: int, hooks: EngineHooks
    ) -> None: ...


class LinkFeed(Protocol):
    """Told an enterprise's signs of life (a batch received) and its gateway's status; asked,
    by the consequences of a silence, whether the enterprise's link is down."""

    key: str
    state: int

    def on_data(self, received: int, hooks: EngineHooks) -> None: ...

    def on_status(self, online: bool, ts: int, hooks: EngineHooks) -> None: ...

    def verdict(self, at: int, hooks: EngineHooks) -> int | None: ...


class BatchFeed(Protocol):
    """Told each batch an enterprise sent: its receive time and its newest reading's ts."""

    def on_batch(self, received: int, newest_ts: int, hooks: EngineHooks) -> None: ...


# what every instance of one rule shares ------------------------------------------------------


class Template:
    """An annotation split once into literal text and placeholders."""

    __slots__ = ("parts",)

    def __init__(self, text: str) -> None:
        self.parts: list[tuple[str, str | None]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            self.parts.append((text[pos : match.start()], match.group(1)))
            pos = match.end()
        self.parts.append((text[pos:], None))

    def render(self, fields: Mapping[str, str]) -> str:
        return "".join(lit + (fields.get(name, "") if name else "") for lit, name in self.parts)


class CompiledRule:
    """What every instance of one rule shares."""

    __slots__ = (
        "alarm_class",
        "alert",
        "latch",
        "level",
        "off_ms",
        "on_ms",
        "priority",
        "rule",
        "summary",
        "summary_en",
        "suppress_alerts",
        "suppress_oos",
    )

    def __init__(self, rule: Rule, enterprise_alerts: frozenset[str]) -> None:
        self.rule = rule
        self.alert = rule.alert
        cond = rule.condition
        self.on_ms: int = getattr(cond, "on_delay", 0)
        self.off_ms: int = getattr(cond, "off_delay", 0)
        self.latch = rule.latch
        self.priority = rule.priority
        self.alarm_class = rule.alarm_class
        self.level = rule.level
        self.summary = Template(rule.annotations.get("summary", ""))
        self.summary_en = Template(rule.annotations.get("summary_en", ""))
        self.suppress_oos = "out_of_service" in rule.suppressed_by
        self.suppress_alerts = tuple(
            (name, name in enterprise_alerts)
            for name in rule.suppressed_by
            if name != "out_of_service"
        )


def tag_identity(rt: CompiledRule, tag: TagInfo) -> tuple[dict[str, str], dict[str, str], str]:
    """Labels, template fields and the priority of an instance about a tag."""
    labels = dict(rt.rule.labels)
    extra = {
        "park": tag.park,
        "unit": tag.unit,
        "equipment": tag.equipment,
        "kind": tag.kind,
        "gas": tag.gas or "",
        "sif": tag.sif or "",
    }
    labels.update({k: v for k, v in extra.items() if v and k not in labels})
    fields = {
        "tag": tag.tag,
        "name": tag.name or tag.tag,
        "enterprise": tag.enterprise,
        "hazard_source": tag.hazard_source,
        "unit": tag.unit,
        "equipment": tag.equipment,
        "zone": tag.zone or "",
        "gas": tag.gas or "",
        "eu": tag.eu,
        "level": str(rt.level) if rt.level is not None else "",
        "sif": tag.sif or "",
    }
    # The rule's priority; the alarm service raises a level-2 alarm on a grade-1/2 hazard
    # source to at least high (``alarms.lifecycle.effective_priority``).
    return labels, fields, rt.priority


# the alarm instance --------------------------------------------------------------------------


class AlarmInstance:
    """One alarm instance (one rule × one tag, zone, enterprise or hazard source) and its
    state machine: NORMAL → PENDING_ON (on-delay) → ACTIVE → PENDING_OFF (off-delay) → NORMAL."""

    __slots__ = (
        "due",
        "enterprise",
        "fields",
        "grace_until",
        "hazard_source",
        "key",
        "labels",
        "oos",
        "order",
        "parent",
        "priority",
        "rt",
        "setpoint",
        "state",
        "tag",
        "value",
        "watch_due",
        "zone",
    )
    kind: ClassVar[str] = "inst"

    def __init__(
        self,
        rt: CompiledRule,
        enterprise: str,
        subject: str,
        hazard_source: str,
        tag: TagInfo | None,
        zone: str | None,
        labels: dict[str, str],
        fields: dict[str, str],
        priority: str,
    ) -> None:
        self.rt = rt
        self.key = f"{rt.alert}|{enterprise}|{subject}"
        self.enterprise = enterprise
        self.hazard_source = hazard_source
        self.tag = tag.tag if tag is not None else None
        self.zone = zone
        self.labels = labels
        self.fields = fields
        self.priority = priority
        self.oos = tag is not None and not tag.in_service
        self.order = -1
        self.state = NORMAL
        self.due: int | None = None
        self.watch_due: int | None = None
        self.value: float | None = None
        self.setpoint: float | None = None
        self.parent: str | None = None
        """the key of the alarm this one is grouped under (its root cause), if any"""
        self.grace_until: int | None = None
        """while grouped after the parent cleared: when the grace ends"""

    @classmethod
    def for_tag(cls, rt: CompiledRule, tag: TagInfo) -> Self:
        """An instance of ``rt`` about one tag (its fields are the tag's identity)."""
        labels, fields, priority = tag_identity(rt, tag)
        return cls(
            rt, tag.enterprise, tag.tag, tag.hazard_source, tag, tag.zone, labels, fields, priority
        )

    @classmethod
    def for_enterprise(cls, rt: CompiledRule, code: str, name: str) -> Self:
        """An instance of ``rt`` about a whole enterprise."""
        fields = {"enterprise": code, "name": name}
        return cls(rt, code, code, "", None, None, dict(rt.rule.labels), fields, rt.priority)

    # the state machine ---------------------------------------------------------------------

    def drive(self, on: bool, ts: int, hooks: EngineHooks) -> None:
        st = self.state
        if st == NORMAL:
            if on:
                if self.rt.on_ms:
                    self.state = PENDING_ON
                    hooks.schedule(self, ts + self.rt.on_ms)
                else:
                    self.state = ACTIVE
                    hooks.emit(self, True, ts)
        elif st == PENDING_ON:
            if not on:
                self.state = NORMAL
                self.due = None
            elif self.due is not None and ts >= self.due:
                at, self.due = self.due, None
                self.state = ACTIVE
                hooks.emit(self, True, at)
        elif st == ACTIVE:
            if not on:
                if self.rt.off_ms:
                    self.state = PENDING_OFF
                    hooks.schedule(self, ts + self.rt.off_ms)
                else:
                    self.state = NORMAL
                    hooks.emit(self, False, ts)
        elif on:  # PENDING_OFF
            self.state = ACTIVE
            self.due = None
        elif self.due is not None and ts >= self.due:
            at, self.due = self.due, None
            self.state = NORMAL
            hooks.emit(self, False, at)

    def fire_delay(self, due: int, hooks: EngineHooks) -> None:
        """The on- or off-delay ran out with nothing to contradict it."""
        self.due = None
        if self.state == PENDING_ON:
            self.state = ACTIVE
            hooks.emit(self, True, due)
        elif self.state == PENDING_OFF:
            self.state = NORMAL
            hooks.emit(self, False, due)

    def fire_watch(self, due: int, hooks: EngineHooks) -> None:
        """A watchdog of this instance is due (stale data, silence, planned end)."""

    def extra(self) -> dict[str, str]:
        """Labels and template fields that change with the state (votes, skew, ...)."""
        return {}

    def grace_ms(self) -> int:
        """How long a grouped instance stays grouped after its parent cleared: a consequence
        that returns to normal within it clears quietly."""
        return 0

    # snapshot ------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state": self.state,
            "due": self.due,
            "watch": self.watch_due,
            "value": self.value,
            **self.dump_group(),
        }

    def dump_group(self) -> dict[str, Any]:
        """The grouping under a parent, if any (keys absent otherwise)."""
        if self.parent is None:
            return {}
        return {"parent": self.parent, "grace_until": self.grace_until}

    def load(self, data: Mapping[str, Any]) -> None:
        self.state = int(data["state"])
        self.due = data["due"]
        self.watch_due = data["watch"]
        self.value = data["value"]
        self.parent = data.get("parent")
        self.grace_until = data.get("grace_until")

    def is_default(self) -> bool:
        return self.state == NORMAL and self.due is None and self.parent is None

    def rearm(self, hooks: EngineHooks) -> None:
        """After a restore: set the timers again from the restored state."""
        if self.due is not None:
            hooks.schedule(self, self.due)
        self.rearm_watch(hooks)

    def rearm_watch(self, hooks: EngineHooks) -> None:
        """After a restore: set the watchdog again (kinds whose deadline follows from the
        restored last-received times compute it afresh)."""
        if self.watch_due is not None:
            hooks.watch(self, self.watch_due)
