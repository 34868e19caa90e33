"""Which schema model a place in a document is validated against, for "did you mean" hints.

The walk follows the pydantic models from the document's root model down a path. Where a field
is a union of several models (a discriminated union such as a rule's ``condition``), the
member is picked by the discriminator value written in the data; without a discriminator
(``None``) such a place has no single model.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from safety_hub.yamlfile.paths import YamlPath, node_at


def members(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly Annotated / Optional) type, unwrapped."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(annotation):
            if arg is not type(None):
                out.extend(members(arg))
        return out
    return [annotation]


def tag_of(model: type, discriminator: str) -> object:
    """The one value the ``discriminator`` field of ``model`` accepts, or None."""
    if not issubclass(model, BaseModel):
        return None
    field = model.model_fields.get(discriminator)
    if field is None:
        return None
    args = get_args(field.annotation)
    return args[0] if len(args) == 1 else None


def models_at(
    root: type[BaseModel], data: Any, path: YamlPath, discriminator: str | None
) -> list[type[BaseModel]]:
    """The models a mapping at ``path`` may be validated against (several: not resolved)."""
    current: list[Any] = [root]
    for i, key in enumerate(path):
        nxt: list[Any] = []
        for option in current:
            if isinstance(option, type) and issubclass(option, BaseModel):
                field = option.model_fields.get(str(key))
                if field is not None:
                    nxt.extend(members(field.annotation))
            elif get_origin(option) is list:
                nxt.extend(members(get_args(option)[0]))
            elif get_origin(option) is dict:
                nxt.extend(members(get_args(option)[1]))
        models = [m for m in nxt if isinstance(m, type) and issubclass(m, BaseModel)]
        if len(models) > 1 and discriminator is not None:
            written = node_at(data, path[: i + 1])
            kind = written.get(discriminator) if isinstance(written, dict) else None
            models = [m for m in models if tag_of(m, discriminator) == kind]
        current = models or [m for m in nxt if get_origin(m) in (list, dict)]
        if not current:
            return []
    return [m for m in current if isinstance(m, type) and issubclass(m, BaseModel)]


def model_at(
    root: type[BaseModel], data: Any, path: YamlPath, discriminator: str | None = "type"
) -> type[BaseModel] | None:
    """The model a mapping at ``path`` is validated against; a union of models (a
    discriminated condition) is resolved by the discriminator value written in the data."""
    found = models_at(root, data, path, discriminator)
    return found[0] if len(found) == 1 else None


def union_tags_at(
    root: type[BaseModel], data: Any, path: YamlPath, discriminator: str = "type"
) -> list[str]:
    """The discriminator values a discriminated union at ``path`` accepts."""
    parent = models_at(root, data, path[:-1], discriminator)
    out: list[str] = []
    for model in parent:
        field = model.model_fields.get(str(path[-1])) if path else None
        if field is not None:
            for member in members(field.annotation):
                tag = tag_of(member, discriminator) if isinstance(member, type) else None
                if isinstance(tag, str):
                    out.append(tag)
    return out


def key_hint(model: type[BaseModel] | None, key: object) -> str:
    """``; did you mean 'x'?`` for an unknown key of ``model``, else the keys it allows."""
    if model is None:
        return ""
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; allowed: {', '.join(allowed)}"
