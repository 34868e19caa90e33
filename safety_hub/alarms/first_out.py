"""First-out: the first alarm annunciated in a hazard source's episode stays pinned until
nothing of that source is shown any more (docs/alarms.md, "First-out")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from safety_hub.alarms.model import DISPLAYED_STATES, Alarm


class Step(Protocol):
    """One alarm's change within a service call (``service._Step``)."""

    @property
    def before(self) -> Alarm | None: ...

    @property
    def after(self) -> Alarm: ...

    @property
    def annunciated(self) -> bool: ...


def first_out_changes(
    pinned_now: Mapping[str, int],
    by_source: Mapping[str, set[int]],
    alarms: Mapping[int, Alarm],
    now: int,
    steps: Sequence[Step],
) -> dict[str, tuple[int, int] | None]:
    """Per hazard source the steps touch: ``(alarm id, since)`` to pin the first annunciation
    of an episode, None to unpin one when nothing of the source is shown after the steps."""
    after = {s.after.id: s.after for s in steps}
    sources = {s.after.hazard_source for s in steps}
    sources.update(s.before.hazard_source for s in steps if s.before is not None)
    sources.discard("")
    changes: dict[str, tuple[int, int] | None] = {}
    for source in sorted(sources):
        if pinned_now.get(source) is None:
            first = next(
                (s.after for s in steps if s.after.hazard_source == source and s.annunciated),
                None,
            )
            if first is not None:
                changes[source] = (first.id, now)
            continue
        members = by_source.get(source, set()) | {
            i for i, a in after.items() if a.hazard_source == source
        }
        shown = any(
            a.hazard_source == source and a.state in DISPLAYED_STATES
            for a in (after.get(i) or alarms[i] for i in members)
        )
        if not shown:
            changes[source] = None
    return changes
