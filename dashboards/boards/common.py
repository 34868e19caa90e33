"""Pieces the boards share: variables, value mappings, panel shapes, tag overrides."""

from __future__ import annotations

from collections.abc import Iterable

from dashboards.influxql import READING, ident, one_of, var_match
from dashboards.model import JSON, Override, Panel, QueryVariable, Step, Target, thresholds
from dashboards.setpoints import (
    Setpoint,
    display_name,
    grafana_unit,
    series_name,
    threshold_steps,
)
from safety_hub.registry import TagInfo

TAGS = ["safety-hub"]
TIME_FILTER = "$timeFilter"
INTERVAL = "$__interval"

TIER_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "正常 normal", "color": "green", "index": 0},
            "1": {"text": "蓝 blue (low)", "color": "blue", "index": 1},
            "2": {"text": "黄 yellow (medium)", "color": "yellow", "index": 2},
            "3": {"text": "橙 orange (high)", "color": "orange", "index": 3},
            "4": {"text": "红 red (critical)", "color": "red", "index": 4},
        },
    }
]
TIER_THRESHOLDS = thresholds(
    [
        Step("green"),
        Step("blue", 1),
        Step("yellow", 2),
        Step("orange", 3),
        Step("red", 4),
    ]
)


def enterprise_variable(*, multi: bool = True) -> QueryVariable:
    return QueryVariable(
        "enterprise",
        "企业 Enterprise",
        f"SHOW TAG VALUES FROM {ident(READING)} WITH KEY = {ident('enterprise')}",
        multi=multi,
        include_all=multi,
    )


def hazard_source_variable() -> QueryVariable:
    return QueryVariable(
        "hazard_source",
        "重大危险源 Hazard source",
        f"SHOW TAG VALUES FROM {ident(READING)} WITH KEY = {ident('hazard_source')} "
        f"WHERE {var_match('enterprise', 'enterprise')}",
        multi=False,
        include_all=False,
    )


def tag_variable() -> QueryVariable:
    return QueryVariable(
        "tag",
        "位号 Tag",
        f"SHOW TAG VALUES FROM {ident(READING)} WITH KEY = {ident('tag')} "
        f"WHERE {var_match('enterprise', 'enterprise')} "
        f"AND {var_match('hazard_source', 'hazard_source')}",
    )


def stat(
    title: str,
    query: str,
    *,
    width: int = 6,
    height: int = 5,
    unit: str | None = None,
    steps: list[Step] | None = None,
    description: str = "",
    mappings: list[JSON] | None = None,
) -> Panel:
    defaults: JSON = {"thresholds": thresholds(steps or [Step("green")])}
    if mappings:
        defaults["mappings"] = mappings
    return Panel(
        "stat",
        title,
        [Target(query)],
        width=width,
        height=height,
        unit=unit,
        description=description,
        defaults=defaults,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
    )


def timeseries(
    title: str,
    targets: list[Target],
    *,
    width: int = 12,
    height: int = 8,
    unit: str | None = None,
    steps: list[Step] | None = None,
    threshold_style: str = "off",
    bars: bool = False,
    stack: bool = False,
    description: str = "",
    overrides: list[Override] | None = None,
    interval: str | None = None,
) -> Panel:
    custom: JSON = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "thresholdsStyle": {"mode": threshold_style},
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    return Panel(
        "timeseries",
        title,
        targets,
        width=width,
        height=height,
        unit=unit,
        description=description,
        defaults={"thresholds": thresholds(steps or [Step("green")])},
        custom=custom,
        overrides=overrides or [],
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["max", "last"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        interval=interval,
    )


def table(
    title: str,
    targets: list[Target],
    *,
    width: int = 12,
    height: int = 8,
    description: str = "",
    transformations: list[JSON] | None = None,
    mappings: list[JSON] | None = None,
    overrides: list[Override] | None = None,
    steps: list[Step] | None = None,
) -> Panel:
    defaults: JSON = {"thresholds": thresholds(steps or [Step("green")])}
    if mappings:
        defaults["mappings"] = mappings
    return Panel(
        "table",
        title,
        targets,
        width=width,
        height=height,
        description=description,
        defaults=defaults,
        custom={"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
        overrides=overrides or [],
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        transformations=transformations or [],
    )


def tag_overrides(
    tags: Iterable[TagInfo], setpoints: dict[tuple[str, str], list[Setpoint]]
) -> list[Override]:
    """Per tag: its display name, unit and the threshold lines of its alarms."""
    out: list[Override] = []
    for tag in tags:
        props: JSON = {"displayName": display_name(tag), "unit": grafana_unit(tag.eu)}
        mine = setpoints.get((tag.enterprise, tag.tag), [])
        if mine:
            props["thresholds"] = thresholds(threshold_steps(mine))
            props["custom.thresholdsStyle"] = {"mode": "dashed"}
        out.append(Override(series_name(tag), props))
    return out


def reading_series(kinds: Iterable[str], aggregate: str, *, by_tag_var: bool = True) -> str:
    """The readings of the chosen hazard source and tags of some kinds, one series per tag."""
    where = [
        var_match("enterprise", "enterprise"),
        var_match("hazard_source", "hazard_source"),
        one_of("kind", kinds),
    ]
    if by_tag_var:
        where.append(var_match("tag", "tag"))
    return (
        f"SELECT {aggregate}({ident('value')}) FROM {ident(READING)} "
        f"WHERE {' AND '.join(where)} AND {TIME_FILTER} "
        f"GROUP BY time({INTERVAL}), {ident('enterprise')}, {ident('tag')} fill(none)"
    )


TAG_ALIAS = "$tag_enterprise/$tag_tag"
