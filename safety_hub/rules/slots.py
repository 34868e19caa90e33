"""Per tag and per enterprise: what the rule engine remembers and the instances a reading feeds.

The engine indexes every alarm instance at construction by the slot whose readings it needs, so
a reading only touches the instances of its own tag. A tag slot also keeps the tag's timeline:
its newest evaluated time and the far-ahead readings it remembers (``TagSlot.admit``, the slow
path of ``RuleEngine.on_readings``; the rules are in the engine's module docstring).
"""

from __future__ import annotations

from safety_hub.registry import TagInfo
from safety_hub.rules.conditions.base import (
    BatchFeed,
    DataFeed,
    LinkFeed,
    MemberFeed,
    QualityFeed,
    ValueFeed,
)

TRANSIT_SLACK_MS = 1_000
"""a far-ahead reading is evaluated at least this long before its receive time (transit)"""

AHEAD_MEMORY = 16
"""Raw timestamps of far-ahead readings remembered per tag, so that the same far-ahead reading
delivered again (a QoS 1 redelivery, also after a restart) is a duplicate. A redelivery brings
back the last unacknowledged batch, and a live gateway sends a tag once or a few times per
batch, so a few suffice; the bound keeps a flood from growing the state or the snapshot."""

RANGE_UNDER = 0.0125
RANGE_OVER = 0.03125
"""A value is out of range below ``range_lo - 1.25 %`` or above ``range_hi + 3.125 %`` of the
span: the NAMUR NE 43 saturation limits of a 4–20 mA loop (3.8 mA and 20.5 mA), so a transmitter
that saturates is still a measurement and anything beyond is a fault."""

NEVER = -(2**62)
"""The event time of a tag nothing was evaluated for yet."""


LEARN_MIN_GAP_MS = 200
"""Messages closer together than this are one publication split into messages: not a gap."""

LEARN_CAP_MS = 120_000
"""A gap counts at most this much in the learned interval (an outage is not the interval)."""

LEARN_GAPS = 8
"""Gaps seen before the learned interval is trusted."""

SILENCE_MIN_MS = 10_000
"""The learned silence verdict is never shorter than this (network jitter is no outage)."""

ALIVE_MIN_MS = 1_000
"""An enterprise heard this recently is reporting, whatever its learned interval."""


class EnterpriseSlot:
    """Per enterprise: the newest sign of life, its learned reporting interval and the
    enterprise-level instances.

    The interval is learned from the hub-time gaps between the enterprise's messages the way TCP
    learns a round-trip time (RFC 6298): ``gap_mean`` is an EWMA of the gaps (gain 1/8),
    ``gap_dev`` one of their absolute deviation from it (gain 1/4). ``silence_after`` turns
    that into the silence after which its link is down."""

    __slots__ = (
        "batch_max_ts",
        "code",
        "gap_dev",
        "gap_mean",
        "gaps",
        "last_received",
        "links",
        "skews",
        "touched",
    )

    def __init__(self, code: str, start_ms: int) -> None:
        self.code = code
        self.last_received = start_ms
        self.batch_max_ts = 0
        self.touched = False
        self.links: list[LinkFeed] = []
        self.skews: list[BatchFeed] = []
        self.gap_mean = 0.0
        self.gap_dev = 0.0
        self.gaps = -1  # -1: never heard; the gap from the engine's start is no interval

    def heard(self, received_ms: int) -> None:
        """A message (batch) of the enterprise arrived at hub time ``received_ms``: O(1)."""
        gap = received_ms - self.last_received
        if self.gaps < 0:
            self.gaps = 0
        elif gap >= LEARN_MIN_GAP_MS:
            learn_gap(self, min(gap, LEARN_CAP_MS))
        self.last_received = received_ms

    def learned(self) -> bool:
        return self.gaps >= LEARN_GAPS

    def silence_after(self, ceiling: int) -> int:
        """How long the enterprise may stay silent before its link is down: three learned
        intervals or the mean plus four deviations, whichever is longer, within
        ``SILENCE_MIN_MS`` .. ``ceiling`` (the rule's ``silence``); ``ceiling`` until learned."""
        if not self.learned():
            return ceiling
        mean, dev = self.gap_mean, self.gap_dev
        learned = round(max(3 * mean, mean + 4 * dev))
        return min(ceiling, max(SILENCE_MIN_MS, learned))

    def alive_at(self, now_ms: int) -> bool:
        """The enterprise is reporting at ``now_ms``: heard within twice its learned interval
        (or the mean plus four deviations), at least ``ALIVE_MIN_MS``; within
        ``SILENCE_MIN_MS`` until learned."""
        quiet = now_ms - self.last_received
        if not self.learned():
            return quiet < SILENCE_MIN_MS
        mean, dev = self.gap_mean, self.gap_dev
        return quiet < max(ALIVE_MIN_MS, 2 * mean, mean + 4 * dev)


def learn_gap(ent: EnterpriseSlot, gap: int) -> None:
    """One more gap into the enterprise's learned interval (the first one seeds it)."""
    if ent.gaps == 0:
        ent.gap_mean, ent.gap_dev = float(gap), gap / 2
    else:
        ent.gap_dev += (abs(gap - ent.gap_mean) - ent.gap_dev) / 4
        ent.gap_mean += (gap - ent.gap_mean) / 8
    ent.gaps = min(ent.gaps + 1, LEARN_GAPS)


class TagSlot:
    """Per tag: what the engine remembers and the instances a reading of it feeds.

    ``last_ts`` is what the hot path compares a reading with: a reading stamped after it (and
    within the lead) is simply evaluated. Usually it is the newest evaluated time. While far-ahead
    readings of the tag are remembered (``ahead``), it is their largest raw timestamp
    (``ahead_top``) instead, the newest evaluated time is ``eval_ts``, and readings between the
    two take the slow path, which tells a redelivery from a reading of a corrected clock. A
    reading evaluated past ``ahead_top`` on the fast path ends that state by itself."""

    __slots__ = (
        "ahead",
        "ahead_top",
        "ent",
        "eval_ts",
        "faults",
        "frozen",
        "hi_ok",
        "info",
        "last_received",
        "last_ts",
        "lo_ok",
        "ranges",
        "stales",
        "values",
        "votes",
    )

    def __init__(self, info: TagInfo, ent: EnterpriseSlot, start_ms: int) -> None:
        self.info = info
        self.ent = ent
        span = info.range_hi - info.range_lo
        self.lo_ok = info.range_lo - RANGE_UNDER * span
        self.hi_ok = info.range_hi + RANGE_OVER * span
        self.last_ts = NEVER
        self.last_received = start_ms
        self.ahead: tuple[int, ...] = ()
        self.ahead_top: int | None = None
        self.eval_ts = NEVER
        self.frozen = False
        """a frozen-value alarm of the tag is raised (``conditions/frozen.py``): its votes count
        it faulty"""
        self.values: list[ValueFeed] = []
        self.faults: list[QualityFeed] = []
        self.ranges: list[ValueFeed] = []
        self.stales: list[DataFeed] = []
        self.votes: list[tuple[MemberFeed, int]] = []

    def ahead_open(self) -> bool:
        """Far-ahead readings are remembered and ``last_ts`` is their largest raw timestamp."""
        return self.last_ts == self.ahead_top

    def watermark(self) -> int:
        """The newest evaluated (event) time: an older reading is late, an equal one a
        duplicate."""
        return self.eval_ts if self.ahead_open() else self.last_ts

    def admit(
        self, ts: int, received_ms: int, limit: int, max_lead_ms: int, counters: dict[str, int]
    ) -> int | None:
        """The slow path of ``on_readings`` for a reading that is not simply newer than the
        tag's last one and within the lead (``limit``): the time to evaluate it at, or None (late
        or a duplicate, counted). Also records the reading as the tag's sign of life."""
        previous_received = self.last_received
        self.last_received = received_ms
        remembered = self.ahead_open()
        newest = self.eval_ts if remembered else self.last_ts
        if ts > limit:
            counters["ahead_readings"] += 1
            if remembered and ts in self.ahead:
                counters["duplicate_readings"] += 1  # the same far-ahead reading again
                return None
            # Placed a little before its receive time: the gateway's next honest reading was
            # stamped before it reached the hub too (transit), and must not look late.
            before = received_ms - max(max_lead_ms, TRANSIT_SLACK_MS)
            if newest == NEVER:
                at = before
            else:
                # Continue the tag's own timeline by the hub time elapsed since it was last
                # heard: hub time for a gateway in step, and a gateway whose clock lags keeps
                # its lag, so its next readings are not late either.
                at = min(newest + (received_ms - previous_received), before)
                at = max(at, newest + 1)
            if at > limit:  # the tag was just evaluated at the very edge of the lead
                counters["late_readings"] += 1
                return None
            if remembered:
                self.ahead = (*self.ahead, ts)[-AHEAD_MEMORY:]
                self.ahead_top = max(ts, self.last_ts)
            else:
                self.ahead = (ts,)
                self.ahead_top = ts
            self.last_ts = self.ahead_top
            self.eval_ts = at
            return at
        if remembered and ts in self.ahead:
            # A far-ahead reading delivered again once the hub clock caught up with it (a
            # redelivery after a long restart): it was evaluated, on the tag's timeline.
            counters["duplicate_readings"] += 1
            return None
        if ts <= newest:
            counters["duplicate_readings" if ts == newest else "late_readings"] += 1
            return None
        # Newer than anything evaluated but not than a remembered far-ahead reading: the
        # gateway's clock went back (corrected). This is the reading that must not be late.
        self.eval_ts = ts
        if ts == self.last_ts:  # reached the remembered top: nothing is ahead any more
            self.ahead, self.ahead_top = (), None
        return ts
