"""Load and validate an uplink configuration file (docs/uplink.md).

Like the other YAML files: YAML with positions, the pydantic models (``schema``), then what
relates fields; every problem of all passes reported at once as ``file:line:col: message``
(``UplinkConfigError``). With a plant, hazard source codes are checked against it.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from safety_hub.errors import UplinkConfigError
from safety_hub.registry import Plant, TagInfo
from safety_hub.uplink.records import DEFAULT_MAPPING, RECORD_KINDS, SOURCES, Const, Source
from safety_hub.uplink.schema import ConstModel, DestinationModel, UplinkDoc
from safety_hub.yamlfile import (
    Located,
    Locator,
    PathNames,
    YamlPath,
    YamlSyntaxError,
    parse_document,
    show,
)

UPLINK_NAMES = PathNames({"destinations": "name"})
TRANSPORT_BLOCKS = {"tcp_envelope": "tcp", "http": "http", "mqtt_bridge": "mqtt"}
"""transport -> the block of the destination that configures it"""
IDENTITY_MAPPING: dict[str, dict[str, Source]] = {
    kind: {name: name for name in fields} for kind, fields in SOURCES.items()
}
"""what the mqtt_bridge sends: every source field under its own name"""


@dataclass(frozen=True)
class Destination:
    """One destination as the runtime uses it: the checked model and its resolved mapping."""

    model: DestinationModel
    mapping: Mapping[str, Mapping[str, Source]]

    @property
    def name(self) -> str:
        return self.model.name

    def hazard_sources(self, plant: Plant) -> list[str]:
        """The codes of the hazard sources this destination reports, in registry order."""
        send = self.model.send
        grades = set(send.hazard_grades)
        return [
            code
            for code, hs in plant.hazard_sources.items()
            if hs.computed_grade in grades or code in send.hazard_sources
        ]

    def tags(self, plant: Plant) -> list[TagInfo]:
        chosen = set(self.hazard_sources(plant))
        return [t for t in plant.tags.values() if t.hazard_source in chosen]


@dataclass(frozen=True)
class UplinkConfig:
    path: Path
    destinations: tuple[Destination, ...]


def load_uplink(path: str | Path, plant: Plant | None = None) -> UplinkConfig:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UplinkConfigError(file, [f"{file}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise UplinkConfigError(
            file, [f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}"]
        ) from None
    return parse_uplink(text, file, plant)


def parse_uplink(text: str, file: str = "<uplink>", plant: Plant | None = None) -> UplinkConfig:
    try:
        document = parse_document(
            file,
            text,
            UplinkDoc,
            UPLINK_NAMES,
            {"destinations"},
            empty="the file is empty",
            discriminator=None,
        )
    except YamlSyntaxError as exc:
        raise UplinkConfigError(file, [exc.at(file)]) from None
    errors, doc = document.errors, document.model
    if doc is None:
        raise UplinkConfigError(file, [t for *_, t in sorted(errors)])
    original = document.index_map.get(("destinations",))
    destinations: list[Destination] = []
    seen: dict[str, YamlPath] = {}
    for i, model in enumerate(doc.destinations):
        path: YamlPath = ("destinations", original[i] if original is not None else i)
        problems = _check(document.loc, path, model, plant)
        first = seen.setdefault(model.name, path)
        if first != path:
            line, _ = document.loc.pos(first)
            problems.append(
                document.loc.at(
                    (*path, "name"),
                    f"duplicate destination {show(model.name)} (first at line {line})",
                )
            )
        errors.extend(problems)
        destinations.append(Destination(model, _mapping(model)))
    if errors:
        raise UplinkConfigError(file, [t for *_, t in sorted(errors)])
    return UplinkConfig(Path(file), tuple(destinations))


def _hint(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check(
    loc: Locator, path: YamlPath, model: DestinationModel, plant: Plant | None
) -> list[Located]:
    out: list[Located] = []
    block = TRANSPORT_BLOCKS[model.transport]
    if getattr(model, block) is None:
        out.append(
            loc.at((*path, "transport"), f"transport {model.transport} needs a {block}: block")
        )
    for other in TRANSPORT_BLOCKS.values():
        if other != block and getattr(model, other) is not None:
            out.append(
                loc.at(
                    (*path, other),
                    f"a {other}: block does not belong to transport {model.transport}",
                )
            )
    if model.transport == "mqtt_bridge" and model.mapping:
        out.append(
            loc.at(
                (*path, "mapping"),
                "the mqtt_bridge sends the source fields as they are; a mapping does not apply",
            )
        )
    bridge = model.mqtt
    if bridge is not None and (bridge.username_env is None) != (bridge.password_env is None):
        out.append(loc.at((*path, "mqtt"), "username_env and password_env go together"))
    tcp = model.tcp
    if tcp is not None and tcp.mode == "cbc" and tcp.iv_env is None:
        out.append(
            loc.at((*path, "tcp", "mode"), "mode cbc needs iv_env (the variable holding the IV)")
        )
    if tcp is not None and tcp.mode == "ecb" and tcp.iv_env is not None:
        out.append(loc.at((*path, "tcp", "iv_env"), "iv_env is for mode cbc only"))
    if model.retry_max_s < model.retry_initial_s:
        out.append(loc.at((*path, "retry_max_s"), "must not be below retry_initial_s"))
    for kind, fields in model.mapping.items():
        known = SOURCES[kind]
        for out_field, source in fields.items():
            if isinstance(source, str) and source not in known:
                out.append(
                    loc.at(
                        (*path, "mapping", kind, out_field),
                        f"{kind} records have no source field {source!r}{_hint(source, known)}",
                    )
                )
    if plant is not None:
        for j, code in enumerate(model.send.hazard_sources):
            if code not in plant.hazard_sources:
                out.append(
                    loc.at(
                        (*path, "send", "hazard_sources", j),
                        f"no hazard source {show(code)} in the plant{_hint(code, plant.hazard_sources)}",
                    )
                )
    return out


def _mapping(model: DestinationModel) -> dict[str, dict[str, Source]]:
    if model.transport == "mqtt_bridge":
        return {k: dict(IDENTITY_MAPPING[k]) for k in RECORD_KINDS}
    resolved: dict[str, dict[str, Source]] = {k: dict(DEFAULT_MAPPING[k]) for k in RECORD_KINDS}
    for kind, fields in model.mapping.items():
        resolved[kind] = {
            out: Const(src.const) if isinstance(src, ConstModel) else src
            for out, src in fields.items()
        }
    return resolved
