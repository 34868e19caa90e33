"""Every query of every board, run against a real InfluxDB holding an incident that went through
the hub's own write path (decoder, spool, rule engine, alarm service, InfluxDB v1 sink).

The incident (deterministic, on a virtual clock, 30 minutes of the whole sample park): a
chlorine release at the liquid-chlorine tank farm HS-E01-01 (GT-1101 and GT-1102 past level 1
and level 2, so the 2oo3 vote confirms the leak), tank LT-1101 filling past H and HH, the
tank's SIS in bypass, an operator acknowledging the level-2 alarm after 90 s, one unknown tag
and one bad-quality reading, enterprise e05 going offline for the last ten minutes, and the
cylinder store's chlorine detector GT-1208 chattering across its level 1 (latched: one
annunciation, one chattering alarm). Red warnings have a 10-minute disposal limit here, so the
leak's red warnings go overdue; the operator disposes the level-2 alarm as a real release at
minute 25 and the chatterer as a false alarm at minute 26; the others stay overdue.

Grafana is emulated the way its InfluxQL datasource prepares a query: template variables
substituted (a multi-value or All variable as a regex alternation of escaped values), then
``$timeFilter`` and ``$__interval`` expanded.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import build_all, default_json_dir, render
from safety_hub.alarms.kpis import flood_episodes
from safety_hub.clock import VirtualClock
from safety_hub.ports import InboundMessage
from safety_hub.registry import Plant, TagInfo, default_plant_path, load_plant
from safety_hub.registry import checks as registry_checks
from safety_hub.rules import default_rules_path, load_rules
from safety_hub.runtime.hub import Hub
from safety_hub.settings import load_settings
from tests.fixtures.processes import InfluxDB1Process
from tests.unit.fakes import MemorySource

pytestmark = pytest.mark.integration

T0 = 1_795_651_200_000  # 2026-11-27T08:00:00+08:00
STEP_MS = 5_000
DURATION_MS = 30 * 60_000
E01, E05, HS = "e01-chloralkali", "e05-tankfarm", "HS-E01-01"
MISPLACED = "LT-1101"  # a level reading E01's gateway once sends on its critical topic
E02 = "e02-sodium"
GAS_KINDS = ("combustible_gas", "toxic_gas", "open_path_gas")
CHATTERER = "GT-1208"
GAS_PEAK, LEVEL_PEAK = 1.2, 2.45
ACK_DELAY_MS = 90_000
RED_LIMIT_S = 600
DISPOSALS = {  # minute -> (alarm key, category)
    25: (f"ToxicGasLevel2|{E01}|GT-1101", "real_release"),
    26: (f"ToxicGasLevel1|{E01}|{CHATTERER}", "false_alarm"),
}
MIN_INTERVAL_MS = 10_000  # the provisioned datasource's "Min time interval" (timeInterval)
MAX_DATA_POINTS = 1_000


def _minute(t: int) -> float:
    return (t - T0) / 60_000


def _normal(tag: TagInfo) -> float:
    """A steady value inside the normal band of every setpoint (no alarm)."""
    if tag.kind in GAS_KINDS:
        return round(tag.range_lo + (tag.range_hi - tag.range_lo) * 0.01, 4)
    if tag.kind == "oxygen":
        return 20.9
    if tag.kind.startswith("sis") or tag.kind == "status":
        return 0.0
    sp = tag.setpoints
    lo = max([tag.range_lo, *(sp[k] for k in ("ll", "l") if k in sp)])
    hi = min([tag.range_hi, *(sp[k] for k in ("h", "hh") if k in sp)])
    return round((lo + hi) / 2, 4)


def _triangle(m: float, start: float, top: float, end: float, base: float, peak: float) -> float:
    if m <= start or m >= end:
        return base
    if m <= top:
        return base + (peak - base) * (m - start) / (top - start)
    return peak - (peak - base) * (m - top) / (end - top)


def incident_value(tag: TagInfo, t: int) -> float:
    m = _minute(t)
    base = _normal(tag)
    if tag.enterprise == E02 and tag.kind in GAS_KINDS and 16 <= m < 19:
        # a release sweeping e02's unit: every gas detector alarms within three minutes, a
        # flood (more than 10 annunciations in 10 minutes)
        return round(tag.range_lo + (tag.range_hi - tag.range_lo) * 0.6, 4)
    if tag.enterprise != E01:
        return base
    if tag.tag == "GT-1101":
        return round(_triangle(m, 5, 10, 15, base, GAS_PEAK), 4)
    if tag.tag == "GT-1102":
        return round(_triangle(m, 6, 10, 15, base, 0.8), 4)
    if tag.tag == "LT-1101":
        return round(base + (LEVEL_PEAK - base) * min(1.0, max(0.0, (m - 5) / 7)), 4)
    if tag.tag == "UZ-1101.BP":
        return 1.0 if m >= 2 else 0.0
    if tag.tag == CHATTERER and 22 <= m < 24:
        return 0.4 if (t - T0) // 10_000 % 2 == 0 else base  # level 1 is 0.3 ppm
    return base


@dataclass
class Incident:
    plant: Plant
    boards: dict[str, dict[str, Any]]
    db: str
    influx: InfluxDB1Process
    start_ms: int
    end_ms: int
    annunciations: int
    annunciations_hs: int
    acked_priority: str
    stale_now: set[tuple[str, str | None]] = field(default_factory=set)
    flood_pct: float = 0.0
    chattering: list[str] = field(default_factory=list)
    """keys of the alarms the service's KPIs list as chattering over the incident"""
    """share of the 10 s statistics samples inside an ISA-18.2 flood episode of the journal"""
    disposal_needed: int = 0
    """episodes of tier yellow or above that annunciated"""
    times_to_dispose_s: list[float] = field(default_factory=list)
    overdue_now: int = 0
    """red/orange warnings overdue at the end"""


def _drain(hub: Hub) -> None:
    while True:
        batches = hub.spool.peek(20_000)
        if not batches:
            return
        hub.sink_worker._write(batches)


def _topics_of(
    plant: Any, code: str, readings: list[dict[str, Any]], t: int
) -> list[tuple[str, list[dict[str, Any]]]]:
    """E01's gateway speaks contract v1.1: gas and SIS readings on its critical topic (and,
    once, a level reading misplaced there); the other gateways send all on telemetry."""
    if code != E01:
        return [("telemetry", readings)]
    critical = registry_checks.GAS_KINDS | registry_checks.SIS_KINDS
    misplaced = t == T0 + 5 * 60_000

    def on_critical(r: dict[str, Any]) -> bool:
        tag = plant.tags.get((code, r["tag"]))
        return (tag is not None and tag.kind in critical) or (misplaced and r["tag"] == MISPLACED)

    parts = [
        ("critical", [r for r in readings if on_critical(r)]),
        ("telemetry", [r for r in readings if not on_critical(r)]),
    ]
    return [(topic, part) for topic, part in parts if part]


@pytest.fixture(scope="module")
def incident(
    influxdb1: InfluxDB1Process, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Incident]:
    db = "dashboards_incident"
    influxdb1.create_database(db)
    plant = load_plant(default_plant_path())
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("hub"),
        influx_url=influxdb1.url,
        influx_api="v1",
        influx_bucket=db,
        disposal_limit_red_s=RED_LIMIT_S,
        sink_process=False,  # the test drains the spool into InfluxDB itself, in step
    )
    clock = VirtualClock(T0)
    hub = Hub(settings, clock=clock, plant=plant, source=MemorySource())
    hub.ingest.attach(hub.source)  # type: ignore[arg-type]
    svc = hub.alarms.service
    tags = [t for t in plant.tags.values() if t.in_service]
    acked = ""
    ack_due: int | None = None
    for t in range(T0, T0 + DURATION_MS + 1, STEP_MS):
        clock.set(t)
        messages: list[InboundMessage] = []
        if t == T0:
            for code in plant.enterprises:
                body = b'{"state":"online"}'
                messages.append(InboundMessage(f"hazard/v1/{code}/status", body, t))
        if t == T0 + 20 * 60_000:
            messages.append(InboundMessage(f"hazard/v1/{E05}/status", b'{"state":"offline"}', t))
        by_enterprise: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tag in tags:
            if (t - T0) % int(tag.interval_s * 1000):
                continue
            if tag.enterprise == E05 and t > T0 + 20 * 60_000:
                continue  # the gateway is gone
            reading: dict[str, Any] = {"tag": tag.tag, "v": incident_value(tag, t)}
            if tag.tag == "TT-1101" and t == T0 + 4 * 60_000:
                reading["q"] = "bad"
            by_enterprise[tag.enterprise].append(reading)
        if t == T0 + 3 * 60_000:
            by_enterprise[E01].append({"tag": "GT-9999", "v": 1.0})
        for code, readings in by_enterprise.items():
            for topic, part in _topics_of(plant, code, readings, t):
                payload = json.dumps({"ts": t, "readings": part}).encode()
                messages.append(InboundMessage(f"hazard/v1/{code}/{topic}", payload, t))
        hub.ingest.process(messages)
        hub.alarms.tick()
        level2 = svc.find(f"ToxicGasLevel2|{E01}|GT-1101")
        if level2 is not None and ack_due is None and level2.raised_ms is not None:
            ack_due = level2.raised_ms + ACK_DELAY_MS
        if ack_due is not None and t >= ack_due and not acked:
            assert level2 is not None
            acked = svc.acknowledge(level2.id, "zhang.wei", comment="现场确认").priority.value
        if (t - T0) % 60_000 == 0 and (t - T0) // 60_000 in DISPOSALS:
            key, category = DISPOSALS[(t - T0) // 60_000]
            disposed = svc.find(key)
            assert disposed is not None, key
            svc.dispose(disposed.id, "zhang.wei", category, "现场核查 checked on site")
        if (t - T0) % 10_000 == 0:
            hub.stats.write()
        if (t - T0) % 60_000 == 0:
            _drain(hub)
    _drain(hub)
    assert hub.spool.depth().dead_letters == 0
    journal = svc.journal(since_ms=0, limit=1_000_000)
    annunciated = [e for e in journal if e.annunciated and e.alarm_id is not None]
    hs_count = sum(1 for e in annunciated if svc.get(e.alarm_id).hazard_source == HS)  # type: ignore[arg-type]
    everything = svc.list(include_normal=True, limit=100_000)
    overdue_now = sum(
        a.disposal_overdue and a.priority.value in ("high", "critical") for a in everything
    )
    assert overdue_now > 0, "no red warning stayed overdue"
    assert acked, "the level-2 alarm was never raised"
    episodes = flood_episodes((e.ts_ms for e in annunciated), now_ms=T0 + DURATION_MS)
    samples = range(T0, T0 + DURATION_MS + 1, 10_000)
    flooded = [
        any(f.start_ms <= t and (f.end_ms is None or t < f.end_ms) for f in episodes)
        for t in samples
    ]
    yield Incident(
        plant=plant,
        boards=build_all(plant, load_rules(default_rules_path(), plant)),
        db=db,
        influx=influxdb1,
        start_ms=T0,
        end_ms=T0 + DURATION_MS,
        annunciations=len(annunciated),
        annunciations_hs=hs_count,
        acked_priority=acked,
        flood_pct=100 * sum(flooded) / len(flooded),
        disposal_needed=sum(
            1 for e in annunciated if e.priority is not None and e.priority.value != "low"
        ),
        times_to_dispose_s=[(d.at_ms - d.raised_ms) / 1000 for _, d in svc.disposals()],
        overdue_now=overdue_now,
        chattering=[
            c.key for c in svc.kpis(now_ms=T0 + DURATION_MS, window_ms=DURATION_MS).chattering
        ],
        stale_now={
            (a.enterprise, a.tag)
            for a in svc.list(include_normal=True, limit=100_000)
            if a.alert in ("TagStale", "GasDetectorStale") and a.active
        },
    )
    hub.spool.close()
    influxdb1.drop_database(db)


# -- Grafana's query preparation -------------------------------------------------------------

_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|[\]{}/]")
_ROUND = [  # Grafana's rangeUtil.roundInterval: below the first value, use the second
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
]


def grafana_interval_ms(start_ms: int, end_ms: int) -> int:
    raw = (end_ms - start_ms) / MAX_DATA_POINTS
    rounded = next((to for below, to in _ROUND if raw < below), 604_800_000)
    return max(rounded, MIN_INTERVAL_MS)


def _escape_regex(value: str) -> str:
    """@grafana/data escapeRegex."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def interpolate(query: str, values: dict[str, list[str]], multi: dict[str, bool]) -> str:
    """Substitute variables as Grafana's InfluxQL datasource does: ``${var:regex}`` escapes
    every value and joins several as ``(a|b)``; a plain ``$var`` of a multi-value or All
    variable is the same, of a single-value variable the raw value."""

    def regex(name: str) -> str:
        escaped = [_escape_regex(v) for v in values[name]]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    def sub(m: re.Match[str]) -> str:
        name, fmt = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), None)
        if name not in values:
            return m.group(0)
        if fmt == "regex" or multi[name]:
            return regex(name)
        assert fmt is None, f"format {fmt} not emulated"
        return values[name][0]

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", sub, query)


def expand_macros(query: str, start_ms: int, end_ms: int) -> str:
    interval = grafana_interval_ms(start_ms, end_ms)
    query = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    query = query.replace("$__interval_ms", str(interval))
    return query.replace("$__interval", f"{interval // 1000}s")


def render_alias(alias: str, series: dict[str, Any]) -> str:
    tags = series.get("tags") or {}
    return re.sub(r"\$tag_(\w+)", lambda m: tags.get(m.group(1), ""), alias)


@dataclass
class Answer:
    series: list[dict[str, Any]]

    def by_name(self, alias: str) -> dict[str, dict[str, Any]]:
        return {render_alias(alias, s): s for s in self.series}

    def column(self, name: str) -> list[Any]:
        out: list[Any] = []
        for s in self.series:
            index = s["columns"].index(name)
            out += [row[index] for row in s["values"]]
        return out

    def rows(self) -> list[dict[str, Any]]:
        return [
            {**(s.get("tags") or {}), **dict(zip(s["columns"], row, strict=True))}
            for s in self.series
            for row in s["values"]
        ]


class Runner:
    def __init__(self, inc: Incident, board: dict[str, Any], values: dict[str, list[str]]):
        self.inc = inc
        self.board = board
        variables = [v for v in board["templating"]["list"] if v["type"] == "query"]
        self.multi = {v["name"]: bool(v["multi"] or v["includeAll"]) for v in variables}
        self.values: dict[str, list[str]] = {}
        for var in variables:  # in order: each may use the ones before it
            options = self.show_values(var["query"])
            assert options, f"variable {var['name']} has no values"
            wanted = values.get(var["name"])
            if wanted is None:
                assert var["includeAll"], f"pick a value for {var['name']}"
                wanted = options  # All
            assert set(wanted) <= set(options), (var["name"], wanted, options)
            self.values[var["name"]] = wanted
        self.asserted: set[tuple[int, str]] = set()

    def run(self, query: str) -> Answer:
        q = expand_macros(
            interpolate(query, self.values, self.multi), self.inc.start_ms, self.inc.end_ms
        )
        body = self.inc.influx.query(q, self.inc.db, epoch="ms")
        return Answer([s for r in body["results"] for s in r.get("series", [])])

    def show_values(self, query: str) -> list[str]:
        """A SHOW TAG VALUES answer: rows of [key, value]."""
        return sorted(row[1] for s in self.run(query).series for row in s["values"])

    def panel(
        self, title_part: str, ref: str = "A"
    ) -> tuple[Answer, dict[str, Any], dict[str, Any]]:
        panels = [
            p for p in self.board["panels"] if p["type"] != "row" and title_part in p["title"]
        ]
        if len(panels) > 1:  # "online rate" is in two titles: prefer the one it ends
            panels = [p for p in panels if p["title"].endswith(title_part)]
        assert len(panels) == 1, (title_part, [p["title"] for p in panels])
        target = next(t for t in panels[0]["targets"] if t["refId"] == ref)
        self.asserted.add((panels[0]["id"], ref))
        return self.run(target["query"]), panels[0], target


def _runner(incident: Incident, uid: str, **values: list[str]) -> Runner:
    return Runner(incident, incident.boards[uid], values)


def _every_target_answers(runner: Runner) -> None:
    for panel in runner.board["panels"]:
        for target in panel.get("targets", []):
            answer = runner.run(target["query"])
            assert answer.series, f"{panel['title']} [{target['refId']}] returned nothing"
            assert (panel["id"], target["refId"]) in runner.asserted, (
                f"{panel['title']} [{target['refId']}] has no expectation in this test"
            )
    for ann in runner.board["annotations"]["list"]:
        if ann.get("builtIn"):
            continue
        assert runner.run(ann["query"]).series, f"annotation {ann['name']} returned nothing"


def _last(answer: Answer, column: str | None = None) -> Any:
    values = [v for v in answer.column(column or answer.series[0]["columns"][1]) if v is not None]
    return values[-1]


# -- the boards ------------------------------------------------------------------------------


def test_boards_under_test_are_the_committed_json(incident: Incident) -> None:
    """The queries run below are exactly those in dashboards/json/."""
    for uid, board in incident.boards.items():
        assert (default_json_dir() / f"{uid}.json").read_text() == render(board)


def test_park_overview_shows_the_incident(incident: Incident) -> None:
    """Tiers, alarms by enterprise, alarm rate, online rate: all from the incident's data."""
    r = _runner(incident, "safety-hub-park-overview")
    assert r.values["enterprise"] == sorted(incident.plant.enterprises)
    shown, _, _ = r.panel("Alarms shown")
    assert _last(shown) > 0
    unacked, _, _ = r.panel("Unacknowledged")
    assert _last(unacked) >= 1
    online, _, _ = r.panel("Enterprise online rate")
    rate = online.column("mean")
    assert max(rate) == 100.0 and rate[-1] == 80.0  # e05 offline for the last 10 minutes
    recent, _, _ = r.panel("Alarms in the last 10 min")
    assert _last(recent) > 0
    tiers, _, _ = r.panel("Hazard sources by worst alarm tier")
    rows = {row["hazard_source"]: row for row in tiers.rows()}
    assert set(rows) == set(incident.plant.hazard_sources)
    assert rows[HS]["tier"] == 4  # the 2oo3-confirmed chlorine leak is critical: red
    by_enterprise, _, target = r.panel("Active alarms by enterprise")
    named = by_enterprise.by_name(target["alias"])
    assert set(named) == set(incident.plant.enterprises)
    assert _last(Answer([named[E01]])) >= 3
    per10, panel, target = r.panel("Alarm rate vs ISA-18.2")
    assert sum(per10.column("count")) == incident.annunciations
    assert [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        None,
        1,
        2,
        10,
    ]
    overdue, _, _ = r.panel("Overdue red/orange warnings")
    assert _last(overdue) == incident.overdue_now
    online_ts, _, _ = r.panel("Enterprise online rate over time")
    assert online_ts.column("mean")[-1] == 80.0
    timeline, _, target = r.panel("tier over time")
    named = timeline.by_name(target["alias"])
    assert max(v[1] for v in named[HS]["values"] if v[1] is not None) == 4
    _every_target_answers(r)


def test_hazard_source_board_shows_the_release(incident: Incident) -> None:
    """Gas peak, tank level past HH, SIS bypass, alarm journal and annotations of HS-E01-01."""
    r = _runner(incident, "safety-hub-hazard-source", enterprise=[E01], hazard_source=[HS])
    assert HS in r.values["hazard_source"] and "GT-1101" in r.values["tag"]
    tier, _, _ = r.panel("Worst alarm tier")
    assert _last(tier) == 4
    shown, _, _ = r.panel("Alarms shown")
    assert _last(shown) >= 3
    count, _, _ = r.panel("Annunciations in range")
    assert count.column("count") == [incident.annunciations_hs]

    gas, panel, target = r.panel("Gas concentration")
    named = gas.by_name(target["alias"])
    overrides = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]}
    assert set(named) <= overrides  # every series gets its name, unit and setpoint lines
    peak = max(v[1] for v in named[f"{E01}/GT-1101"]["values"] if v[1] is not None)
    assert peak == GAS_PEAK
    gt = incident.plant.tags[(E01, "GT-1101")]
    assert peak > gt.setpoints["l2"] > gt.setpoints["l1"]

    level, panel, target = r.panel("Tank level")
    named = level.by_name(target["alias"])
    lt = incident.plant.tags[(E01, "LT-1101")]
    top = max(v[1] for v in named[f"{E01}/LT-1101"]["values"] if v[1] is not None)
    assert top == LEVEL_PEAK > lt.setpoints["hh"] > lt.setpoints["h"]
    for title, tag in (("Pressure", "PT-1101"), ("Temperature", "TT-1101")):
        answer, _, target = r.panel(title)
        values = [v[1] for v in answer.by_name(target["alias"])[f"{E01}/{tag}"]["values"]]
        assert values and all(
            v == _normal(incident.plant.tags[(E01, tag)]) for v in values if v is not None
        )

    sis, _, target = r.panel("SIS trips, bypasses and faults")
    named = sis.by_name(target["alias"])
    assert {f"{E01}/UZ-1101", f"{E01}/UZ-1101.BP", f"{E01}/UZ-1101.FLT"} <= set(named)
    assert named[f"{E01}/UZ-1101.BP"]["values"][-1][1] == 1.0
    bypasses, _, _ = r.panel("Active bypasses")
    on = {row["tag"] for row in bypasses.rows() if row["bypass"] >= 0.5}
    assert on == {"UZ-1101.BP"}
    journal, _, _ = r.panel("Alarm journal")
    rows = journal.rows()
    alerts = {row["alert"] for row in rows}
    assert {
        "ToxicGasLevel1",
        "ToxicGasLevel2",
        "GasLeakConfirmed",
        "TankLevelHighHigh",
        "SisBypassActive",
    } <= alerts
    assert any(row["action"] == "ack" and row["user"] == "zhang.wei" for row in rows)

    ann = next(a for a in r.board["annotations"]["list"] if not a.get("builtIn"))
    marks = r.run(ann["query"]).rows()
    assert len(marks) == incident.annunciations_hs
    assert all(set(ann["tagsColumn"].split(",")) - {"zone"} <= set(m) for m in marks)
    _every_target_answers(r)


def test_alarm_performance_counts_the_incident(incident: Incident) -> None:
    """Per-10-minute counts, bad actors, priority mix and time to acknowledge."""
    r = _runner(incident, "safety-hub-alarm-performance")
    per10, _, _ = r.panel("Alarms per 10 min")
    assert sum(per10.column("count")) == incident.annunciations
    flood, _, _ = r.panel("Time in flood")
    assert incident.flood_pct > 0  # e02's release floods the alarm system for a while
    assert _last(flood) == pytest.approx(incident.flood_pct)
    sliding, _, _ = r.panel("sliding 10 minutes", "A")
    assert max(sliding.column("max")) > 0
    flag, _, _ = r.panel("sliding 10 minutes", "B")
    assert set(flag.column("max")) <= {0, 10}
    actors, _, _ = r.panel("Top bad actors")
    rows = actors.rows()
    assert sum(row["annunciations"] for row in rows) == incident.annunciations
    assert any(row["alert"] == "ToxicGasLevel2" and row["tag"] == "GT-1101" for row in rows)
    mix, _, target = r.panel("Priority mix")
    named = mix.by_name(target["alias"])
    assert sum(s["values"][0][1] for s in named.values()) == incident.annunciations
    assert "critical" in named and "high" in named
    mean, _, _ = r.panel("Mean time to acknowledge")
    median, _, _ = r.panel("Median time to acknowledge")
    assert _last(mean) == _last(median) == ACK_DELAY_MS / 1000
    by_priority, _, target = r.panel("Time to acknowledge by priority")
    assert set(by_priority.by_name(target["alias"])) == {incident.acked_priority}
    assert incident.chattering == [f"ToxicGasLevel1|{E01}|{CHATTERER}"]
    chatter_now, _, _ = r.panel("Chattering alarms (last 10 min)")
    assert _last(chatter_now) == len(incident.chattering)  # it chattered 6 to 8 minutes ago
    chatter_ts, _, _ = r.panel("Chattering alarms over time")
    assert max(chatter_ts.column("max")) == len(incident.chattering)
    standing, _, _ = r.panel("Standing alarms (> 24 h)")
    assert _last(standing) == 0
    standing_ts, _, _ = r.panel("长期报警数 Standing alarms")
    assert set(standing_ts.column("max")) == {0}
    shown, _, _ = r.panel("Alarms shown")
    assert _last(shown) > 0
    _closed_loop(r, incident)
    _every_target_answers(r)


def test_alarm_performance_shows_the_closed_loop(incident: Incident) -> None:
    r = _runner(incident, "safety-hub-alarm-performance")
    _closed_loop(r, incident)


def _closed_loop(r: Runner, incident: Incident) -> None:
    """Disposal rate, time to dispose (median, p90), overdue count, false alarms per detector."""
    assert len(incident.times_to_dispose_s) == len(DISPOSALS)
    rate, _, _ = r.panel("Disposal rate")
    assert _last(rate) == pytest.approx(100 * len(DISPOSALS) / incident.disposal_needed)
    times = sorted(incident.times_to_dispose_s)
    median, _, _ = r.panel("Median time to dispose")
    assert _last(median) == pytest.approx((times[0] + times[1]) / 2)
    p90, _, _ = r.panel("90th percentile time to dispose")
    assert _last(p90) == pytest.approx(times[-1])  # nearest rank of two
    overdue, _, _ = r.panel("Overdue red/orange warnings")
    assert _last(overdue) == incident.overdue_now
    false_alarms, _, _ = r.panel("False alarms per detector")
    assert [
        (row["enterprise"], row["tag"], row["false_alarms"]) for row in false_alarms.rows()
    ] == [(E01, CHATTERER, 1)]


def test_data_quality_shows_stale_rejected_and_spool(incident: Incident) -> None:
    """e05's tags go stale after its gateway left; the unknown tag and bad reading are counted."""
    r = _runner(incident, "safety-hub-data-quality")
    stale, _, target = r.panel("Stale tags by enterprise")
    named = stale.by_name(target["alias"])
    e05_tags = sum(1 for t in incident.plant.tags_of(E05) if t.in_service)
    assert named[E05]["values"][-1][1] == e05_tags
    assert named[E01]["values"][-1][1] == 0
    now, _, _ = r.panel("Stale tags now")
    active = {(row["enterprise"], row["tag"]) for row in now.rows() if row["active"]}
    assert active == incident.stale_now and len(active) >= e05_tags
    reasons, _, target = r.panel("Rejected readings by reason")
    named = reasons.by_name(target["alias"])
    assert set(named) == {"unknown_tag"}
    assert sum(v[1] for v in named["unknown_tag"]["values"] if v[1]) == 1
    table, _, _ = r.panel("Rejected readings by enterprise and reason")
    assert [(row["enterprise"], row["reason"], row["readings"]) for row in table.rows()] == [
        (E01, "unknown_tag", 1)
    ]
    accepted, _, target = r.panel("Readings accepted per enterprise")
    assert set(accepted.by_name(target["alias"])) == set(incident.plant.enterprises)

    # E01 alone speaks contract v1.1: its gas and SIS readings on its critical topic, and once
    # a level reading misplaced there
    def sums(title: str, ref: str) -> dict[str, float]:
        answer, _, target = r.panel(title, ref)
        named = answer.by_name(target["alias"])
        return {k: sum(v[1] for v in s["values"] if v[1]) for k, s in named.items()}

    critical = sums("Messages on the critical topic", "A")
    assert critical[E01] > 0 and all(v == 0 for k, v in critical.items() if k != E01), critical
    misplaced = sums("Messages on the critical topic", "B")
    assert {k: v for k, v in misplaced.items() if v} == {f"{E01} misplaced readings": 1}
    bad, _, target = r.panel("bad or uncertain quality")
    assert {
        k: sum(v[1] for v in s["values"] if v[1]) for k, s in bad.by_name(target["alias"]).items()
    } == {E01: 1}
    depth, _, _ = r.panel("Spool depth")
    assert depth.column("max") and all(v >= 0 for v in depth.column("max") if v is not None)
    age, _, _ = r.panel("Age of the oldest spooled batch")
    assert all(not math.isnan(v) for v in age.column("max") if v is not None)
    dead, _, _ = r.panel("Dead letters")
    assert _last(dead) == 0
    # No broker went away in the incident: no alarm event ever waited, every point says so.
    waiting, _, _ = r.panel("Alarm events waiting for the broker")
    assert waiting.column("max") and set(waiting.column("max")) - {None} == {0}
    waited, _, _ = r.panel("Age of the oldest waiting alarm event")
    assert waited.column("max") and set(waited.column("max")) - {None} == {0.0}
    _every_target_answers(r)


def test_interval_is_what_grafana_would_use() -> None:
    """30 minutes over 1000 points rounds to 2 s; the datasource's 10 s floor wins."""
    assert grafana_interval_ms(0, 30 * 60_000) == MIN_INTERVAL_MS
    assert grafana_interval_ms(0, 24 * 3_600_000) == 60_000
    assert (
        interpolate("/^${tag:regex}$/", {"tag": ["UZ-1101.BP", "a/b"]}, {"tag": False})
        == r"/^(UZ-1101\.BP|a\/b)$/"
    )
    assert interpolate("/^${hs:regex}$/", {"hs": ["HS (1)+"]}, {"hs": False}) == r"/^HS \(1\)\+$/"
    assert interpolate("/^$hs$/", {"hs": ["HS (1)+"]}, {"hs": False}) == "/^HS (1)+$/"
    assert Path(__file__).name.startswith("test_dashboards")


def test_scenario_replay_feeds_the_hazard_source_board(
    influxdb1: InfluxDB1Process, incident: Incident
) -> None:
    """The shipped scenario `chlorine_tank_leak` replayed (safety_hub.scenarios) into InfluxDB:
    the board shows its detector's peak and exactly its alarms. Replay writes readings and alarm
    events only, so the panels fed by the hub statistics are not part of this check."""
    from safety_hub.runtime.replay import replay
    from safety_hub.scenarios import load_scenario
    from simulators.world import readings_of

    scenario = load_scenario(
        Path(__file__).resolve().parents[2] / "scenarios" / "chlorine_tank_leak.yaml"
    )
    db = "dashboards_scenario"
    influxdb1.create_database(db)
    try:
        result = replay(scenario, on_lines=lambda lines: influxdb1.write(db, lines))
        assert result.passed, result.failures
        peak = max(r.value for _, r in readings_of(scenario) if r.tag == "GT-1101")
        hs_annunciations = [
            row for row in result.timeline if row.annunciated and row.hazard_source == HS
        ]
        assert hs_annunciations
        source = Incident(
            plant=incident.plant,
            boards=incident.boards,
            db=db,
            influx=influxdb1,
            start_ms=scenario.start_ms,
            end_ms=scenario.start_ms + scenario.duration_ms,
            annunciations=sum(row.annunciated for row in result.timeline),
            annunciations_hs=len(hs_annunciations),
            acked_priority="",
        )
        r = _runner(source, "safety-hub-hazard-source", enterprise=[E01], hazard_source=[HS])
        gas, _, target = r.panel("Gas concentration")
        named = gas.by_name(target["alias"])
        assert max(v[1] for v in named[f"{E01}/GT-1101"]["values"] if v[1] is not None) == peak
        count, _, _ = r.panel("Annunciations in range")
        assert count.column("count") == [len(hs_annunciations)]
        journal, _, _ = r.panel("Alarm journal")
        acks = [row for row in journal.rows() if row["action"] == "ack"]
        assert len(acks) == sum(row.action == "ack" for row in result.timeline)
        ann = next(a for a in r.board["annotations"]["list"] if not a.get("builtIn"))
        assert len(r.run(ann["query"]).rows()) == len(hs_annunciations)
        perf = _runner(source, "safety-hub-alarm-performance")
        per10, _, _ = perf.panel("Alarms per 10 min")
        assert sum(per10.column("count")) == source.annunciations
        mix, _, target = perf.panel("Priority mix")
        assert "critical" in mix.by_name(target["alias"])  # the 2oo3-confirmed leak
    finally:
        influxdb1.drop_database(db)


def test_codes_with_regex_characters_match_only_themselves(
    influxdb1: InfluxDB1Process, incident: Incident
) -> None:
    """Hazard source and tag codes may hold any printable text (docs/registry.md): a code like
    `HS (east)+1/2` selected in the variables finds its own series and no other."""
    from safety_hub.ingest.worker import build_prefixes, encode_lines
    from tests.unit.fakes import FakeTag

    odd, plain = "HS (east)+1/2", "HS  east 1"
    tags = {
        ("e9", "GT 1.1"): FakeTag("p", "e9", odd, "U 1", "EQ,1", "GT 1.1", "toxic_gas"),
        ("e9", "GT 1x1"): FakeTag("p", "e9", plain, "U 1", "EQ,1", "GT 1x1", "toxic_gas"),
    }
    lines = encode_lines(
        [("e9", "GT 1.1", T0, 0.7, "good"), ("e9", "GT 1x1", T0, 0.2, "good")],
        build_prefixes(tags),
    )
    db = "dashboards_odd_codes"
    influxdb1.create_database(db)
    try:
        influxdb1.write(db, lines)
        source = Incident(
            plant=incident.plant,
            boards=incident.boards,
            db=db,
            influx=influxdb1,
            start_ms=T0 - 60_000,
            end_ms=T0 + 60_000,
            annunciations=0,
            annunciations_hs=0,
            acked_priority="",
        )
        r = _runner(source, "safety-hub-hazard-source", enterprise=["e9"], hazard_source=[odd])
        assert r.values["tag"] == ["GT 1.1"]
        gas, _, target = r.panel("Gas concentration")
        assert set(gas.by_name(target["alias"])) == {"e9/GT 1.1"}
    finally:
        influxdb1.drop_database(db)
