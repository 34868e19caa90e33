"""Hazard source detail: gas with the level-1/level-2 lines, tank level, pressure and temperature
with their H/HH lines, the SIS status timeline and active bypasses, alarm annotations."""

from __future__ import annotations

from dashboards.boards.common import (
    INTERVAL,
    TAG_ALIAS,
    TAGS,
    TIER_MAPPINGS,
    TIER_THRESHOLDS,
    TIME_FILTER,
    enterprise_variable,
    hazard_source_variable,
    reading_series,
    stat,
    table,
    tag_overrides,
    tag_variable,
    timeseries,
)
from dashboards.influxql import (
    ALARM_EVENT,
    HAZARD_SOURCE_STATS,
    READING,
    ident,
    one_of,
    var_match,
)
from dashboards.model import JSON, Annotation, Dashboard, Override, Panel, Row, Step, Target
from dashboards.setpoints import display_name, series_name, tag_setpoints
from safety_hub.registry import Plant
from safety_hub.rules import RulePack

UID = "safety-hub-hazard-source"
GAS_KINDS = ("combustible_gas", "toxic_gas", "open_path_gas", "oxygen")
SIS_KINDS = ("sis_trip", "sis_bypass", "sis_fault")
HS = var_match("hazard_source", "hazard_source")
ENT = var_match("enterprise", "enterprise")

SIS_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "正常 normal", "color": "green", "index": 0},
            "1": {"text": "动作/旁路/故障 active", "color": "red", "index": 1},
        },
    }
]


def _process_panel(
    title: str, kinds: tuple[str, ...], plant: Plant, pack: RulePack, **kw: object
) -> Panel:
    setpoints = tag_setpoints(plant, pack)
    tags = [t for t in plant.tags.values() if t.kind in kinds and t.hazard_source]
    aggregate = str(kw.pop("aggregate", "mean"))
    return timeseries(
        title,
        [Target(reading_series(kinds, aggregate), alias=TAG_ALIAS)],
        overrides=tag_overrides(tags, setpoints),
        threshold_style="dashed",
        **kw,  # type: ignore[arg-type]
    )


def build(plant: Plant, pack: RulePack) -> Dashboard:
    sis_tags = [t for t in plant.tags.values() if t.kind in SIS_KINDS and t.hazard_source]
    alarm_tags = f"GROUP BY {ident('alert')}, {ident('tag')}, {ident('zone')}, {ident('priority')}"
    items: list[Panel | Row] = [
        Row("$hazard_source"),
        stat(
            "报警等级 Worst alarm tier",
            f"SELECT last({ident('tier')}) FROM {ident(HAZARD_SOURCE_STATS)} "
            f"WHERE {HS} AND {TIME_FILTER}",
            mappings=TIER_MAPPINGS,
            steps=[Step(s["color"], s["value"]) for s in TIER_THRESHOLDS["steps"]],
            width=8,
        ),
        stat(
            "当前报警 Alarms shown",
            f"SELECT last({ident('alarms_shown')}) FROM {ident(HAZARD_SOURCE_STATS)} "
            f"WHERE {HS} AND {TIME_FILTER}",
            steps=[Step("green"), Step("orange", 1)],
            width=8,
        ),
        stat(
            "报警次数 Annunciations in range",
            f"SELECT count({ident('alarm_id')}) FROM {ident(ALARM_EVENT)} "
            f"WHERE {HS} AND {ident('annunciated')} = true AND {TIME_FILTER}",
            steps=[Step("green"), Step("orange", 1)],
            width=8,
        ),
        _process_panel(
            "气体浓度 Gas concentration (level-1 / level-2 lines)",
            GAS_KINDS,
            plant,
            pack,
            aggregate="max",
            width=24,
            height=10,
            description="Highest reading per interval of every gas detector of the hazard "
            "source; dashed lines are the level-1 / level-2 setpoints (GB/T 50493) the alarms "
            "use, in the colour of their alarm's tier.",
        ),
        _process_panel(
            "储罐液位 Tank level (L / H / HH lines)",
            ("level",),
            plant,
            pack,
            aggregate="max",
            width=8,
        ),
        _process_panel(
            "压力 Pressure (H / HH lines)", ("pressure",), plant, pack, aggregate="max", width=8
        ),
        _process_panel(
            "温度 Temperature (H / HH lines)",
            ("temperature",),
            plant,
            pack,
            aggregate="max",
            width=8,
        ),
        Row("安全仪表系统 Safety instrumented system"),
        Panel(
            "state-timeline",
            "SIS 状态 SIS trips, bypasses and faults",
            [
                Target(
                    f"SELECT last({ident('value')}) FROM {ident(READING)} "
                    f"WHERE {ENT} AND {HS} AND {one_of('kind', SIS_KINDS)} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('enterprise')}, {ident('tag')} "
                    "fill(previous)",
                    alias=TAG_ALIAS,
                )
            ],
            width=16,
            height=10,
            defaults={
                "mappings": SIS_MAPPINGS,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 0.5}],
                },
            },
            overrides=[
                Override(series_name(t), {"displayName": display_name(t)}) for t in sis_tags
            ],
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
        table(
            "旁路中 Active bypasses",
            [
                Target(
                    f"SELECT last({ident('value')}) AS {ident('bypass')} FROM {ident(READING)} "
                    f"WHERE {ENT} AND {HS} AND {ident('kind')} = 'sis_bypass' "
                    f"AND {TIME_FILTER} GROUP BY {ident('tag')}",
                    result_format="table",
                )
            ],
            width=8,
            height=10,
            description="SIS bypasses whose latest reading in the range is on (1).",
            transformations=[
                {
                    "id": "filterByValue",
                    "options": {
                        "type": "include",
                        "match": "any",
                        "filters": [
                            {
                                "fieldName": "bypass",
                                "config": {"id": "greaterOrEqual", "options": {"value": 0.5}},
                            }
                        ],
                    },
                }
            ],
        ),
        Row("报警事件 Alarm events"),
        table(
            "报警记录 Alarm journal of the hazard source",
            [
                Target(
                    f"SELECT {ident('alarm_id')}, {ident('state')}, {ident('from_state')}, "
                    f"{ident('value')}, {ident('user')} FROM {ident(ALARM_EVENT)} "
                    f"WHERE {HS} AND {TIME_FILTER} {alarm_tags}, {ident('action')} "
                    "ORDER BY time DESC LIMIT 500",
                    result_format="table",
                )
            ],
            width=24,
            height=10,
            transformations=[
                {"id": "sortBy", "options": {"sort": [{"field": "Time", "desc": True}]}}
            ],
        ),
    ]
    return Dashboard(
        uid=UID,
        title="重大危险源详情 Hazard source detail",
        description="One major hazard source: gas, tank level, pressure, temperature with the "
        "alarm setpoints, SIS state, alarm events.",
        tags=[*TAGS, "hazard-source"],
        items=items,
        variables=[enterprise_variable(multi=False), hazard_source_variable(), tag_variable()],
        annotations=[
            Annotation(
                "报警 Alarms",
                f"SELECT {ident('state')}, {ident('value')} FROM {ident(ALARM_EVENT)} "
                f"WHERE {HS} AND {ident('annunciated')} = true AND {TIME_FILTER} {alarm_tags}",
                text_column="state",
                tags_column="alert,tag,zone,priority",
            )
        ],
        time_from="now-3h",
        refresh="10s",
    )
