"""Root-cause grouping of lost communication: the consequences of an enterprise's silence (a tag
gone stale, a voting zone degraded by stale detectors) are grouped under its link-down alarm.

A consequence noticed while its enterprise is still reporting (``EnterpriseSlot.alive_at``) is an
alarm of its own: one detector gone silent. Noticed while the enterprise is quiet too, it waits
for the link's verdict (``LinkFeed.verdict``) instead of annunciating first; once the link alarm
is raised it is raised as a child: grouped (``EngineHooks.group``), so suppressed by its parent,
journaled but never annunciated. When the parent clears the children stay grouped for their
grace (``AlarmInstance.grace_ms``): one that returns to normal within it clears quietly, one still
raised after it is ungrouped and annunciates on its own (that tag really is silent).
"""

from __future__ import annotations

from safety_hub.rules.conditions.base import ACTIVE, EngineHooks
from safety_hub.rules.slots import EnterpriseSlot


def root_cause(ent: EnterpriseSlot, at: int, hooks: EngineHooks) -> tuple[str | None, int | None]:
    """For a consequence of silence noticed at hub time ``at`` in enterprise ``ent``:

    - ``(parent key, None)``: the enterprise's link alarm is raised; group under it;
    - ``(None, when)``: the enterprise is quiet but its link verdict is not known before
      ``when``: hold the decision until then;
    - ``(None, None)``: not the enterprise's silence (it is reporting, or nothing watches its
      link): an alarm of its own.
    """
    if ent.alive_at(at):
        return None, None
    for link in ent.links:
        wait = link.verdict(at, hooks)
        if wait is not None:
            return None, wait
        if link.state >= ACTIVE:
            return link.key, None
    return None, None
