"""A rule engine's state as JSON-serialisable data, and back (``RuleEngine.snapshot`` and
``RuleEngine.restore``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safety_hub.rules.dispatch import Dispatch
from safety_hub.rules.slots import AHEAD_MEMORY, NEVER, EnterpriseSlot, TagSlot

SNAPSHOT_VERSION = 1

TagSlots = Mapping[tuple[str, str], TagSlot]


def check_version(snapshot: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for a snapshot of another format version."""
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise ValueError(
            f"rule engine snapshot: version {snapshot.get('version')!r} is not {SNAPSHOT_VERSION}"
        )


def dump_state(
    counters: Mapping[str, int],
    slots: TagSlots,
    enterprises: Mapping[str, EnterpriseSlot],
    dispatch: Dispatch,
) -> dict[str, Any]:
    """The state of an engine: its counters, slots and instances (default ones left out)."""
    return {
        "version": SNAPSHOT_VERSION,
        "counters": dict(counters),
        "tags": [
            [
                s.info.enterprise,
                s.info.tag,
                None if (newest := s.watermark()) == NEVER else newest,
                s.last_received,
            ]
            for s in slots.values()
        ],
        # Per tag with remembered far-ahead readings: [enterprise, tag, their largest raw
        # ts, the remembered raw ts]. A separate key, so that "tags" keeps its format.
        "ahead": [
            [s.info.enterprise, s.info.tag, s.last_ts, list(s.ahead)]
            for s in slots.values()
            if s.ahead_open()
        ],
        "enterprises": {code: e.last_received for code, e in enterprises.items()},
        # The learned reporting interval per enterprise: [gap mean, gap deviation, gaps seen].
        "enterprise_intervals": {
            code: [e.gap_mean, e.gap_dev, e.gaps] for code, e in enterprises.items()
        },
        "instances": {
            inst.key: inst.dump() for inst in dispatch.instances if not inst.is_default()
        },
        "suppressions_published": {k: list(v) for k, v in dispatch.published.items()},
    }


def load_state(
    snapshot: Mapping[str, Any],
    counters: dict[str, int],
    slots: TagSlots,
    enterprises: Mapping[str, EnterpriseSlot],
    dispatch: Dispatch,
) -> None:
    """Continue a freshly built engine's state from ``snapshot``; what no longer exists is
    dropped and counted in ``counters["snapshot_dropped"]``."""
    for name, value in snapshot.get("counters", {}).items():
        if name in counters:
            counters[name] = int(value)
    _load_slots(snapshot, counters, slots, enterprises)
    for key, data in snapshot.get("instances", {}).items():
        kind = data.get("kind")
        inst = dispatch.find(key)
        if inst is None:
            inst = dispatch.recreate(key, data)  # made on demand (compound)
        if inst is None or inst.kind != kind:
            counters["snapshot_dropped"] += 1
            continue
        try:
            inst.load(data)
        except (KeyError, TypeError, ValueError):
            counters["snapshot_dropped"] += 1
    dispatch.published = {
        str(k): tuple(str(c) for c in v)
        for k, v in snapshot.get("suppressions_published", {}).items()
    }
    dispatch.rearm()


def _load_slots(
    snapshot: Mapping[str, Any],
    counters: dict[str, int],
    slots: TagSlots,
    enterprises: Mapping[str, EnterpriseSlot],
) -> None:
    for enterprise, tag, last_ts, last_received in snapshot.get("tags", ()):
        slot = slots.get((enterprise, tag))
        if slot is None:
            counters["snapshot_dropped"] += 1
            continue
        slot.last_ts = NEVER if last_ts is None else int(last_ts)
        slot.last_received = int(last_received)
    for enterprise, tag, top, remembered in snapshot.get("ahead", ()):
        slot = slots.get((enterprise, tag))
        if slot is None or int(top) <= slot.last_ts:
            continue  # the tag is gone (counted above), or nothing is ahead of it any more
        slot.eval_ts = slot.last_ts
        slot.last_ts = slot.ahead_top = int(top)
        slot.ahead = tuple(int(ts) for ts in remembered)[-AHEAD_MEMORY:]
    for code, last_received in snapshot.get("enterprises", {}).items():
        ent = enterprises.get(code)
        if ent is not None:
            ent.last_received = int(last_received)
    for code, (mean, dev, gaps) in snapshot.get("enterprise_intervals", {}).items():
        ent = enterprises.get(code)
        if ent is not None:
            ent.gap_mean, ent.gap_dev, ent.gaps = float(mean), float(dev), int(gaps)
