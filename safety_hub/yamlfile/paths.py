"""Paths into plain YAML data, and how messages spell paths and values.

A path is a tuple of mapping keys and list indices, as ``parse_yaml`` records positions and as
pydantic's error ``loc`` names the place of an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

Key = Any
"""A path element: a mapping key (usually ``str``) or a sequence index (``int``)."""
YamlPath = tuple[Key, ...]
Pos = tuple[int, int]
Located = tuple[int, int, str]
"""(line, col, formatted message) so that messages can be sorted by position."""

_MISSING = object()


def node_at(data: Any, path: Sequence[Any]) -> Any:
    """The value at ``path`` in plain YAML data, or ``None``."""
    node = data
    for key in path:
        if isinstance(node, dict):
            node = node.get(key, _MISSING)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
        if node is _MISSING:
            return None
    return node


def render_path(path: Sequence[Any]) -> str:
    """``("enterprises", 2, "tags", 5)`` -> ``enterprises[2].tags[5]``."""
    out = ""
    for key in path:
        if isinstance(key, int) and not isinstance(key, bool):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out


def show(value: Any) -> str:
    """A value for a message: strings quoted, YAML spelling for booleans and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str | int | float):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, date):
        return value.isoformat()
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
