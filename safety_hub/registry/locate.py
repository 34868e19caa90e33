"""Turn a data path into ``file:line:col: owner "id": message``.

Paths are tuples of mapping keys and list indices, as pydantic's ``loc`` and
``yamlpos.parse_yaml`` use them. The owner is the innermost entity (enterprise, hazard source,
unit, equipment, tag, chemical, gas) on the path, named by its code.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from safety_hub.registry.schema import PlantDoc
from safety_hub.registry.yamlpos import Parsed, Pos, YamlPath

ENTITY_LISTS: dict[str, str] = {
    "enterprises": "code",
    "hazard_sources": "code",
    "units": "code",
    "equipment": "code",
    "tags": "tag",
    "chemicals": "name",
}
"""Lists whose items are entities, and the field that names each item."""

Located = tuple[int, int, str]
"""(line, col, formatted message) so that messages can be sorted by position."""

_MISSING = object()


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


class Locator:
    def __init__(self, file: str, parsed: Parsed) -> None:
        self.file = file
        self.data = parsed.data
        self.marks = parsed.marks

    def pos(self, path: YamlPath) -> Pos:
        """Line and column of the path, or of its nearest ancestor that is in the file."""
        p = tuple(path)
        while p:
            found = self.marks.get(p)
            if found is not None:
                return found
            p = p[:-1]
        return self.marks.get((), (1, 1))

    def owner(self, path: YamlPath) -> tuple[int, str | None]:
        """How many leading elements of ``path`` name the owning entity, and its code."""
        node: Any = self.data
        size, ident = 0, None
        for i, key in enumerate(path):
            if isinstance(node, dict):
                node = node.get(key, _MISSING)
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                node = node[key]
            else:
                break
            if node is _MISSING:
                break
            parent = path[i - 1] if i else None
            if isinstance(key, int) and isinstance(parent, str) and parent in ENTITY_LISTS:
                size = i + 1
                name = node.get(ENTITY_LISTS[parent]) if isinstance(node, dict) else None
                ident = name if isinstance(name, str) else None
            elif i == 1 and path[0] == "gases":
                size, ident = 2, None
        return size, ident

    def describe(self, path: YamlPath) -> tuple[str, YamlPath]:
        """``enterprises[2].tags[5] "GT-1101"`` and the rest of the path below it."""
        size, ident = self.owner(path)
        head = render_path(path[:size])
        if size == 2 and path[0] == "gases":
            head = f"gases {show(path[1])}"
        elif ident is not None:
            head += f" {json.dumps(ident, ensure_ascii=False)}"
        return head, tuple(path[size:])

    def at(self, path: YamlPath, message: str) -> Located:
        """A message about ``path`` (the owner is prefixed)."""
        line, col = self.pos(path)
        head, _ = self.describe(path)
        text = (
            f"{self.file}:{line}:{col}: {head}: {message}"
            if head
            else f"{self.file}:{line}:{col}: {message}"
        )
        return (line, col, text)

    def plain(self, line: int, col: int, message: str) -> Located:
        return (line, col, f"{self.file}:{line}:{col}: {message}")

    def pydantic(self, error: ErrorDetails) -> Located:
        """A pydantic error as a located message naming the key and the bad value."""
        loc = tuple(error["loc"])
        kind = error["type"]
        _, rest = self.describe(loc)
        key = "key" if rest == ("[key]",) else render_path(rest)
        if kind == "missing":
            message = f"missing required key {key!r}"
        elif kind == "extra_forbidden":
            message = f"unknown key {key!r}{_key_hint(loc)}"
        else:
            msg = error["msg"]
            ctx = error.get("ctx") or {}
            if kind == "value_error" and "error" in ctx:
                msg = str(ctx["error"])
            elif kind in ("model_type", "dict_type"):
                msg = "should be a mapping (key: value ...)"
            value = error.get("input")
            if kind == "string_type" and isinstance(value, int | float | date):
                msg += " (quote it in YAML)"
            message = f"{key}={show(value)}: {msg}" if key else f"{msg} (got {show(value)})"
        return self.at(loc, message)


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def model_at(path: YamlPath) -> type[BaseModel] | None:
    """The schema model that a mapping at ``path`` is validated against."""
    current: Any = PlantDoc
    for key in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(key))
            if field is None:
                return None
            current = _unwrap(field.annotation)
        else:
            origin = get_origin(current)
            if origin is list:
                current = _unwrap(get_args(current)[0])
            elif origin is dict:
                current = _unwrap(get_args(current)[1])
            else:
                return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _key_hint(loc: YamlPath) -> str:
    model = model_at(loc[:-1])
    if model is None:
        return ""
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; allowed: {', '.join(allowed)}"
