"""Root-cause groups: which alarms are grouped under which parent alarm.

The rule engine groups the consequences of a root cause (the stale tags and degraded votes of an
enterprise whose link is down) under the root cause's alarm: their conditions carry the label
``parent`` with the parent alarm's key, and the parent's key suppresses them by design
(docs/rules.md, *Root-cause grouping*). The label stays on the alarm after it clears, so a
parent lists every alarm that was ever grouped under it (its key set is bounded by the rules).
"""

from __future__ import annotations

from collections.abc import Iterable

from safety_hub.alarms.model import Alarm

PARENT_LABEL = "parent"


def parent_key(alarm: Alarm) -> str | None:
    """The key of the alarm ``alarm`` is grouped under, if any."""
    return alarm.labels.get(PARENT_LABEL) or None


class Children:
    """Parent key -> the ids of the alarms grouped under it; kept by the alarm service."""

    def __init__(self, alarms: Iterable[Alarm] = ()) -> None:
        self._by_parent: dict[str, set[int]] = {}
        for alarm in alarms:
            self.update(None, alarm)

    def update(self, before: Alarm | None, after: Alarm) -> None:
        """An alarm changed from ``before`` to ``after``."""
        old = None if before is None else parent_key(before)
        new = parent_key(after)
        if old == new:
            return
        if old is not None:
            ids = self._by_parent.get(old, set())
            ids.discard(after.id)
            if not ids:
                self._by_parent.pop(old, None)
        if new is not None:
            self._by_parent.setdefault(new, set()).add(after.id)

    def of(self, key: str) -> set[int]:
        """The ids of the alarms grouped under the alarm with ``key``."""
        return set(self._by_parent.get(key, ()))
