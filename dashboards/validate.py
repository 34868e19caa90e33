"""Validation against Grafana's dashboard JSON model (schemaVersion 39, Grafana 10/11).

Written from Grafana's documented dashboard JSON model (the "JSON model" page of the Grafana
docs and the dashboard kind's schema): the required top-level fields and their types, panels
with a ``gridPos`` inside the 24-column grid that do not overlap, unique panel ids, a datasource
reference on every query panel and target, unique ``refId`` per panel, threshold steps that start
with the base step and ascend, field overrides with a matcher, and templating: unique variable
names of a known type, and every ``$variable`` a query uses defined (or one of Grafana's own).

``validate_dashboard(board)`` returns the list of problems (empty: valid), each naming the path.
"""

from __future__ import annotations

import re
from typing import Any

UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VAR_USE_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
PANEL_TYPES = frozenset(
    {
        "row",
        "timeseries",
        "stat",
        "gauge",
        "bargauge",
        "table",
        "piechart",
        "state-timeline",
        "status-history",
        "barchart",
        "text",
        "heatmap",
        "logs",
        "annolist",
        "alertlist",
    }
)
VARIABLE_TYPES = frozenset(
    {"query", "custom", "datasource", "interval", "constant", "textbox", "adhoc", "groupby"}
)
BUILTIN_VARIABLES = frozenset(
    {
        "timeFilter",
        "__timeFilter",
        "__interval",
        "__interval_ms",
        "interval",
        "__range",
        "__range_s",
        "__range_ms",
        "__rate_interval",
        "__from",
        "__to",
        "__dashboard",
        "__org",
        "__user",
        "__name",
        "__value",
        "__field",
        "__series",
        "__data",
    }
)
ALIAS_PATTERNS = re.compile(r"^(tag_\w+|m|measurement|col|\d+)$")
"""InfluxQL alias patterns ($tag_x, $m, $col, $1): not variables"""
TIMEZONES = frozenset({"", "browser", "utc"})
THRESHOLD_MODES = frozenset({"absolute", "percentage"})
GRID = 24


def _type(value: Any, kind: type | tuple[type, ...], path: str, problems: list[str]) -> bool:
    if isinstance(value, bool) and kind in (int, (int, float)):
        problems.append(f"{path}: expected {kind}, got bool")
        return False
    if not isinstance(value, kind):
        problems.append(
            f"{path}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}"
        )
        return False
    return True


def _thresholds(th: Any, path: str, problems: list[str]) -> None:
    if not _type(th, dict, path, problems):
        return
    if th.get("mode") not in THRESHOLD_MODES:
        problems.append(f"{path}.mode: {th.get('mode')!r} not one of {sorted(THRESHOLD_MODES)}")
    steps = th.get("steps")
    if not _type(steps, list, f"{path}.steps", problems) or not steps:
        problems.append(f"{path}.steps: at least the base step is needed")
        return
    if steps[0].get("value") is not None:
        problems.append(f"{path}.steps[0].value: the base step has value null")
    previous = None
    for i, step in enumerate(steps):
        if not isinstance(step.get("color"), str) or not step["color"]:
            problems.append(f"{path}.steps[{i}].color: a colour is required")
        if i == 0:
            continue
        value = step.get("value")
        if not _type(value, (int, float), f"{path}.steps[{i}].value", problems):
            continue
        if previous is not None and value < previous:
            problems.append(f"{path}.steps[{i}].value: {value} below the step before ({previous})")
        previous = value


def _datasource(ref: Any, path: str, problems: list[str], datasource_vars: set[str]) -> None:
    if not _type(ref, dict, path, problems):
        return
    if not isinstance(ref.get("type"), str) or not ref.get("type"):
        problems.append(f"{path}.type: required")
    uid = ref.get("uid")
    if not isinstance(uid, str) or not uid:
        problems.append(f"{path}.uid: required")
        return
    used = VAR_USE_RE.fullmatch(uid)
    if used:
        name = next(g for g in used.groups() if g)
        if name not in datasource_vars:
            problems.append(f"{path}.uid: {uid} is not a datasource variable of the board")


def _variables_used(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VAR_USE_RE.finditer(text)}


def _field_config(fc: Any, path: str, problems: list[str]) -> None:
    if not _type(fc, dict, path, problems):
        return
    defaults = fc.get("defaults")
    if _type(defaults, dict, f"{path}.defaults", problems) and "thresholds" in defaults:
        _thresholds(defaults["thresholds"], f"{path}.defaults.thresholds", problems)
    overrides = fc.get("overrides")
    if not _type(overrides, list, f"{path}.overrides", problems):
        return
    for i, override in enumerate(overrides):
        where = f"{path}.overrides[{i}]"
        matcher = override.get("matcher")
        if not isinstance(matcher, dict) or not isinstance(matcher.get("id"), str):
            problems.append(f"{where}.matcher: needs an id")
        props = override.get("properties")
        if not _type(props, list, f"{where}.properties", problems):
            continue
        for j, prop in enumerate(props):
            if not isinstance(prop, dict) or not isinstance(prop.get("id"), str):
                problems.append(f"{where}.properties[{j}]: needs an id")
            elif prop["id"] == "thresholds":
                _thresholds(prop.get("value"), f"{where}.properties[{j}].value", problems)


def _panel(
    panel: Any,
    path: str,
    problems: list[str],
    ids: dict[int, str],
    boxes: list[tuple[str, int, int, int, int]],
    datasource_vars: set[str],
    used_vars: set[str],
) -> None:
    if not _type(panel, dict, path, problems):
        return
    pid = panel.get("id")
    if _type(pid, int, f"{path}.id", problems):
        if pid in ids:
            problems.append(f"{path}.id: {pid} is also the id of {ids[pid]}")
        ids[pid] = path
    ptype = panel.get("type")
    if ptype not in PANEL_TYPES:
        problems.append(f"{path}.type: {ptype!r} is not a known panel type")
    _type(panel.get("title"), str, f"{path}.title", problems)
    grid = panel.get("gridPos")
    if _type(grid, dict, f"{path}.gridPos", problems):
        ok = True
        for key in ("h", "w", "x", "y"):
            ok = _type(grid.get(key), int, f"{path}.gridPos.{key}", problems) and ok
        if ok:
            h, w, x, y = grid["h"], grid["w"], grid["x"], grid["y"]
            if h < 1 or w < 1 or x < 0 or y < 0 or x + w > GRID:
                problems.append(f"{path}.gridPos: {grid} outside the 24-column grid")
            if ptype == "row" and (h != 1 or w != GRID or x != 0):
                problems.append(f"{path}.gridPos: a row spans the full width with h=1")
            boxes.append((path, x, y, w, h))
    if ptype == "row":
        if not isinstance(panel.get("collapsed"), bool):
            problems.append(f"{path}.collapsed: bool required")
        for i, inner in enumerate(panel.get("panels", [])):
            _panel(inner, f"{path}.panels[{i}]", problems, ids, [], datasource_vars, used_vars)
        used_vars |= _variables_used(panel.get("title", ""))
        return
    used_vars |= _variables_used(panel.get("title", ""))
    _datasource(panel.get("datasource"), f"{path}.datasource", problems, datasource_vars)
    targets = panel.get("targets")
    if _type(targets, list, f"{path}.targets", problems):
        if not targets and ptype not in ("text",):
            problems.append(f"{path}.targets: a query panel needs at least one target")
        refs: set[str] = set()
        for i, target in enumerate(targets):
            where = f"{path}.targets[{i}]"
            if not _type(target, dict, where, problems):
                continue
            ref = target.get("refId")
            if not isinstance(ref, str) or not ref:
                problems.append(f"{where}.refId: required")
            elif ref in refs:
                problems.append(f"{where}.refId: {ref!r} used twice in the panel")
            refs.add(str(ref))
            _datasource(target.get("datasource"), f"{where}.datasource", problems, datasource_vars)
            query = target.get("query")
            if target.get("rawQuery") is not True or not isinstance(query, str) or not query:
                problems.append(f"{where}: a raw InfluxQL query (rawQuery true, query) is required")
            else:
                used_vars |= _variables_used(query)
            if target.get("resultFormat") not in ("time_series", "table", "logs"):
                problems.append(f"{where}.resultFormat: {target.get('resultFormat')!r}")
            alias = target.get("alias")
            if alias is not None:
                used_vars |= {v for v in _variables_used(alias) if not ALIAS_PATTERNS.match(v)}
    _field_config(panel.get("fieldConfig"), f"{path}.fieldConfig", problems)
    _type(panel.get("options"), dict, f"{path}.options", problems)
    for i, tr in enumerate(panel.get("transformations", [])):
        if not isinstance(tr, dict) or not isinstance(tr.get("id"), str):
            problems.append(f"{path}.transformations[{i}]: needs an id")


def _overlaps(boxes: list[tuple[str, int, int, int, int]], problems: list[str]) -> None:
    for i, (pa, xa, ya, wa, ha) in enumerate(boxes):
        for pb, xb, yb, wb, hb in boxes[i + 1 :]:
            if xa < xb + wb and xb < xa + wa and ya < yb + hb and yb < ya + ha:
                problems.append(f"{pa}.gridPos overlaps {pb}.gridPos")


def validate_dashboard(board: Any) -> list[str]:
    problems: list[str] = []
    if not _type(board, dict, "dashboard", problems):
        return problems
    _board_fields(board, problems)
    names, datasource_vars, used = _templating(board, problems)
    used |= _annotations(board, datasource_vars, problems)
    ids: dict[int, str] = {}
    boxes: list[tuple[str, int, int, int, int]] = []
    for i, panel in enumerate(board.get("panels") or []):
        _panel(panel, f"panels[{i}]", problems, ids, boxes, datasource_vars, used)
    _overlaps(boxes, problems)
    for name in sorted(used - names - BUILTIN_VARIABLES):
        problems.append(f"variable ${name} is used but not defined in templating")
    return problems


def _board_fields(board: Any, problems: list[str]) -> None:
    uid = board.get("uid")
    if not isinstance(uid, str) or not UID_RE.match(uid):
        problems.append(f"uid: {uid!r} must be 1-40 characters of letters, digits, '-', '_'")
    if not isinstance(board.get("title"), str) or not board.get("title"):
        problems.append("title: required")
    for key, kind in (
        ("tags", list),
        ("editable", bool),
        ("graphTooltip", int),
        ("schemaVersion", int),
        ("version", int),
        ("refresh", str),
        ("panels", list),
        ("links", list),
    ):
        _type(board.get(key), kind, key, problems)
    if board.get("timezone") not in TIMEZONES:
        problems.append(f"timezone: {board.get('timezone')!r} not one of {sorted(TIMEZONES)}")
    if board.get("graphTooltip") not in (0, 1, 2):
        problems.append("graphTooltip: 0, 1 or 2")
    if isinstance(board.get("schemaVersion"), int) and board["schemaVersion"] < 36:
        problems.append("schemaVersion: boards with datasource refs need >= 36")
    time = board.get("time")
    if not isinstance(time, dict) or not all(isinstance(time.get(k), str) for k in ("from", "to")):
        problems.append("time: {from, to} strings required")
    if "id" in board and board["id"] is not None:
        problems.append("id: leave it out (or null): Grafana assigns it; boards are found by uid")


def _templating(board: Any, problems: list[str]) -> tuple[set[str], set[str], set[str]]:
    """The variables: (names defined, datasource variables, variables their queries use)."""
    templating = board.get("templating")
    variables: list[Any] = []
    if _type(templating, dict, "templating", problems):
        variables = templating.get("list", [])
        _type(variables, list, "templating.list", problems)
    names: set[str] = set()
    datasource_vars: set[str] = set()
    for i, var in enumerate(variables):
        where = f"templating.list[{i}]"
        name = var.get("name") if isinstance(var, dict) else None
        if not isinstance(name, str) or not VAR_NAME_RE.match(name):
            problems.append(f"{where}.name: {name!r} is not a variable name")
            continue
        if name in names:
            problems.append(f"{where}.name: {name!r} defined twice")
        names.add(name)
        vtype = var.get("type")
        if vtype not in VARIABLE_TYPES:
            problems.append(f"{where}.type: {vtype!r} not one of {sorted(VARIABLE_TYPES)}")
        if vtype == "datasource":
            datasource_vars.add(name)
            if not isinstance(var.get("query"), str) or not var["query"]:
                problems.append(f"{where}.query: the datasource plugin type is required")
        if vtype == "query" and (not isinstance(var.get("query"), str) or not var["query"]):
            problems.append(f"{where}.query: required")
        for flag in ("multi", "includeAll"):
            if flag in var and not isinstance(var[flag], bool):
                problems.append(f"{where}.{flag}: bool required")
    used: set[str] = set()
    for i, var in enumerate(variables):
        if isinstance(var, dict) and var.get("type") == "query":
            _datasource(
                var.get("datasource"), f"templating.list[{i}].datasource", problems, datasource_vars
            )
            used |= _variables_used(str(var.get("query", "")))
    return names, datasource_vars, used


def _annotations(board: Any, datasource_vars: set[str], problems: list[str]) -> set[str]:
    """Check the annotations; the variables their queries use."""
    used: set[str] = set()
    annotations = board.get("annotations")
    if _type(annotations, dict, "annotations", problems):
        for i, ann in enumerate(annotations.get("list", [])):
            where = f"annotations.list[{i}]"
            if not isinstance(ann, dict) or not isinstance(ann.get("name"), str):
                problems.append(f"{where}.name: required")
                continue
            if not isinstance(ann.get("enable"), bool):
                problems.append(f"{where}.enable: bool required")
            if ann.get("builtIn") != 1:
                _datasource(ann.get("datasource"), f"{where}.datasource", problems, datasource_vars)
                if not isinstance(ann.get("query"), str) or not ann["query"]:
                    problems.append(f"{where}.query: required")
                used |= _variables_used(str(ann.get("query", "")))
    return used
