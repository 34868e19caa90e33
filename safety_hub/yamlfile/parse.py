"""YAML parsing that remembers where every value came from.

``parse_yaml`` composes the document with PyYAML's safe loader (libyaml when available), builds
plain Python data from the node graph and records the 1-based line and column of every mapping
key and sequence item by its path, e.g. ``("enterprises", 2, "tags", 5, "setpoints", "l2")``.
Duplicate keys, which PyYAML would silently overwrite, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import nodes

from safety_hub.yamlfile.paths import Pos, YamlPath

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_STR = "tag:yaml.org,2002:str"

MAX_NODES = 2_000_000
"""Guard against alias bombs: a plant file has a few thousand nodes."""


class YamlSyntaxError(Exception):
    """The text is not valid YAML; ``line``/``col`` are 1-based."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message

    def at(self, file: str) -> str:
        """The error as ``file:line:col: message``."""
        return f"{file}:{self.line}:{self.col}: {self.message}"


@dataclass
class Parsed:
    data: Any
    marks: dict[YamlPath, Pos] = field(default_factory=dict)
    problems: list[tuple[int, int, str]] = field(default_factory=list)
    """YAML-level problems that do not stop loading (duplicate keys), as (line, col, message)."""


def _pos(mark: Any) -> Pos:
    return (int(mark.line) + 1, int(mark.column) + 1)


class _Builder:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.parsed = Parsed(data=None)
        self.count = 0

    def build(self, node: nodes.Node, path: YamlPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            line, col = _pos(node.start_mark)
            raise YamlSyntaxError(line, col, f"document has more than {MAX_NODES} nodes")
        if isinstance(node, nodes.MappingNode):
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                kpos = _pos(key_node.start_mark)
                try:
                    hash(key)
                except TypeError:
                    self.parsed.problems.append((*kpos, "a mapping key must be a plain value"))
                    continue
                if key in out:
                    first = self.parsed.marks.get((*path, key), kpos)
                    self.parsed.problems.append(
                        (*kpos, f"duplicate key {key!r} (first at line {first[0]})")
                    )
                    continue
                self.parsed.marks[(*path, key)] = kpos
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, nodes.SequenceNode):
            items: list[Any] = []
            for index, item in enumerate(node.value):
                self.parsed.marks[(*path, index)] = _pos(item.start_mark)
                items.append(self.build(item, (*path, index)))
            return items
        return self._scalar(node)

    def _scalar(self, node: nodes.Node) -> Any:
        if isinstance(node, nodes.ScalarNode) and node.tag == _STR:
            return node.value  # the common case, without the constructor's bookkeeping
        return self.loader.construct_object(node, deep=True)


def parse_yaml(text: str) -> Parsed:
    """Parse one YAML document; raise ``YamlSyntaxError`` when it is not YAML."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(loader)
        if root is not None:
            builder.parsed.marks[()] = _pos(root.start_mark)
            builder.parsed.data = builder.build(root, ())
        return builder.parsed
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (1, 1)
        message = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(line, col, f"YAML syntax error: {message}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, 1, f"YAML error: {exc}") from None
    finally:
        loader.dispose()
