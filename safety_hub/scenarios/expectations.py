"""A scenario's expectations (``expect:``) checked against the alarm timeline of a run, and the
alarm keys that an operator action or an expectation names.

Used by replay (``safety_hub.runtime.replay``) and by a scenario played into the demo.
"""

from __future__ import annotations

from collections.abc import Iterable

from safety_hub.rules.schema import format_duration
from safety_hub.scenarios import schema as s
from safety_hub.scenarios.loader import Scenario
from safety_hub.scenarios.report import NotificationRow, ReplayResult, TimelineRow, format_clock


def subject_keys(scenario: Scenario, ref: s.OperatorEvent | s.Expectation) -> list[str] | None:
    """The alarm keys an operator action names, or None when it names no single subject."""
    plant = scenario.plant
    if ref.alert is None:
        return None
    enterprises = [ref.enterprise] if ref.enterprise else list(plant.enterprises)
    keys: list[str] = []
    for ent in enterprises:
        if ref.tag is not None:
            if (ent, ref.tag) in plant.tags:
                keys.append(f"{ref.alert}|{ent}|{ref.tag}")
        elif ref.zone is not None:
            if (ent, ref.zone) in plant.zones:
                keys.append(f"{ref.alert}|{ent}|{ref.zone}")
        elif ref.hazard_source is not None:
            hs = plant.hazard_sources.get(ref.hazard_source)
            if hs is not None and hs.enterprise == ent:
                keys.append(f"{ref.alert}|{ent}|{ref.hazard_source}")
        else:
            keys.append(f"{ref.alert}|{ent}|{ent}")
    return keys


def _matches(x: s.Expectation | s.AlarmRef, r: TimelineRow | NotificationRow) -> bool:
    if x.alert not in (None, "*") and r.alert != x.alert:
        return False
    if x.enterprise is not None and r.enterprise != x.enterprise:
        return False
    if x.tag is not None and r.tag != x.tag:
        return False
    if x.zone is not None and r.zone != x.zone:
        return False
    return x.hazard_source is None or r.hazard_source == x.hazard_source


def _describe(x: s.Expectation | s.AlarmRef) -> str:
    subject = x.tag or x.zone or x.hazard_source or x.enterprise
    alert = "any alarm" if x.alert in (None, "*") else x.alert
    return f"{alert} {subject}" if subject else alert


def _window(w: tuple[int, int]) -> str:
    return f"[{format_duration(w[0])}, {format_duration(w[1])}]"


def _list(rows: Iterable[TimelineRow], limit: int = 6) -> str:
    items = [f"{r.alert} {r.subject} at {format_clock(r.t_ms)}" for r in rows]
    more = len(items) - limit
    text = ", ".join(items[:limit])
    return text + (f" and {more} more" if more > 0 else "") if items else "none"


def check_expectations(scenario: Scenario, result: ReplayResult) -> None:
    """Append a failure (``file:line:col: ...``) for every expectation that did not hold."""
    # the alarm keys some expectation names (only_expected: no other may be raised)
    named: set[str] = set()
    for i, x in enumerate(scenario.model.expect):
        where = scenario.where(("expect", i))
        failure = _check(scenario, result, x, named)
        if failure is not None:
            result.failures.append(f"{where}: {failure}")
    if scenario.model.expect_load_error is not None:
        line, col = scenario.loc.pos(("expect_load_error",))
        result.failures.append(
            f"{scenario.path}:{line}:{col}: expected the file to fail to load with "
            f"{_texts(scenario.model.expect_load_error)}; it loaded"
        )
    if scenario.model.only_expected:
        extra = [r for r in result.raised if r.key not in named]
        unique = list({r.key: r for r in reversed(extra)}.values())[::-1]
        if unique:
            line, col = scenario.loc.pos(("only_expected",))
            result.failures.append(
                f"{scenario.path}:{line}:{col}: only_expected: {len(unique)} alarm(s) raised "
                f"that no expectation names: {_list(unique)}"
            )


def _check(
    scenario: Scenario, result: ReplayResult, x: s.Expectation, named: set[str]
) -> str | None:
    """Why the expectation ``x`` did not hold (None: it held); adds the keys it names."""
    rows = [r for r in result.timeline if _matches(x, r)]
    what = _describe(x)
    if x.raised_between is not None:
        return _raised_between(x, x.raised_between, rows, what, named)
    if x.not_raised:
        raised = [r for r in rows if r.action == "raise"]
        if raised:
            return f"expected {what} not to be raised; raised: {_list(raised)}"
        return None
    if x.cleared_between is not None:
        lo, hi = x.cleared_between
        cleared = [r for r in rows if r.action == "clear"]
        named.update(r.key for r in rows)
        if not any(lo <= r.t_ms <= hi for r in cleared):
            return (
                f"expected {what} cleared within {_window(x.cleared_between)}; "
                f"cleared: {_list(cleared)}"
            )
        return None
    if x.state_at is not None:
        return _state_at(scenario, x, x.state_at, rows, what, named)
    if x.overdue_between is not None:
        return _overdue_between(x.overdue_between, rows, what, named)
    if x.disposal_at is not None:
        return _disposal_at(scenario, x, x.disposal_at, rows, what, named)
    if x.flood_between is not None:
        lo, hi = x.flood_between
        starts = [f["start_ms"] - scenario.start_ms for f in result.floods]
        if not any(lo <= t <= hi for t in starts):
            return (
                f"expected an alarm flood starting within {_window(x.flood_between)}; "
                f"floods started at: {', '.join(format_clock(t) for t in starts) or 'none'}"
            )
    window = x.within or (0, scenario.duration_ms)
    if x.notified is not None or x.not_notified:
        return _notified(result, x, window, what)
    if x.no_flood:
        return _no_flood(scenario, result, window)
    inside = [r for r in rows if r.annunciated and window[0] <= r.t_ms <= window[1]]
    named.update(r.key for r in inside)
    if x.annunciations is not None:
        lo_n, hi_n = x.annunciations.min, x.annunciations.max
        if (lo_n is not None and len(inside) < lo_n) or (hi_n is not None and len(inside) > hi_n):
            bound = _bounds(lo_n, hi_n)
            return (
                f"expected {bound} annunciation(s) of {what} within {_window(window)}, "
                f"got {len(inside)}: {_list(inside)}"
            )
    if x.first_out is not None:
        first = inside[0] if inside else None
        if first is None or not _matches(x.first_out, first):
            narrowed = x.alert or x.enterprise or x.tag or x.zone or x.hazard_source
            where = f"of {what} " if narrowed else ""
            return (
                f"expected the first annunciation {where}within {_window(window)} to be "
                f"{_describe(x.first_out)}; it was {_list(inside[:1])}"
            )
    return None


def _sent(rows: Iterable[NotificationRow], limit: int = 6) -> str:
    items = [f"{n.person_id} {n.channel} {n.kind} at {format_clock(n.t_ms)}" for n in rows]
    more = len(items) - limit
    text = ", ".join(items[:limit])
    return text + (f" and {more} more" if more > 0 else "") if items else "none"


def _notified(
    result: ReplayResult, x: s.Expectation, window: tuple[int, int], what: str
) -> str | None:
    """``notified``: a matching notification sent within the window; ``not_notified``: none."""
    about = [n for n in result.notifications if _matches(x, n)]
    inside = [n for n in about if window[0] <= n.t_ms <= window[1]]
    ref = x.notified
    if ref is None:
        if inside:
            return f"expected nobody notified about {what} within {_window(window)}; sent: {_sent(inside)}"
        return None
    if not result.notifications_on:
        return "notifications are off in this run (no people directory, or SAFETY_HUB_NOTIFY=off)"
    hits = [
        n
        for n in inside
        if n.person_id == ref.person
        and ref.channel in (None, n.channel)
        and ref.kind in (None, n.kind)
    ]
    if hits:
        return None
    by = "".join(f" {v}" for v in (ref.channel, ref.kind) if v)
    return (
        f"expected {ref.person}{by} notified about {what} within {_window(window)}; "
        f"sent about it: {_sent(about)}"
    )


def _texts(texts: Iterable[str]) -> str:
    return ", ".join(repr(t) for t in texts)


def _bounds(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return str(lo) if lo == hi else f"{lo} to {hi}"
    return f"at least {lo}" if lo is not None else f"at most {hi}"


def _no_flood(scenario: Scenario, result: ReplayResult, window: tuple[int, int]) -> str | None:
    """No flood episode (docs/alarms.md: more than 10 annunciations in 10 minutes) overlaps
    the window."""
    hits = []
    for f in result.floods:
        start = f["start_ms"] - scenario.start_ms
        end = scenario.duration_ms if f["end_ms"] is None else f["end_ms"] - scenario.start_ms
        if start <= window[1] and end >= window[0]:
            hits.append(f"from {format_clock(start)} (peak {f['peak_count']} in 10 min)")
    if hits:
        return f"expected no alarm flood within {_window(window)}; flood {', '.join(hits)}"
    return None


def _raised_between(
    x: s.Expectation,
    window: tuple[int, int],
    rows: list[TimelineRow],
    what: str,
    named: set[str],
) -> str | None:
    lo, hi = window
    raised = [r for r in rows if r.action == "raise"]
    inside = [r for r in raised if lo <= r.t_ms <= hi]
    named.update(r.key for r in inside)
    keys = {r.key for r in inside}
    if x.count is not None and len(keys) != x.count:
        return (
            f"expected {x.count} {what} alarm(s) raised within "
            f"{_window(window)}, got {len(keys)}: {_list(inside)}"
        )
    if x.count is None and not inside:
        return f"expected {what} raised within {_window(window)}; raised: {_list(raised)}"
    if x.priority is not None:
        wrong = [r for r in inside if r.priority != x.priority]
        if wrong:
            return f"{what} raised with priority {wrong[0].priority}, expected {x.priority}"
    return None


def _state_at(
    scenario: Scenario,
    x: s.Expectation,
    at: int,
    rows: list[TimelineRow],
    what: str,
    named: set[str],
) -> str | None:
    subject = x.tag or x.zone or x.hazard_source
    keys = subject_keys(scenario, x) if subject and x.alert != "*" else None
    states: dict[str, str] = {k: "normal" for k in keys or ()}
    for r in rows:
        if r.t_ms <= at:
            states[r.key] = r.to_state
    named.update(states)
    if not states:
        states = {"(none)": "normal"}
    wanted = x.state or ()
    off = {k: v for k, v in states.items() if v not in wanted}
    if off:
        shown = ", ".join(f"{k.split('|', 1)[1]}: {v}" for k, v in sorted(off.items()))
        expected = " or ".join(wanted)
        return f"at {format_duration(at)}, expected {what} {expected}; found {shown}"
    return None


def _overdue_between(
    window: tuple[int, int], rows: list[TimelineRow], what: str, named: set[str]
) -> str | None:
    """A matching warning went overdue for disposal (``disposal_overdue``) within the window."""
    overdue = [r for r in rows if r.action == "disposal_overdue"]
    named.update(r.key for r in overdue)
    if not any(window[0] <= r.t_ms <= window[1] for r in overdue):
        return f"expected {what} overdue for disposal within {_window(window)}; overdue: {_list(overdue)}"
    return None


def _disposal_at(
    scenario: Scenario,
    x: s.Expectation,
    at: int,
    rows: list[TimelineRow],
    what: str,
    named: set[str],
) -> str | None:
    """Every matching alarm's disposal status at ``at``: ``none`` (no episode needing one),
    ``pending`` (annunciated, tier yellow or above, not disposed, not overdue), ``overdue``,
    ``disposed`` (this episode)."""
    subject = x.tag or x.zone or x.hazard_source
    keys = subject_keys(scenario, x) if subject and x.alert != "*" else None
    status: dict[str, str] = {k: "none" for k in keys or ()}
    for r in rows:
        if r.t_ms > at:
            continue
        if r.annunciated:
            status[r.key] = "none" if r.priority == "low" else "pending"
        elif r.action == "disposal_overdue":
            status[r.key] = "overdue"
        elif r.action == "dispose":
            status[r.key] = "disposed"
    named.update(status)
    if not status:
        status = {"(none)": "none"}
    off = {k: v for k, v in status.items() if v != x.disposal}
    if off:
        shown = ", ".join(f"{k.split('|', 1)[1]}: {v}" for k, v in sorted(off.items()))
        return f"at {format_duration(at)}, expected {what} disposal {x.disposal}; found {shown}"
    return None
