"""The replay's output: the alarm timeline as a table, the verdict, and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from safety_hub.scenarios.replay import ReplayResult, format_clock


def _value(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def print_timeline(result: ReplayResult, out: TextIO, *, field_events: bool = True) -> None:
    """The alarm transitions (and, between them, what happened in the field) as a table."""
    rows: list[tuple[int, int, list[str]]] = []
    for r in result.timeline:
        state = f"{r.from_state} → {r.to_state}"
        rows.append(
            (
                r.t_ms,
                1,
                [
                    format_clock(r.t_ms),
                    r.action,
                    r.priority,
                    r.alert,
                    f"{r.enterprise}/{r.subject}" if r.subject != r.enterprise else r.enterprise,
                    _value(r.value),
                    state + (f" ({r.user})" if r.user else ""),
                ],
            )
        )
    if field_events:
        for n in result.notes:
            t = n.at_ms - result.start_ms
            rows.append((t, 0, [format_clock(t), "field", "", "", n.text, "", ""]))
    rows.sort(key=lambda r: (r[0], r[1]))
    header = ["time", "action", "priority", "alert", "subject", "value", "state"]
    table = [header] + [r[2] for r in rows]
    widths = [max(len(row[i]) for row in table if row[1] != "field" or i < 2) for i in range(6)]
    for row in table:
        if row[1] == "field":
            print(f"{row[0]:>{widths[0]}}  {'·':<{widths[1]}}  {row[4]}", file=out)
            continue
        cells = [f"{row[0]:>{widths[0]}}"] + [
            f"{c:<{w}}" for c, w in zip(row[1:6], widths[1:], strict=True)
        ]
        print("  ".join(cells) + "  " + row[6], file=out)
    if not result.timeline:
        print("(no alarm transitions)", file=out)


def print_verdict(result: ReplayResult, out: TextIO) -> None:
    raised = len(result.keys_raised())
    stats = (
        f"{format_clock(result.duration_ms)} simulated in {result.wall_s:.2f} s: "
        f"{result.messages} messages, {result.readings} readings, {raised} alarm(s) raised, "
        f"{len(result.timeline)} transition(s)"
    )
    if result.passed:
        print(f"PASS  {result.scenario}  ({stats})", file=out)
        return
    print(f"FAIL  {result.scenario}  ({stats})", file=out)
    for failure in result.failures:
        print(f"  {failure}", file=out)


def write_report(result: ReplayResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(result.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
