"""The rule engine: readings, gateway statuses and the clock in, alarm conditions out.

Pure and deterministic: no wall clock, no I/O, no threads. The same calls with the same
arguments give the same conditions in the same order. Time comes from three places:

- a reading's own ``ts_ms`` (event time) drives thresholds, deadbands, on/off delays, rates,
  votes and SIS states;
- the hub's receive time (``received_ms`` of ``on_readings``, ``ts_ms`` of
  ``on_gateway_status``) drives the watchdogs: stale tags, silent enterprises, clock skew;
- ``advance(now_ms)`` fires every timer due by ``now_ms``: on/off-delay expiry, stale watchdogs,
  silence-based link down, the planned end of a bypass. ``on_readings`` fires no timers, so the
  caller calls ``advance`` regularly (the hub: every second).

At construction every rule is compiled against the plant and indexed by ``(enterprise, tag)``,
so a reading only touches the alarm instances of its own tag, and a reading that changes nothing
(the usual case) costs a comparison per instance. How each condition kind compiles and behaves is
in ``conditions/`` (one module per kind, ``conditions/table.py`` maps a kind to its module); the
per-tag slots and the far-ahead slow path in ``slots.py``; the instances' timers, emission and
suppression by design in ``dispatch.py``; the snapshot format in ``snapshot.py``.

Late data: per tag, a reading whose ``ts_ms`` is older than the newest one already evaluated is
not evaluated (``counters["late_readings"]``), one with the same ``ts_ms`` is a duplicate
(``counters["duplicate_readings"]``, e.g. a QoS 1 redelivery). Both still count as a sign of life
for the stale and silence watchdogs. Storage keeps them; only alarm evaluation skips them.

Readings from the future: a reading stamped more than ``max_lead_ms`` after its receive time
(``counters["ahead_readings"]``) is not allowed to move the tag's event time there, or every
current reading would be "late" until the hub clock caught up with it. It is evaluated on the
tag's own timeline instead: the tag's newest evaluated time plus the hub time elapsed since the
tag was last heard, never later than ``max(max_lead_ms, TRANSIT_SLACK_MS)`` before the receive
time (the gateway's next honest reading was stamped before it reached the hub, and must not look
late; so for a gateway in step with the hub, just before hub time) and always after the newest
evaluated time. Its on-delay therefore runs on hub
time. Its raw ``ts_ms`` is remembered (the last ``AHEAD_MEMORY`` per tag, in the snapshot): the
same reading delivered again is a duplicate, while any other reading, such as one from the
gateway's corrected clock, is evaluated. So the newest evaluated time of a tag is never more
than ``max_lead_ms`` ahead of the hub clock, and no single reading can make later ones late.
The clock-skew rule still sees the raw timestamp.

A condition is emitted only when an alarm instance changes: raised once, cleared once. Latching,
acknowledgement, shelving and the journal are the alarm service's job (``Condition.latch`` tells
it which alarms latch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from safety_hub.alarms.model import Condition
from safety_hub.clock import Clock
from safety_hub.ingest.telemetry import Reading
from safety_hub.registry import Plant
from safety_hub.rules.conditions.base import ACTIVE, CompiledRule
from safety_hub.rules.conditions.build import Build
from safety_hub.rules.conditions.table import CONDITION_KINDS
from safety_hub.rules.dispatch import Dispatch, SuppressionChange
from safety_hub.rules.model import RulePack
from safety_hub.rules.schema import ENTERPRISE_TYPES
from safety_hub.rules.slots import AHEAD_MEMORY, TRANSIT_SLACK_MS, EnterpriseSlot, TagSlot
from safety_hub.rules.snapshot import SNAPSHOT_VERSION, check_version, dump_state, load_state

__all__ = [
    "AHEAD_MEMORY",
    "DEFAULT_MAX_LEAD_MS",
    "SNAPSHOT_VERSION",
    "TRANSIT_SLACK_MS",
    "RuleEngine",
    "SuppressionChange",
]

DEFAULT_MAX_LEAD_MS = 2_000
"""How far ahead of its receive time a reading may be stamped and still be evaluated at its own
timestamp. Covers a gateway clock a little fast of the hub's and the hub's own jitter; anything
further ahead is evaluated on the tag's own timeline (module docstring)."""


class RuleEngine:
    """Evaluates a ``RulePack`` over a ``Plant``; see the module docstring.

    ``max_lead_ms``: how far after its receive time a reading may be stamped and still be
    evaluated at its own timestamp; the hub passes its setting."""

    def __init__(
        self,
        pack: RulePack,
        plant: Plant,
        clock: Clock,
        *,
        max_lead_ms: int = DEFAULT_MAX_LEAD_MS,
    ) -> None:
        if isinstance(max_lead_ms, bool) or not isinstance(max_lead_ms, int) or max_lead_ms < 0:
            raise ValueError(
                f"rule engine: max_lead_ms={max_lead_ms!r} must be a whole number of "
                f"milliseconds >= 0"
            )
        self.pack = pack
        self.plant = plant
        self.clock = clock
        self.max_lead_ms = max_lead_ms
        self.counters: dict[str, int] = {
            "readings": 0,
            "late_readings": 0,
            "duplicate_readings": 0,
            "ahead_readings": 0,
            "unknown_tags": 0,
            "bad_quality_readings": 0,
            "out_of_range_readings": 0,
            "gateway_status": 0,
            "unknown_enterprises": 0,
            "snapshot_dropped": 0,
        }
        self._dispatch = Dispatch(frozenset(name for r in pack.rules for name in r.suppressed_by))
        start = clock.now_ms()
        self._ents = {code: EnterpriseSlot(code, start) for code in plant.enterprises}
        self._slots = {
            key: TagSlot(info, self._ents[info.enterprise], start)
            for key, info in plant.tags.items()
        }
        # The same slots per enterprise, then per tag: the hot loop looks a reading up without
        # building an (enterprise, tag) key for it.
        self._slots_of: dict[str, dict[str, TagSlot]] = {}
        for (enterprise, tag), slot in self._slots.items():
            self._slots_of.setdefault(enterprise, {})[tag] = slot
        build = Build(plant, start, self._slots, self._ents, self._dispatch)
        enterprise_alerts = frozenset(
            r.alert for r in pack.rules if r.condition.type in ENTERPRISE_TYPES
        )
        for rule in pack.rules:
            CONDITION_KINDS[rule.condition.type](CompiledRule(rule, enterprise_alerts), build)

    # public API ----------------------------------------------------------------------------

    def on_readings(self, readings: Iterable[Reading], received_ms: int) -> list[Condition]:
        """Evaluate a batch of readings received at hub time ``received_ms``."""
        out: list[Condition] = []
        hooks = self._dispatch
        hooks.out = out
        slots_of = self._slots_of
        touched: list[EnterpriseSlot] = []
        limit = received_ms + self.max_lead_ms
        if not isinstance(readings, list):
            readings = list(readings)
        unknown = bad = out_of_range = 0
        current = None
        slots: dict[str, TagSlot] = {}
        # The hot loop: a reading usually changes nothing, so what it costs is the loop itself;
        # the lists a slot often has empty are tested before a loop over them is set up.
        for enterprise, tag, ts, v, q in readings:
            if enterprise != current:  # readings come in runs of one enterprise (a message)
                current = enterprise
                slots = slots_of.get(enterprise, {})
            slot = slots.get(tag)
            if slot is None:
                unknown += 1
                continue
            ent = slot.ent
            if ent.touched:
                if ts > ent.batch_max_ts:
                    ent.batch_max_ts = ts
            else:
                ent.touched = True
                ent.batch_max_ts = ts
                touched.append(ent)
            for stale in slot.stales:
                if stale.state or stale.watch_due is None:
                    stale.on_data(received_ms, hooks)
            # The skew rule above saw the raw ts; from here on ts is the time evaluated at.
            if ts > limit or ts <= slot.last_ts:
                at = slot.admit(ts, received_ms, limit, self.max_lead_ms, self.counters)
                if at is None:
                    continue
                ts = at
            else:
                slot.last_received = received_ms
                slot.last_ts = ts
            if q == "bad":
                bad += 1
                valid = False
            else:
                valid = slot.lo_ok <= v <= slot.hi_ok
                if not valid:
                    out_of_range += 1
                if slot.ranges:
                    for rng in slot.ranges:
                        rng.feed(ts, v, hooks)
            if slot.faults:
                for fault in slot.faults:
                    fault.feed(ts, v, q, hooks)
            if valid:
                for inst in slot.values:
                    inst.feed(ts, v, hooks)
            if slot.votes:
                for vote, index in slot.votes:
                    vote.member(index, ts, v, valid, received_ms, hooks)
        for ent in touched:
            ent.touched = False
            ent.heard(received_ms)
            for link in ent.links:
                link.on_data(received_ms, hooks)
            for skew in ent.skews:
                skew.on_batch(received_ms, ent.batch_max_ts, hooks)
        c = self.counters
        c["readings"] += len(readings)
        c["unknown_tags"] += unknown
        c["bad_quality_readings"] += bad
        c["out_of_range_readings"] += out_of_range
        return out

    def on_gateway_status(self, enterprise: str, online: bool, ts_ms: int) -> list[Condition]:
        """A gateway's retained status: ``online: false`` is its last-will (link down)."""
        out: list[Condition] = []
        self._dispatch.out = out
        self.counters["gateway_status"] += 1
        ent = self._ents.get(enterprise)
        if ent is None:
            self.counters["unknown_enterprises"] += 1
            return out
        for link in ent.links:
            link.on_status(online, ts_ms, self._dispatch)
        return out

    def resume(self, now_ms: int) -> None:
        """The hub did not listen until hub time ``now_ms`` (the standby of a redundant pair
        taking over): every tag and enterprise counts as heard no earlier than then, so the
        stale and silence watchdogs give each a full window from now instead of raising at once
        for a gap that was the hub's, not the field's. Raised alarms, pending delays and learned
        intervals stay as they are."""
        for ent in self._ents.values():
            ent.last_received = max(ent.last_received, now_ms)
        for slot in self._slots.values():
            slot.last_received = max(slot.last_received, now_ms)

    def advance(self, now_ms: int) -> list[Condition]:
        """Fire every timer due at or before hub time ``now_ms``, oldest first."""
        out: list[Condition] = []
        self._dispatch.out = out
        self._dispatch.fire_due(now_ms)
        return out

    def active_keys(self) -> list[str]:
        """Keys of the alarm instances that are raised now, in rule and plant order."""
        return [inst.key for inst in self._dispatch.instances if inst.state >= ACTIVE]

    def suppressed_by(self, key: str) -> tuple[str, ...]:
        """Why an alarm instance is suppressed by design right now: the names of the active
        alerts and plant states of its rule's ``suppressed_by`` (empty: not suppressed)."""
        inst = self._dispatch.find(key)
        return () if inst is None else self._dispatch.suppressions(inst)

    def suppressed(self) -> dict[str, tuple[str, ...]]:
        """Every alarm instance suppressed by design right now, raised or not, and why."""
        return self._dispatch.suppressed()

    def suppression_changes(self) -> list[SuppressionChange]:
        """How ``suppressed()`` changed since the previous call, grouped by cause, in the shape
        of ``AlarmService.suppress(cause, keys)`` / ``release(cause, keys)``. The first call
        reports every suppression (out-of-service tags included). Cheap when nothing changed:
        the map is recomputed only after a suppressing alert was raised or cleared."""
        return self._dispatch.suppression_changes()

    def snapshot(self) -> dict[str, Any]:
        """The engine's state as JSON-serialisable data (see ``restore``)."""
        return dump_state(self.counters, self._slots, self._ents, self._dispatch)

    @classmethod
    def restore(
        cls,
        pack: RulePack,
        plant: Plant,
        clock: Clock,
        snapshot: Mapping[str, Any],
        *,
        max_lead_ms: int = DEFAULT_MAX_LEAD_MS,
    ) -> RuleEngine:
        """An engine that continues from ``snapshot``: raised alarms stay raised (and are not
        raised again), pending on/off delays and watchdogs keep their deadlines, a far-ahead
        reading delivered again is still a duplicate. State of rules or tags that no longer
        exist is dropped and counted in ``counters["snapshot_dropped"]``. A snapshot written
        before far-ahead readings were remembered restores as one with none remembered."""
        check_version(snapshot)
        engine = cls(pack, plant, clock, max_lead_ms=max_lead_ms)
        cls._load(engine, snapshot)  # the class's own method, on the engine it just built
        return engine

    def _load(self, snapshot: Mapping[str, Any]) -> None:
        """Only ever on a freshly built engine (``restore``): what the snapshot leaves out
        keeps its initial state."""
        load_state(snapshot, self.counters, self._slots, self._ents, self._dispatch)
