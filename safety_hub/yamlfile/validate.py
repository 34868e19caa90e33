"""Validate a whole document, and keep validating what is valid after an error.

``validate_pruned`` reports every pydantic error, then leaves out what holds an error (an
unknown key itself, else the innermost item of a prunable list around the error) and validates
the rest again, so that the checks after the schema still see everything that is valid on its
own. Items left out of a list shift the indices after them; ``original_index`` maps an index of
the validated model back to the file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from safety_hub.yamlfile.locate import Locator
from safety_hub.yamlfile.paths import Located, YamlPath

M = TypeVar("M", bound=BaseModel)


def validate_pruned(
    root: type[M],
    data: Any,
    loc: Locator,
    prunable: Collection[str],
    errors: list[Located],
    *,
    keyed: Collection[str] = (),
    dropped: set[YamlPath] | None = None,
) -> tuple[M | None, dict[YamlPath, list[int]]]:
    """Validate ``data``; on errors, report them all into ``errors``, leave out the unknown keys
    and the innermost items of a ``prunable`` list that hold an error (or, outside every such
    item, the entry of a ``keyed`` top-level mapping), and validate the rest again.

    Returns the model (or None when something outside every prunable item is wrong) and, per list
    path, the original indices of the items that were kept. ``dropped``, when given, receives
    the paths that were left out.
    """
    try:
        return root.model_validate(data), {}
    except ValidationError as exc:
        details = exc.errors(include_url=False)
    errors.extend(loc.pydantic(error) for error in details)
    targets: set[YamlPath] = set()
    for error in details:
        path = loc.strip_tags(tuple(error["loc"]))
        if error["type"] == "extra_forbidden" and path:
            targets.add(path)
            continue
        cut = None
        for i in range(1, len(path)):
            if isinstance(path[i], int) and path[i - 1] in prunable:
                cut = i + 1
        if cut is None and len(path) >= 2 and path[0] in keyed:
            cut = 2
        if cut is None:
            return None, {}
        targets.add(path[:cut])
    index_map: dict[YamlPath, list[int]] = {}
    pruned = copy_without(data, (), targets, index_map)
    if dropped is not None:
        dropped.update(targets)
    try:
        return root.model_validate(pruned), index_map
    except ValidationError:
        return None, {}


def original_index(index_map: Mapping[YamlPath, list[int]], list_path: YamlPath, i: int) -> int:
    """The index in the file of item ``i`` of a list that may have been pruned."""
    kept = index_map.get(list_path)
    return kept[i] if kept is not None else i


def copy_without(
    node: Any, path: YamlPath, targets: set[YamlPath], index_map: dict[YamlPath, list[int]]
) -> Any:
    """A copy of ``node`` without the entries at ``targets``; ``index_map`` records, per list
    that lost items, which original indexes were kept (to map errors back to lines)."""
    if isinstance(node, dict):
        return {
            key: copy_without(value, (*path, key), targets, index_map)
            for key, value in node.items()
            if (*path, key) not in targets
        }
    if isinstance(node, list):
        kept = [i for i in range(len(node)) if (*path, i) not in targets]
        if len(kept) != len(node):
            index_map[path] = kept
        return [copy_without(node[i], (*path, i), targets, index_map) for i in kept]
    return node
