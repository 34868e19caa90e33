"""应急管理大脑 park overview: hazard sources by worst tier, active alarms by enterprise,
the alarm rate against the ISA-18.2 targets, enterprise online rate."""

from __future__ import annotations

from dashboards.boards.common import (
    INTERVAL,
    TAGS,
    TIER_MAPPINGS,
    TIER_THRESHOLDS,
    TIME_FILTER,
    enterprise_variable,
    stat,
    table,
    timeseries,
)
from dashboards.influxql import (
    ALARM_EVENT,
    ENTERPRISE_STATS,
    HAZARD_SOURCE_STATS,
    HUB_STATS,
    ident,
    var_match,
)
from dashboards.model import Dashboard, Override, Panel, Row, Step, Target
from safety_hub.registry import Plant
from safety_hub.rules import RulePack

UID = "safety-hub-park-overview"
ENT = var_match("enterprise", "enterprise")
RATE_STEPS = [Step("green"), Step("yellow", 1), Step("orange", 2), Step("red", 10)]
"""ISA-18.2 / EEMUA 191 per 10 min: ≈1 acceptable, ≈2 maximum manageable, >10 flood"""


def alarm_rate_query() -> str:
    return (
        f"SELECT count({ident('alarm_id')}) FROM {ident(ALARM_EVENT)} "
        f"WHERE {ident('annunciated')} = true AND {ENT} AND {TIME_FILTER} "
        f"GROUP BY time(10m) fill(0)"
    )


def build(plant: Plant, pack: RulePack) -> Dashboard:
    hs_names = [
        Override(code, {"displayName": f"{code} {hs.name}"})
        for code, hs in plant.hazard_sources.items()
    ]
    items: list[Panel | Row] = [
        Row(f"{plant.park_name} 应急管理大脑 · park overview"),
        stat(
            "当前报警 Alarms shown",
            f"SELECT last({ident('alarms_shown')}) FROM {ident(HUB_STATS)} WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("orange", 1)],
            description="Alarms an operator sees now: unacknowledged, acknowledged, "
            "returned-to-normal unacknowledged and latched (hidden ones not counted).",
        ),
        stat(
            "未确认 Unacknowledged",
            f"SELECT last({ident('alarms_unacknowledged')}) FROM {ident(HUB_STATS)} "
            f"WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("red", 1)],
        ),
        stat(
            "企业在线率 Enterprise online rate",
            f"SELECT mean({ident('online')}) * 100 FROM {ident(ENTERPRISE_STATS)} "
            f"WHERE {ENT} AND {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
            unit="percent",
            steps=[Step("red"), Step("orange", 90), Step("green", 100)],
            description="Share of the chosen enterprises whose gateway reports online "
            "(last-will status), averaged per interval.",
        ),
        stat(
            "近10分钟报警 Alarms in the last 10 min",
            f"SELECT last({ident('annunciations_10min')}) FROM {ident(HUB_STATS)} "
            f"WHERE {TIME_FILTER}",
            steps=RATE_STEPS,
            description="Annunciations in the sliding last 10 minutes. ISA-18.2: about 1 "
            "acceptable, 2 the most manageable, more than 10 is a flood.",
        ),
        stat(
            "超时未处置 Overdue red/orange warnings",
            f"SELECT last({ident('alarms_disposal_overdue')}) FROM {ident(HUB_STATS)} "
            f"WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("red", 1)],
            description="Red and orange warnings past their disposal time limit (red 30 min, "
            "orange 2 h by default) without a disposal record: the console's overdue list.",
        ),
        table(
            "重大危险源报警等级 Hazard sources by worst alarm tier",
            [
                Target(
                    f"SELECT last({ident('tier')}) AS {ident('tier')}, "
                    f"last({ident('alarms_shown')}) AS {ident('alarms')}, "
                    f"last({ident('grade')}) AS {ident('grade')} "
                    f"FROM {ident(HAZARD_SOURCE_STATS)} WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY {ident('enterprise')}, {ident('hazard_source')}",
                    result_format="table",
                )
            ],
            height=10,
            description="Worst tier of the alarms shown per major hazard source: red "
            "critical, orange high, yellow medium, blue low.",
            transformations=[
                {"id": "sortBy", "options": {"sort": [{"field": "tier", "desc": True}]}},
                {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            ],
            overrides=[
                Override(
                    "tier",
                    {
                        "mappings": TIER_MAPPINGS,
                        "thresholds": TIER_THRESHOLDS,
                        "custom.cellOptions": {"type": "color-background"},
                    },
                )
            ],
        ),
        Panel(
            "bargauge",
            "各企业当前报警 Active alarms by enterprise",
            [
                Target(
                    f"SELECT last({ident('alarms_shown')}) FROM {ident(ENTERPRISE_STATS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} GROUP BY {ident('enterprise')}",
                    alias="$tag_enterprise",
                )
            ],
            height=10,
            defaults={
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "green", "value": None},
                        {"color": "orange", "value": 1},
                        {"color": "red", "value": 10},
                    ],
                },
                "min": 0,
            },
            overrides=[
                Override(code, {"displayName": f"{code} {e.name}"})
                for code, e in plant.enterprises.items()
            ],
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal",
                "displayMode": "gradient",
                "showUnfilled": True,
            },
        ),
        Row("报警率与在线率 Alarm rate and enterprise links"),
        timeseries(
            "每10分钟报警数 Alarm rate vs ISA-18.2 targets",
            [Target(alarm_rate_query(), alias="annunciations / 10 min")],
            bars=True,
            steps=RATE_STEPS,
            threshold_style="dashed",
            description="Annunciations per 10 minutes (fixed buckets). Lines: 1 acceptable, "
            "2 maximum manageable, 10 flood (ISA-18.2, EEMUA 191).",
        ),
        timeseries(
            "企业在线率趋势 Enterprise online rate over time",
            [
                Target(
                    f"SELECT mean({ident('online')}) * 100 FROM {ident(ENTERPRISE_STATS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="online %",
                )
            ],
            unit="percent",
            steps=[Step("red"), Step("green", 100)],
        ),
        Panel(
            "state-timeline",
            "危险源报警等级时间线 Hazard source tier over time",
            [
                Target(
                    f"SELECT max({ident('tier')}) FROM {ident(HAZARD_SOURCE_STATS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('hazard_source')} fill(previous)",
                    alias="$tag_hazard_source",
                )
            ],
            width=24,
            height=10,
            defaults={"mappings": TIER_MAPPINGS, "thresholds": TIER_THRESHOLDS},
            overrides=hs_names,
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
    ]
    return Dashboard(
        uid=UID,
        title="园区总览 Park overview",
        description=f"{plant.park_name}: hazard sources, alarms and enterprise links at a glance.",
        tags=[*TAGS, "overview"],
        items=items,
        variables=[enterprise_variable()],
        time_from="now-6h",
    )
