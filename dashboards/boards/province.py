"""Province: the parks a province-mode hub hears from (docs/province.md, "InfluxDB"): each park's
worst open tier, its open warnings by tier over time, its link, and its latest readings."""

from __future__ import annotations

from dashboards.boards.common import (
    INTERVAL,
    TAGS,
    TIER_MAPPINGS,
    TIER_THRESHOLDS,
    TIME_FILTER,
    stat,
    table,
    timeseries,
)
from dashboards.influxql import (
    PROVINCE_PARK_STATS,
    PROVINCE_READING,
    PROVINCE_REFUSALS,
    PROVINCE_STATS,
    ident,
    var_match,
)
from dashboards.model import (
    JSON,
    Dashboard,
    Override,
    Panel,
    QueryVariable,
    Row,
    Step,
    Target,
    thresholds,
)
from safety_hub.registry import Plant
from safety_hub.rules import RulePack
from safety_hub.uplink.province_points import TIERS

UID = "safety-hub-province"
PARK = var_match("park", "park")
READINGS_WHERE = " AND ".join(
    [PARK, var_match("enterprise", "enterprise"), var_match("tag", "tag"), TIME_FILTER]
)
TIER_STEPS = [Step("green"), Step("blue", 1), Step("yellow", 2), Step("orange", 3), Step("red", 4)]
LINK_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "1": {"text": "在线 up", "color": "green", "index": 0},
            "0": {"text": "中断 stale", "color": "red", "index": 1},
        },
    }
]
STALE_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "在线 up", "color": "green", "index": 0},
            "1": {"text": "中断 stale", "color": "red", "index": 1},
        },
    }
]


def variables() -> list[QueryVariable]:
    return [
        QueryVariable(
            "park",
            "园区 Park",
            f"SHOW TAG VALUES FROM {ident(PROVINCE_PARK_STATS)} WITH KEY = {ident('park')}",
        ),
        QueryVariable(
            "enterprise",
            "企业 Enterprise",
            f"SHOW TAG VALUES FROM {ident(PROVINCE_READING)} WITH KEY = {ident('enterprise')} "
            f"WHERE {PARK}",
        ),
        QueryVariable(
            "tag",
            "位号 Tag",
            f"SHOW TAG VALUES FROM {ident(PROVINCE_READING)} WITH KEY = {ident('tag')} "
            f"WHERE {PARK} AND {var_match('enterprise', 'enterprise')}",
        ),
    ]


def _per_park(field: str, aggregate: str = "last", fill: str = "none") -> str:
    return (
        f"SELECT {aggregate}({ident(field)}) FROM {ident(PROVINCE_PARK_STATS)} "
        f"WHERE {PARK} AND {TIME_FILTER} "
        f"GROUP BY time({INTERVAL}), {ident('park')} fill({fill})"
    )


def _of_latest_per_park(aggregate: str, field: str) -> str:
    """``aggregate`` over each chosen park's latest ``field`` in the range."""
    return (
        f"SELECT {aggregate}({ident('v')}) FROM (SELECT last({ident(field)}) AS {ident('v')} "
        f"FROM {ident(PROVINCE_PARK_STATS)} WHERE {PARK} AND {TIME_FILTER} "
        f"GROUP BY {ident('park')})"
    )


def park_table() -> Panel:
    """One row per park: its worst open tier colour-coded, its counts, last record and link."""
    columns = [
        ("worst_tier", "tier"),
        ("open_warnings", "open_warnings"),
        ("enterprises", "enterprises"),
        ("hazard_sources", "hazard_sources"),
        ("tags", "tags"),
        ("last_record_age_s", "last_record_age_s"),
        ("stale", "link"),
    ]
    select = ", ".join(f"last({ident(f)}) AS {ident(a)}" for f, a in columns)
    return table(
        "园区预警等级 Parks by worst open tier",
        [
            Target(
                f"SELECT {select} FROM {ident(PROVINCE_PARK_STATS)} "
                f"WHERE {PARK} AND {TIME_FILTER} GROUP BY {ident('park')}",
                result_format="table",
            )
        ],
        width=24,
        height=9,
        description="Per park: the worst open warning tier (red, orange, yellow, blue), "
        "open warnings, enterprises, hazard sources and tags it sent, the age of its last "
        "record (s) and its link.",
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
            ),
            Override(
                "link",
                {
                    "mappings": STALE_MAPPINGS,
                    "custom.cellOptions": {"type": "color-text"},
                },
            ),
            Override("last_record_age_s", {"unit": "s"}),
        ],
    )


def park_panels() -> list[Panel | Row]:
    return [
        Row("园区 Parks"),
        stat(
            "园区数 Parks",
            f"SELECT last({ident('parks')}) FROM {ident(PROVINCE_STATS)} WHERE {TIME_FILTER}",
            description="Parks in the province's view (at most SAFETY_HUB_PROVINCE_MAX_PARKS).",
        ),
        stat(
            "全省最高预警等级 Worst tier in the province",
            _of_latest_per_park("max", "worst_tier"),
            steps=TIER_STEPS,
            mappings=TIER_MAPPINGS,
            description="The worst open warning tier of the chosen parks.",
        ),
        stat(
            "链路中断园区 Parks with a stale link",
            _of_latest_per_park("sum", "stale"),
            steps=[Step("green"), Step("red", 1)],
            description="Parks with no record for SAFETY_HUB_PROVINCE_LINK_STALE_S.",
        ),
        stat(
            "订阅 Subscribed to the parks",
            f"SELECT last({ident('connected')}) FROM {ident(PROVINCE_STATS)} WHERE {TIME_FILTER}",
            steps=[Step("red"), Step("green", 1)],
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "1": {"text": "已订阅 subscribed", "color": "green", "index": 0},
                        "0": {"text": "未订阅 not subscribed", "color": "red", "index": 1},
                    },
                }
            ],
            description="1 while the province hub is subscribed to the parks' records on its "
            "broker.",
        ),
        park_table(),
    ]


def warning_panels() -> list[Panel | Row]:
    select = ", ".join(f"last({ident('warnings_' + t)}) AS {ident(t)}" for t in TIERS)
    return [
        Row("预警 Warnings"),
        timeseries(
            "各园区分级预警 Open warnings by tier, per park",
            [
                Target(
                    f"SELECT {select} FROM {ident(PROVINCE_PARK_STATS)} "
                    f"WHERE {PARK} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('park')} fill(none)",
                    alias="$tag_park $col",
                )
            ],
            stack=True,
            description="Open warnings (not back to normal, not disposed) of each park by tier.",
            overrides=[
                Override(f".* {t}$", {"color": {"mode": "fixed", "fixedColor": t}}, "byRegexp")
                for t in TIERS
            ],
        ),
        Panel(
            "state-timeline",
            "园区预警等级时间线 Worst tier per park over time",
            [Target(_per_park("worst_tier", "max", "previous"), alias="$tag_park")],
            height=8,
            defaults={"mappings": TIER_MAPPINGS, "thresholds": TIER_THRESHOLDS},
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
    ]


def link_panels() -> list[Panel | Row]:
    return [
        Row("链路 Link health"),
        timeseries(
            "最近记录时长 Age of the last record, per park",
            [Target(_per_park("last_record_age_s", "max"), alias="$tag_park")],
            unit="s",
            width=8,
            description="Seconds since the park's last record arrived; past "
            "SAFETY_HUB_PROVINCE_LINK_STALE_S its link is stale.",
        ),
        Panel(
            "state-timeline",
            "链路状态 Link per park",
            [Target(_per_park("link_up", "min", "previous"), alias="$tag_park")],
            width=8,
            defaults={
                "mappings": LINK_MAPPINGS,
                "thresholds": thresholds([Step("red"), Step("green", 1)]),
            },
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
        timeseries(
            "接收记录 Records taken, per park",
            [Target(_per_park("records", "sum"), alias="$tag_park")],
            bars=True,
            stack=True,
            width=8,
            description="Records taken (new dataIds) per interval.",
        ),
        timeseries(
            "重复记录 Duplicates, per park",
            [Target(_per_park("duplicates", "sum"), alias="$tag_park")],
            bars=True,
            stack=True,
            description="Records dropped as seen before (same dataId): re-sends after an "
            "outage are normal.",
        ),
        timeseries(
            "拒收 Refused, by reason",
            [
                Target(
                    f"SELECT sum({ident('records')}) FROM {ident(PROVINCE_REFUSALS)} "
                    f"WHERE {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('stage')}, {ident('reason')} fill(none)",
                    alias="$tag_stage: $tag_reason",
                )
            ],
            bars=True,
            stack=True,
            description="record: refused and not taken (oversized, malformed, unknown_kind, "
            "too_many_parks, too_many_*); chart: taken, its reading not written to InfluxDB "
            "(too_many_series, bad_value, bad_code).",
        ),
    ]


def reading_panels() -> list[Panel | Row]:
    return [
        Row("读数 Readings"),
        timeseries(
            "园区读数 Readings",
            [
                Target(
                    f"SELECT max({ident('value')}) FROM {ident(PROVINCE_READING)} "
                    f"WHERE {READINGS_WHERE} GROUP BY time({INTERVAL}), {ident('park')}, "
                    f"{ident('enterprise')}, {ident('tag')} fill(none)",
                    alias="$tag_park/$tag_enterprise/$tag_tag",
                )
            ],
            width=14,
            height=10,
            description="The readings the parks send up (the highest of each interval), at "
            "their source time, of the chosen parks, enterprises and tags.",
        ),
        table(
            "最新读数 Latest readings",
            [
                Target(
                    f"SELECT last({ident('value')}) AS {ident('value')}, "
                    f"last({ident('eu')}) AS {ident('eu')}, "
                    f"last({ident('quality')}) AS {ident('quality')} "
                    f"FROM {ident(PROVINCE_READING)} WHERE {READINGS_WHERE} "
                    f"GROUP BY {ident('park')}, {ident('enterprise')}, "
                    f"{ident('hazard_source')}, {ident('tag')}",
                    result_format="table",
                )
            ],
            width=10,
            height=10,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
        ),
    ]


def build(plant: Plant, pack: RulePack) -> Dashboard:
    del plant, pack  # the province's parks come from their records, not from a registry
    return Dashboard(
        uid=UID,
        title="全省园区 Province parks",
        description="A province-mode hub's parks: worst open warning tier, warnings by tier, "
        "link health and the parks' readings (docs/province.md).",
        tags=[*TAGS, "province"],
        items=[*park_panels(), *warning_panels(), *link_panels(), *reading_panels()],
        variables=variables(),
        time_from="now-6h",
        refresh="30s",
    )
