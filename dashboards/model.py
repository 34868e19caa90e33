"""Typed builders for the parts of Grafana's dashboard JSON model that the boards use.

Each builder renders plain JSON (``to_json``) in the shape of Grafana's documented dashboard
model (schemaVersion 39, Grafana 10/11): panels with ``gridPos``, a datasource reference and
``targets``; ``templating.list``; ``annotations.list``. Field names are Grafana's. The panel
layout is computed (``Layout``), so panels never overlap and ids are unique and stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

SCHEMA_VERSION = 39
DATASOURCE_TYPE = "influxdb"
DATASOURCE_VAR = "datasource"
DATASOURCE_REF: JSON = {"type": DATASOURCE_TYPE, "uid": "${" + DATASOURCE_VAR + "}"}
"""Every panel uses the board's ``datasource`` variable: any InfluxDB datasource fits."""
DEFAULT_DATASOURCE_UID = "safety-hub-influxdb"
"""uid of the provisioned datasource (deploy/grafana/provisioning/datasources/influxdb.yaml)"""

GRID_WIDTH = 24


@dataclass(frozen=True)
class Target:
    """One raw InfluxQL query of a panel (``rawQuery``: the text is sent as written)."""

    query: str
    ref_id: str = "A"
    alias: str | None = None
    result_format: str = "time_series"  # or "table"

    def to_json(self) -> JSON:
        out: JSON = {
            "refId": self.ref_id,
            "datasource": dict(DATASOURCE_REF),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            out["alias"] = self.alias
        return out


@dataclass(frozen=True)
class Step:
    """A threshold step: from ``value`` on (None: the base) the colour is ``color``."""

    color: str
    value: float | None = None

    def to_json(self) -> JSON:
        return {"color": self.color, "value": self.value}


def thresholds(steps: Sequence[Step]) -> JSON:
    return {"mode": "absolute", "steps": [s.to_json() for s in steps]}


@dataclass(frozen=True)
class Override:
    """Field properties for the series named ``name`` (the target's alias, rendered), or, with
    ``matcher="byRegexp"``, for every series whose name matches the regex ``name``."""

    name: str
    properties: Mapping[str, Any]
    matcher: str = "byName"

    def to_json(self) -> JSON:
        return {
            "matcher": {"id": self.matcher, "options": self.name},
            "properties": [{"id": k, "value": v} for k, v in self.properties.items()],
        }


@dataclass
class Panel:
    """A panel of any visualisation type; ``options`` and ``defaults`` are the type's own."""

    type: str
    title: str
    targets: list[Target]
    width: int = 12
    height: int = 8
    description: str = ""
    unit: str | None = None
    defaults: JSON = field(default_factory=dict)
    """``fieldConfig.defaults`` beyond the unit"""
    custom: JSON = field(default_factory=dict)
    """``fieldConfig.defaults.custom`` (the visualisation's field options)"""
    overrides: list[Override] = field(default_factory=list)
    options: JSON = field(default_factory=dict)
    transformations: list[JSON] = field(default_factory=list)
    interval: str | None = None
    """minimum interval of ``$__interval`` for this panel"""
    max_data_points: int | None = None

    def to_json(self, panel_id: int, grid: JSON) -> JSON:
        defaults = dict(self.defaults)
        if self.unit is not None:
            defaults["unit"] = self.unit
        if self.custom:
            defaults["custom"] = dict(self.custom)
        out: JSON = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "gridPos": grid,
            "datasource": dict(DATASOURCE_REF),
            "targets": [t.to_json() for t in self.targets],
            "fieldConfig": {
                "defaults": defaults,
                "overrides": [o.to_json() for o in self.overrides],
            },
            "options": dict(self.options),
        }
        if self.transformations:
            out["transformations"] = list(self.transformations)
        if self.interval is not None:
            out["interval"] = self.interval
        if self.max_data_points is not None:
            out["maxDataPoints"] = self.max_data_points
        return out


@dataclass
class Row:
    """A row header; the panels after it belong to it."""

    title: str


@dataclass(frozen=True)
class QueryVariable:
    """A template variable filled by an InfluxQL ``SHOW TAG VALUES`` query."""

    name: str
    label: str
    query: str
    multi: bool = True
    include_all: bool = True
    description: str = ""

    def to_json(self) -> JSON:
        return {
            "type": "query",
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "datasource": dict(DATASOURCE_REF),
            "query": self.query,
            "definition": self.query,
            "refresh": 1,  # on dashboard load
            "regex": "",
            "sort": 1,  # alphabetical
            "multi": self.multi,
            "includeAll": self.include_all,
            "current": {},
            "options": [],
            "hide": 0,
            "skipUrlSync": False,
        }


def datasource_variable() -> JSON:
    return {
        "type": "datasource",
        "name": DATASOURCE_VAR,
        "label": "数据源 Data source",
        "query": DATASOURCE_TYPE,
        "regex": "",
        "current": {"selected": False, "text": "InfluxDB", "value": DEFAULT_DATASOURCE_UID},
        "options": [],
        "refresh": 1,
        "multi": False,
        "includeAll": False,
        "hide": 0,
        "skipUrlSync": False,
    }


@dataclass(frozen=True)
class Annotation:
    """An InfluxQL annotation query (alarm events drawn on every time series panel)."""

    name: str
    query: str
    text_column: str
    tags_column: str
    color: str = "red"

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "datasource": dict(DATASOURCE_REF),
            "enable": True,
            "hide": False,
            "iconColor": self.color,
            "query": self.query,
            "textColumn": self.text_column,
            "tagsColumn": self.tags_column,
        }


def builtin_annotation() -> JSON:
    """Grafana's own annotations and alerts entry, which every saved dashboard carries."""
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


class Layout:
    """Places panels left to right, wrapping at 24 columns; a row starts a new line."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.line_height = 0
        self.next_id = 1
        self.panels: list[JSON] = []

    def _newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def add(self, item: Panel | Row) -> None:
        if isinstance(item, Row):
            if self.x:
                self._newline()
            self.panels.append(
                {
                    "id": self.next_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self.y},
                    "panels": [],
                }
            )
            self.next_id += 1
            self.y += 1
            return
        if item.width > GRID_WIDTH:
            raise ValueError(f"panel {item.title!r}: width {item.width} > {GRID_WIDTH}")
        if self.x + item.width > GRID_WIDTH:
            self._newline()
        grid = {"h": item.height, "w": item.width, "x": self.x, "y": self.y}
        self.panels.append(item.to_json(self.next_id, grid))
        self.next_id += 1
        self.x += item.width
        self.line_height = max(self.line_height, item.height)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    tags: list[str]
    items: list[Panel | Row]
    variables: list[QueryVariable] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    time_from: str = "now-6h"
    refresh: str = "30s"
    links: list[JSON] = field(default_factory=list)

    def to_json(self) -> JSON:
        layout = Layout()
        for item in self.items:
            layout.add(item)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,  # shared crosshair
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "links": list(self.links),
            "annotations": {
                "list": [builtin_annotation(), *(a.to_json() for a in self.annotations)]
            },
            "templating": {"list": [datasource_variable(), *(v.to_json() for v in self.variables)]},
            "panels": layout.panels,
        }
