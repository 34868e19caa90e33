"""YAML with positions: one toolkit for every YAML file the hub reads (plant registry, rule
packs, rule tests, scenarios).

- ``parse_yaml``: plain data plus the line and column of every key and item, duplicate keys
  reported (``parse``);
- ``Locator``: ``file:line:col: owner: message`` for a path, pydantic errors turned into messages
  that name the key and the bad value, with "did you mean" hints from the schema (``locate``,
  ``hints``);
- ``validate_pruned``: every schema error at once, and the rest validated without what is broken
  (``validate``);
- ``parse_document``: all of the above for one file, as every loader starts (``document``).

It knows no document kind: each loader hands in its schema and how its owners are named. It
imports nothing of the hub beyond itself.
"""

from safety_hub.yamlfile.document import Document, parse_document
from safety_hub.yamlfile.locate import ChainNames, Locator, OwnerNames, PathNames
from safety_hub.yamlfile.parse import MAX_NODES, Parsed, YamlSyntaxError, parse_yaml
from safety_hub.yamlfile.paths import Located, Pos, YamlPath, node_at, render_path, show
from safety_hub.yamlfile.validate import copy_without, original_index, validate_pruned

__all__ = [
    "MAX_NODES",
    "ChainNames",
    "Document",
    "Located",
    "Locator",
    "OwnerNames",
    "Parsed",
    "PathNames",
    "Pos",
    "YamlPath",
    "YamlSyntaxError",
    "copy_without",
    "node_at",
    "original_index",
    "parse_document",
    "parse_yaml",
    "render_path",
    "show",
    "validate_pruned",
]
