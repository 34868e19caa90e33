"""Turn a path in a YAML document into ``file:line:col: owner: message``.

One ``Locator`` serves every document kind; what differs between them is handed in: the schema
(the root pydantic model, for "did you mean" hints and the accepted union types) and how the
owner of a path is named (``OwnerNames``):

- ``ChainNames``: every named item on the path, ``group "gb50493", rule "Cl2HighHigh"`` (rule
  packs, rule tests, scenarios);
- ``PathNames``: the path to the innermost entity and its code,
  ``enterprises[0].tags[3] "GT-1101"`` (the plant registry).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any, Protocol

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from safety_hub.yamlfile.hints import key_hint, model_at, union_tags_at
from safety_hub.yamlfile.parse import Parsed
from safety_hub.yamlfile.paths import Located, Pos, YamlPath, node_at, render_path, show

_MISSING = object()


class OwnerNames(Protocol):
    def describe(self, data: Any, path: YamlPath) -> tuple[str, int]:
        """The owner of ``path`` as messages name it ("" for none) and how many leading
        elements of ``path`` lead to it."""
        ...


class ChainNames:
    """Names every item of an owner list on the path, outermost first, by its name field;
    an item without a name is named by its list and index (``rules[3]``)."""

    def __init__(self, lists: Mapping[str, tuple[str, str | None]]) -> None:
        self.lists = lists
        """list key -> (word for an item, field that names it), e.g. ``"rules": ("rule",
        "alert")``."""

    def describe(self, data: Any, path: YamlPath) -> tuple[str, int]:
        parts: list[str] = []
        size = 0
        for i, key in enumerate(path):
            parent = path[i - 1] if i else None
            if isinstance(key, int) and isinstance(parent, str) and parent in self.lists:
                word, name_field = self.lists[parent]
                item = node_at(data, path[: i + 1])
                name = item.get(name_field) if isinstance(item, dict) and name_field else None
                if isinstance(name, str) and name:
                    parts.append(f"{word} {json.dumps(name, ensure_ascii=False)}")
                else:
                    parts.append(render_path((parent, key)))
                size = i + 1
        return ", ".join(parts), size


class PathNames:
    """Names the innermost entity on the path by its path and code; an entry of a ``keyed``
    top-level mapping (``gases: {Cl2: ...}``) by the mapping and its key (``gases "Cl2"``)."""

    def __init__(self, lists: Mapping[str, str], keyed: Collection[str] = ()) -> None:
        self.lists = lists
        """list key -> the field that names its items, e.g. ``"tags": "tag"``."""
        self.keyed = keyed

    def describe(self, data: Any, path: YamlPath) -> tuple[str, int]:
        node: Any = data
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
            if isinstance(key, int) and isinstance(parent, str) and parent in self.lists:
                size = i + 1
                name = node.get(self.lists[parent]) if isinstance(node, dict) else None
                ident = name if isinstance(name, str) else None
            elif i == 1 and path[0] in self.keyed:
                size, ident = 2, None
        head = render_path(path[:size])
        if size == 2 and path[0] in self.keyed:
            head = f"{path[0]} {show(path[1])}"
        elif ident is not None:
            head += f" {json.dumps(ident, ensure_ascii=False)}"
        return head, size


class Locator:
    """Positions and messages for one parsed document validated against ``schema``.

    ``discriminator`` is the key that picks the member of a union of models (the ``type`` of a
    rule condition); ``None`` for a schema without such unions, so that nothing in an error's
    path is taken for a union member's tag.
    """

    def __init__(
        self,
        file: str,
        parsed: Parsed,
        schema: type[BaseModel],
        names: OwnerNames,
        *,
        discriminator: str | None = "type",
    ) -> None:
        self.file = file
        self.data = parsed.data
        self.marks = parsed.marks
        self.schema = schema
        self.names = names
        self.discriminator = discriminator

    def pos(self, path: YamlPath) -> Pos:
        """Line and column of the path, or of its nearest ancestor that is in the file."""
        p = tuple(path)
        while p:
            found = self.marks.get(p)
            if found is not None:
                return found
            p = p[:-1]
        return self.marks.get((), (1, 1))

    def describe(self, path: YamlPath) -> tuple[str, YamlPath]:
        """The owner of ``path`` as messages name it and the rest of the path below it."""
        head, size = self.names.describe(self.data, path)
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
        loc = self.strip_tags(tuple(error["loc"]))
        kind = error["type"]
        _, rest = self.describe(loc)
        if kind == "extra_forbidden" and loc:
            hint = key_hint(model_at(self.schema, self.data, loc[:-1], self.discriminator), loc[-1])
            return self.at(loc, f"unknown key {render_path(rest)!r}{hint}")
        if kind in ("union_tag_invalid", "union_tag_not_found") and self.discriminator:
            return self._union_tag(kind, loc, rest, self.discriminator)
        key = "key" if rest == ("[key]",) else render_path(rest)
        if kind == "missing":
            message = f"missing required key {key!r}"
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

    def _union_tag(self, kind: str, loc: YamlPath, rest: YamlPath, tag: str) -> Located:
        """A union member chosen by the ``tag`` key: the key is missing or names no member."""
        expected = ", ".join(union_tags_at(self.schema, self.data, loc, tag))
        if kind == "union_tag_not_found":
            return self.at(loc, f"{render_path(rest)} needs a {tag}: one of {expected}")
        written = node_at(self.data, (*loc, tag))
        return self.at(
            (*loc, tag),
            f"{render_path((*rest, tag))}={show(written)}: unknown {tag}; use one of {expected}",
        )

    def strip_tags(self, loc: YamlPath) -> YamlPath:
        """Drop the discriminator value pydantic puts into the path of a union member."""
        if self.discriminator is None:
            return loc
        out: list[Any] = []
        for key in loc:
            if isinstance(key, str) and out:
                here = node_at(self.data, out)
                if (
                    isinstance(here, dict)
                    and key not in here
                    and here.get(self.discriminator) == key
                ):
                    continue
            out.append(key)
        return tuple(out)
