"""``file:line:col`` messages for rule files and rule test files.

Builds on the registry's YAML-with-positions loader (``registry.yamlpos``) and its ``Locator``
(``registry.locate``); what differs is how the owner of a path is named (``group "gb50493",
rule "Cl2HighHigh"`` instead of ``enterprises[0].tags[3] "GT-1101"``) and which schema the
"did you mean" hints come from.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from safety_hub.registry.locate import Located, Locator, render_path, show
from safety_hub.registry.yamlpos import Parsed, YamlPath, copy_without

_MISSING = object()

Owners = Mapping[str, tuple[str, str | None]]
"""list key -> (word for an item, field that names it), e.g. ``"rules": ("rule", "alert")``."""


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


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly Annotated / Optional) type, unwrapped."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(annotation):
            if arg is not type(None):
                out.extend(_members(arg))
        return out
    return [annotation]


def model_at(root: type[BaseModel], data: Any, path: YamlPath) -> type[BaseModel] | None:
    """The model a mapping at ``path`` is validated against; a union of models (a
    discriminated condition) is resolved by the ``type`` written in the data."""
    found = _models_at(root, data, path)
    return found[0] if len(found) == 1 else None


def union_tags_at(root: type[BaseModel], data: Any, path: YamlPath) -> list[str]:
    """The ``type`` values a discriminated union at ``path`` accepts."""
    parent = _models_at(root, data, path[:-1])
    out: list[str] = []
    for model in parent:
        field = model.model_fields.get(str(path[-1])) if path else None
        if field is not None:
            for member in _members(field.annotation):
                tag = _tag_of(member) if isinstance(member, type) else None
                if isinstance(tag, str):
                    out.append(tag)
    return out


def _models_at(root: type[BaseModel], data: Any, path: YamlPath) -> list[type[BaseModel]]:
    current: list[Any] = [root]
    for i, key in enumerate(path):
        nxt: list[Any] = []
        for option in current:
            if isinstance(option, type) and issubclass(option, BaseModel):
                field = option.model_fields.get(str(key))
                if field is not None:
                    nxt.extend(_members(field.annotation))
            elif get_origin(option) is list:
                nxt.extend(_members(get_args(option)[0]))
            elif get_origin(option) is dict:
                nxt.extend(_members(get_args(option)[1]))
        models = [m for m in nxt if isinstance(m, type) and issubclass(m, BaseModel)]
        if len(models) > 1:
            written = node_at(data, path[: i + 1])
            kind = written.get("type") if isinstance(written, dict) else None
            models = [m for m in models if _tag_of(m) == kind]
        current = models or [m for m in nxt if get_origin(m) in (list, dict)]
        if not current:
            return []
    return [m for m in current if isinstance(m, type) and issubclass(m, BaseModel)]


def _tag_of(model: type) -> object:
    if not issubclass(model, BaseModel):
        return None
    field = model.model_fields.get("type")
    if field is None:
        return None
    args = get_args(field.annotation)
    return args[0] if len(args) == 1 else None


class DocLocator(Locator):
    """A ``Locator`` that names owners by the ``owners`` table and hints from ``root``."""

    def __init__(self, file: str, parsed: Parsed, root: type[BaseModel], owners: Owners) -> None:
        super().__init__(file, parsed)
        self.root = root
        self.owners = owners

    def describe(self, path: YamlPath) -> tuple[str, YamlPath]:
        parts: list[str] = []
        size = 0
        for i, key in enumerate(path):
            parent = path[i - 1] if i else None
            if isinstance(key, int) and isinstance(parent, str) and parent in self.owners:
                word, name_field = self.owners[parent]
                item = node_at(self.data, path[: i + 1])
                name = item.get(name_field) if isinstance(item, dict) and name_field else None
                if isinstance(name, str) and name:
                    parts.append(f"{word} {json.dumps(name, ensure_ascii=False)}")
                else:
                    parts.append(f"{render_path((parent, key))}")
                size = i + 1
        return ", ".join(parts), tuple(path[size:])

    def pydantic(self, error: ErrorDetails) -> Located:
        loc = self._strip_tags(tuple(error["loc"]))
        fixed: ErrorDetails = {**error, "loc": loc}
        kind = error["type"]
        if kind == "extra_forbidden" and loc:
            _, rest = self.describe(loc)
            return self.at(loc, f"unknown key {render_path(rest)!r}{self._hint(loc)}")
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            _, rest = self.describe(loc)
            expected = ", ".join(union_tags_at(self.root, self.data, loc))
            if kind == "union_tag_not_found":
                return self.at(loc, f"{render_path(rest)} needs a type: one of {expected}")
            written = node_at(self.data, (*loc, "type"))
            return self.at(
                (*loc, "type"),
                f"{render_path((*rest, 'type'))}={show(written)}: unknown type; use one of "
                f"{expected}",
            )
        return super().pydantic(fixed)

    def _strip_tags(self, loc: YamlPath) -> YamlPath:
        """Drop the discriminator value pydantic puts into the path of a union member."""
        out: list[Any] = []
        for key in loc:
            if isinstance(key, str) and out:
                here = node_at(self.data, out)
                if isinstance(here, dict) and key not in here and here.get("type") == key:
                    continue
            out.append(key)
        return tuple(out)

    def _hint(self, loc: YamlPath) -> str:
        model = model_at(self.root, self.data, loc[:-1])
        if model is None:
            return ""
        allowed = list(model.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        if close:
            return f"; did you mean {close[0]!r}?"
        return f"; allowed: {', '.join(allowed)}"


def validate_pruned(
    root: type[BaseModel],
    data: Any,
    loc: DocLocator,
    prunable: frozenset[str],
    errors: list[Located],
) -> tuple[BaseModel | None, dict[YamlPath, list[int]]]:
    """Validate ``data``; on errors, report them all, leave out the unknown keys and the
    innermost items of a ``prunable`` list that hold an error, and validate the rest again so that
    the checks after this one still see everything that is valid on its own.

    Returns the model (or None when something outside every prunable item is wrong) and, per list
    path, the original indices of the items that were kept.
    """
    try:
        return root.model_validate(data), {}
    except ValidationError as exc:
        details = exc.errors(include_url=False)
    errors.extend(loc.pydantic(error) for error in details)
    targets: set[YamlPath] = set()
    for error in details:
        path = loc._strip_tags(tuple(error["loc"]))
        if error["type"] == "extra_forbidden" and path:
            targets.add(path)
            continue
        cut = None
        for i in range(1, len(path)):
            if isinstance(path[i], int) and path[i - 1] in prunable:
                cut = i + 1
        if cut is None:
            return None, {}
        targets.add(path[:cut])
    index_map: dict[YamlPath, list[int]] = {}
    pruned = copy_without(data, (), targets, index_map)
    try:
        return root.model_validate(pruned), index_map
    except ValidationError:
        return None, {}


def original_index(index_map: Mapping[YamlPath, list[int]], list_path: YamlPath, i: int) -> int:
    """The index in the file of item ``i`` of a list that may have been pruned."""
    kept = index_map.get(list_path)
    return kept[i] if kept is not None else i
