"""``voting``: k-out-of-n voting over the gas detectors of a zone (leak, discrepancy, degraded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safety_hub.rules.conditions.base import (
    NORMAL,
    AlarmInstance,
    CompiledRule,
    EngineHooks,
    format_value,
    tag_identity,
)
from safety_hub.rules.conditions.build import Build, tag_slots
from safety_hub.rules.conditions.grouping import root_cause
from safety_hub.rules.schema import VotingCondition
from safety_hub.rules.slots import TagSlot


class VoteMember:
    """One detector of a zone as its vote sees it."""

    __slots__ = ("above", "bad", "oos", "reset", "slot", "stale_ms", "trip", "value")

    def __init__(self, slot: TagSlot, trip: float, reset: float, stale_ms: int) -> None:
        self.slot = slot
        self.trip = trip
        self.reset = reset
        self.stale_ms = stale_ms
        self.oos = not slot.info.in_service
        self.above = False
        self.bad = False
        self.value: float | None = None


class VoteInstance(AlarmInstance):
    """k-out-of-n voting over a zone's detectors. A detector is faulty while its newest reading
    is bad or out of range, while it is silent for ``stale_intervals`` of its interval, while its
    frozen-value alarm is raised, and while it is out of service; with any faulty detector the
    vote becomes ``degrade_to`` over the healthy ones. Detectors gone stale while their
    enterprise is quiet are a consequence of its silence: the vote waits for the link verdict
    and is grouped under the link alarm."""

    __slots__ = ("above_n", "degrade_k", "faulty", "healthy_n", "high", "k", "members", "report")
    kind = "voting"
    k: int
    degrade_k: int
    report: str
    high: bool
    members: list[VoteMember]
    above_n: int
    healthy_n: int
    faulty: list[str]

    def member(
        self, index: int, ts: int, v: float, valid: bool, now: int, hooks: EngineHooks
    ) -> None:
        m = self.members[index]
        m.bad = not valid
        if valid:
            m.value = v
            if self.high:
                m.above = v >= (m.reset if m.above else m.trip)
            else:
                m.above = v <= (m.reset if m.above else m.trip)
        self.evaluate(ts, now, hooks)

    def evaluate(self, ts: int, now: int, hooks: EngineHooks) -> None:
        faulty: list[str] = []
        healthy = above = 0
        top: float | None = None
        next_stale: int | None = None
        high = self.high
        for m in self.members:  # a reading of any member comes here: kept tight
            slot = m.slot
            deadline = slot.last_received + m.stale_ms
            if m.oos or m.bad or slot.frozen or deadline <= now:
                faulty.append(slot.info.tag)
                continue
            healthy += 1
            if next_stale is None or deadline < next_stale:
                next_stale = deadline
            if m.above:
                above += 1
            value = m.value
            if value is not None and (top is None or (value > top) == high):
                top = value
        k = self.degrade_k if faulty else self.k
        if self.report == "leak":
            on = healthy > 0 and above >= k
        elif self.report == "discrepancy":
            on = 0 < above < k
        else:
            on = bool(faulty)
        self.above_n, self.healthy_n, self.faulty = above, healthy, faulty
        if on or self.state:
            self.value = top
        self.drive(on, ts, hooks)
        if self.parent is not None and self.state == NORMAL:
            hooks.group(self, None)  # cleared under its parent: quietly
        wake = next_stale
        if self.grace_until is not None and (wake is None or self.grace_until < wake):
            wake = self.grace_until
        if wake is not None and (self.watch_due is None or wake < self.watch_due):
            hooks.watch(self, wake)

    def fire_watch(self, due: int, hooks: EngineHooks) -> None:
        if self.grace_until is not None:
            hooks.grace_over(self, due)
        if self.state == NORMAL and self.members:
            parent, wait = root_cause(self.members[0].slot.ent, due, hooks)
            if wait is not None:
                hooks.watch(self, wait)  # the link verdict first: a child never annunciates first
                return
            if parent is not None:
                hooks.group(self, parent)  # ungrouped again by evaluate if it stays normal
        self.evaluate(due, due, hooks)

    def grace_ms(self) -> int:
        return max((m.stale_ms for m in self.members), default=0)

    def extra(self) -> dict[str, str]:
        return {"votes": f"{self.above_n}/{self.healthy_n}", "faulty": ",".join(self.faulty)}

    def dump(self) -> dict[str, Any]:
        return {
            **super().dump(),
            "members": [[m.above, m.bad, m.value] for m in self.members],
        }

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        for m, (above, bad, value) in zip(self.members, data["members"], strict=True):
            m.above, m.bad, m.value = bool(above), bool(bad), value

    def is_default(self) -> bool:
        return False  # the members' state is always worth keeping

    def first_stale(self) -> int:
        """When the first member falls silent, counted from when each was last heard."""
        return min(m.slot.last_received + m.stale_ms for m in self.members)

    def rearm_watch(self, hooks: EngineHooks) -> None:
        hooks.watch(self, self.first_stale())  # from the restored last-received times


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per zone with a vote among the selected tags, fed each member's readings."""
    cond = rt.rule.condition
    assert isinstance(cond, VotingCondition)
    zones: dict[tuple[str, str], None] = {}
    for slot in tag_slots(rt, build):
        zones[(slot.info.enterprise, slot.info.zone or "")] = None
    for zone_key in zones:
        _compile_zone(rt, cond, zone_key, build)


def _compile_zone(
    rt: CompiledRule, cond: VotingCondition, zone_key: tuple[str, str], build: Build
) -> None:
    zone = build.plant.zones[zone_key]
    slots = [build.slots[(zone.enterprise, t)] for t in zone.tags]
    if isinstance(cond.setpoint, str) and any(cond.setpoint not in s.info.setpoints for s in slots):
        return  # a zone whose detectors do not all have the setpoint is not covered
    first = slots[0].info
    labels, fields, priority = tag_identity(rt, first)
    for name in ("unit", "equipment", "sif"):
        if len({getattr(s.info, name) for s in slots}) > 1:
            labels.pop(name, None)
    fields.update(tag="", name=zone.zone, zone=zone.zone)
    labels["voting"] = zone.voting or ""
    vote = VoteInstance(
        rt,
        zone.enterprise,
        zone.zone,
        first.hazard_source,
        None,
        zone.zone,
        labels,
        fields,
        priority,
    )
    vote.oos = all(not s.info.in_service for s in slots)
    assert zone.voting is not None
    vote.k = int(zone.voting.split("oo")[0])
    vote.degrade_k = int(cond.degrade_to.split("oo")[0])
    vote.report = cond.report
    vote.high = cond.direction == "high"
    vote.above_n, vote.healthy_n, vote.faulty = 0, len(slots), []
    vote.members = []
    for slot in slots:
        info = slot.info
        sp = info.setpoints[cond.setpoint] if isinstance(cond.setpoint, str) else cond.setpoint
        band = cond.deadband.resolve(info.range_hi - info.range_lo)
        reset = sp - band if vote.high else sp + band
        stale_ms = round(cond.stale_intervals * info.interval_s * 1000)
        vote.members.append(VoteMember(slot, sp, reset, stale_ms))
    vote.setpoint = vote.members[0].trip
    fields["setpoint"] = format_value(vote.setpoint)
    build.hooks.add(vote)
    for index, slot in enumerate(slots):
        slot.votes.append((vote, index))
    build.hooks.watch(vote, vote.first_stale())
