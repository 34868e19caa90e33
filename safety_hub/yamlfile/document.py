"""One YAML document read against its schema: what every loader does before its own checks."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from safety_hub.yamlfile.locate import Locator, OwnerNames
from safety_hub.yamlfile.parse import parse_yaml
from safety_hub.yamlfile.paths import Located, YamlPath
from safety_hub.yamlfile.validate import validate_pruned

M = TypeVar("M", bound=BaseModel)


@dataclass
class Document(Generic[M]):
    loc: Locator
    data: Any
    """the plain data as written (None for an empty file)"""
    model: M | None
    """the validated model, without what was pruned; None when the file is empty or broken
    outside every prunable item"""
    index_map: dict[YamlPath, list[int]]
    """per pruned list, the indices in the file of the items that were kept"""
    errors: list[Located]
    """the YAML problems (duplicate keys), the empty file, and every schema error"""
    dropped: set[YamlPath] = field(default_factory=set)
    """what was left out of the data to validate the rest"""


def parse_document(
    file: str,
    text: str,
    schema: type[M],
    names: OwnerNames,
    prunable: Collection[str],
    *,
    empty: str,
    keyed: Collection[str] = (),
    discriminator: str | None = "type",
) -> Document[M]:
    """Parse ``text`` (named ``file`` in messages) and validate it against ``schema`` as
    ``validate_pruned`` does; ``empty`` is the message for a file without content. Raises
    ``YamlSyntaxError`` when the text is not YAML."""
    parsed = parse_yaml(text)
    loc = Locator(file, parsed, schema, names, discriminator=discriminator)
    doc: Document[M] = Document(loc, parsed.data, None, {}, [])
    doc.errors.extend(loc.plain(line, col, message) for line, col, message in parsed.problems)
    if parsed.data is None:
        doc.errors.append(loc.plain(1, 1, empty))
        return doc
    doc.model, doc.index_map = validate_pruned(
        schema, parsed.data, loc, prunable, doc.errors, keyed=keyed, dropped=doc.dropped
    )
    return doc
