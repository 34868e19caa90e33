"""Load and validate a scenario file: the schema first, then everything against the plant and the
rule pack, every problem at once as ``file:line:col: ...`` (raised as ``ScenarioError``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from safety_hub.errors import LoadError
from safety_hub.registry import Plant, TagInfo, default_plant_path, load_plant
from safety_hub.rules import RulePack, default_rules_path, load_rules
from safety_hub.scenarios import schema as s
from safety_hub.yamlfile import (
    ChainNames,
    Located,
    Locator,
    YamlPath,
    YamlSyntaxError,
    original_index,
    parse_document,
    parse_yaml,
)

AnyDevice = s.LeakDevice | s.TankDevice | s.SisDevice | s.DetectorDevice | s.ProcessDevice

OWNERS = ChainNames(
    {
        "devices": ("device", "id"),
        "timeline": ("event", "type"),
        "expect": ("expectation", "alert"),
        "inputs": ("input", "tag"),
    }
)
_PRUNABLE = frozenset({"devices", "timeline", "expect"})
GAS_KINDS = ("combustible_gas", "toxic_gas", "open_path_gas", "oxygen")
_VOTING = "MooN, e.g. 2oo3"


class ScenarioError(LoadError):
    """A scenario file is invalid; ``errors`` holds every problem as ``file:line:col: ...``."""


def restrict_plant(plant: Plant, enterprises: Iterable[str]) -> Plant:
    """The plant with only ``enterprises``: what a hub instance hosting them knows."""
    keep = set(enterprises)
    if keep == set(plant.enterprises):
        return plant
    return dataclasses.replace(
        plant,
        enterprises={c: e for c, e in plant.enterprises.items() if c in keep},
        hazard_sources={c: h for c, h in plant.hazard_sources.items() if h.enterprise in keep},
        tags={k: t for k, t in plant.tags.items() if k[0] in keep},
        zones={k: z for k, z in plant.zones.items() if k[0] in keep},
        warnings=list(plant.warnings),
    )


def parse_voting(text: str) -> tuple[int, int] | None:
    m, sep, n = text.partition("oo")
    if sep and m.isdigit() and n.isdigit() and 1 <= int(m) <= int(n):
        return int(m), int(n)
    return None


@dataclass
class Scenario:
    """A validated scenario with its plant (restricted to the simulated enterprises) and rules.

    Its MQTT messages and decoded readings come from the field it simulates:
    ``simulators.world`` (``World(scenario).messages()``, ``readings_of(scenario)``).
    """

    path: str
    model: s.ScenarioModel
    plant: Plant
    pack: RulePack
    loc: Locator
    index_map: dict[YamlPath, list[int]]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def start_ms(self) -> int:
        return round(self.model.start.timestamp() * 1000)

    @property
    def duration_ms(self) -> int:
        return self.model.duration

    @property
    def enterprises(self) -> tuple[str, ...]:
        return tuple(self.plant.enterprises)

    def where(self, path: YamlPath) -> str:
        """``file:line:col`` of an item, by its path in the validated model."""
        line, col = self.loc.pos(self.original(path))
        return f"{self.path}:{line}:{col}"

    def original(self, path: YamlPath) -> YamlPath:
        if len(path) >= 2 and isinstance(path[1], int):
            return (path[0], original_index(self.index_map, (path[0],), path[1]), *path[2:])
        return path


def load_scenario(source: str | Path, *, name: str | None = None) -> Scenario:
    """A scenario from a file path, or from YAML text (``name`` labels it in messages)."""
    if isinstance(source, Path) or ("\n" not in source and Path(source).is_file()):
        path = Path(source)
        file = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(file, [f"{file}: cannot read: {exc}"]) from None
        base = path.parent
    else:
        text, file, base = source, name or "<scenario>", Path.cwd()
    return parse_scenario(text, file, base)


_LOAD_ERROR_LINE = re.compile(r"^expect_load_error[ \t]*:(.*)$", re.MULTILINE)


def declared_load_errors(text: str) -> tuple[int, tuple[str, ...]] | None:
    """(line, texts) of a file's ``expect_load_error:``, read even when the rest of the file is
    broken (the line alone when the file is not YAML); None when it declares none."""
    value: object = None
    line = 0
    try:
        parsed = parse_yaml(text)
    except YamlSyntaxError:
        parsed = None
    if parsed is not None and isinstance(parsed.data, dict):
        if "expect_load_error" not in parsed.data:
            return None
        value = parsed.data["expect_load_error"]
        line = parsed.marks.get(("expect_load_error",), (0, 0))[0]
    else:
        match = _LOAD_ERROR_LINE.search(text)
        if match is None:
            return None
        line = text.count("\n", 0, match.start()) + 1
        try:
            value = parse_yaml(match.group(1)).data
        except YamlSyntaxError:
            return None
    try:
        return line, s.expected_texts(value)
    except ValueError:
        return None


def load_error_failures(path: Path, error: ScenarioError) -> list[str] | None:
    """How a file that failed to load missed its ``expect_load_error:`` (empty: every text is
    in some error line); None when it declares none, so the errors are real errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    declared = declared_load_errors(text)
    if declared is None:
        return None
    line, texts = declared
    lowered = [e.lower() for e in error.errors]
    return [
        f"{path}:{line}:1: expected a load error containing {x!r}; the errors were:\n  "
        + "\n  ".join(error.errors)
        for x in texts
        if not any(x.lower() in e for e in lowered)
    ]


def parse_scenario(text: str, file: str, base: Path) -> Scenario:
    try:
        document = parse_document(
            file,
            text,
            s.ScenarioModel,
            OWNERS,
            _PRUNABLE,
            empty="the file is empty (expected scenario: 1, ...)",
        )
    except YamlSyntaxError as exc:
        raise ScenarioError(file, [exc.at(file)]) from None
    errors, model = document.errors, document.model
    if model is None:
        raise ScenarioError(file, [t for *_, t in sorted(_type_hint(e) for e in errors)])
    checker = _Checker(model, document.loc, document.index_map, base, errors)
    errors[:] = [_type_hint(e) for e in errors]
    scenario = checker.run(file)
    if errors or scenario is None:
        raise ScenarioError(file, [t for *_, t in sorted(set(errors))])
    return scenario


def _type_hint(error: Located) -> Located:
    """Name the accepted ``type`` values where the generic locator could not list them."""
    line, col, text = error
    names: tuple[str, ...]
    if not text.endswith("unknown type; use one of "):
        return error
    if 'device "' in text:
        names = s.DEVICE_TYPES
    elif 'event "' in text:
        names = s.EVENT_TYPES
    else:
        return error
    return line, col, text + ", ".join(names)


class _Checker:
    """The rules beyond the schema: names that must exist in the plant and the rule pack."""

    def __init__(
        self,
        model: s.ScenarioModel,
        loc: Locator,
        index_map: dict[YamlPath, list[int]],
        base: Path,
        errors: list[Located],
    ) -> None:
        self.m = model
        self.loc = loc
        self.index_map = index_map
        self.base = base
        self.errors = errors
        self.plant: Plant | None = None
        self.claimed: dict[tuple[str, str], str] = {}
        """(enterprise, tag) -> the id of the device that drives it"""

    def fail(self, path: YamlPath, message: str) -> None:
        if len(path) >= 2 and isinstance(path[1], int) and path[0] in _PRUNABLE:
            path = (path[0], original_index(self.index_map, (path[0],), path[1]), *path[2:])
        self.errors.append(self.loc.at(path, message))

    def run(self, file: str) -> Scenario | None:
        m = self.m
        plant_path = default_plant_path() if m.plant == "sample" else self._relative(m.plant)
        try:
            full = load_plant(plant_path)
        except LoadError as exc:
            self.fail(("plant",), f"cannot load the plant {plant_path}: {len(exc.errors)} error(s)")
            self.errors.extend((0, 0, f"  {e}") for e in exc.errors)
            return None
        scope = m.enterprises or list(full.enterprises)
        bad = [e for e in scope if e not in full.enterprises]
        for i, code in enumerate(m.enterprises or []):
            if code in bad:
                self.fail(
                    ("enterprises", i),
                    f"enterprise {code!r} is not in the plant; it has {', '.join(full.enterprises)}",
                )
        if bad:
            return None
        plant = restrict_plant(full, scope)
        self.plant = plant
        rules_path = self._relative(m.rules) if m.rules else default_rules_path()
        try:
            pack = load_rules(rules_path, plant)
        except LoadError as exc:
            self.fail(("rules",), f"cannot load the rules {rules_path}: {len(exc.errors)} error(s)")
            self.errors.extend((0, 0, f"  {e}") for e in exc.errors)
            return None
        if m.step < 100 or m.step > 10_000:
            self.fail(("step",), "step must lie between 100ms and 10s")
        if m.duration <= 0:
            self.fail(("duration",), "duration must be positive")
        for code in m.gateways:
            if code not in plant.enterprises:
                self.fail(("gateways", code), f"gateway of {code!r}: not a simulated enterprise")
        devices = self._devices(plant)
        self._timeline(plant, pack, devices)
        self._expectations(plant, pack)
        return Scenario(file, m, plant, pack, self.loc, self.index_map)

    def _relative(self, target: str) -> Path:
        p = Path(target)
        return p if p.is_absolute() else self.base / p

    def tag(
        self, plant: Plant, name: str, enterprise: str | None, path: YamlPath
    ) -> TagInfo | None:
        if enterprise is not None:
            if enterprise not in plant.enterprises:
                self.fail(path, f"enterprise {enterprise!r} is not simulated in this scenario")
                return None
            info = plant.tags.get((enterprise, name))
            if info is None:
                self.fail(path, f"tag {name!r} is not registered for enterprise {enterprise!r}")
            return info
        found = [t for (_, tag), t in plant.tags.items() if tag == name]
        if not found:
            self.fail(path, f"tag {name!r} is not in the plant's simulated enterprises")
            return None
        if len(found) > 1:
            owners = ", ".join(t.enterprise for t in found)
            self.fail(path, f"tag {name!r} exists in {owners}: add enterprise: to say which")
            return None
        return found[0]

    def _devices(self, plant: Plant) -> dict[str, AnyDevice]:
        seen: set[str] = set()
        out: dict[str, AnyDevice] = {}
        for i, d in enumerate(self.m.devices):
            p: YamlPath = ("devices", i)
            if d.id in seen:
                self.fail((*p, "id"), f"duplicate device id {d.id!r}")
                continue
            seen.add(d.id)
            out[d.id] = d
            if isinstance(d, s.LeakDevice):
                self._leak_device(plant, d, p)
            elif isinstance(d, s.TankDevice):
                self._tank_device(plant, d, p)
            elif isinstance(d, s.SisDevice):
                self._sis_device(plant, d, p)
            elif isinstance(d, s.DetectorDevice):
                for j, name in enumerate(d.tags):
                    self._drive(plant, d, name, GAS_KINDS, (*p, "tags", j))
            elif isinstance(d, s.ProcessDevice):
                self._drive(plant, d, d.tag, None, (*p, "tag"))
        for i, d in enumerate(self.m.devices):
            if isinstance(d, s.SisDevice) and d.closes is not None:
                target = out.get(d.closes)
                if not isinstance(target, s.TankDevice):
                    self.fail(
                        ("devices", i, "closes"),
                        f"closes {d.closes!r}: not the id of a tank device",
                    )
        return out

    def _claim(self, info: TagInfo | None, device: str, path: YamlPath) -> None:
        """``device`` drives the tag; one tag has one driver."""
        if info is None:
            return
        key = (info.enterprise, info.tag)
        if key in self.claimed:
            self.fail(path, f"tag {info.tag!r} is already driven by device {self.claimed[key]!r}")
        self.claimed[key] = device

    def _drive(
        self,
        plant: Plant,
        device: AnyDevice,
        name: str,
        kinds: tuple[str, ...] | None,
        path: YamlPath,
    ) -> TagInfo | None:
        """The tag ``name`` that ``device`` drives, when it exists and is one of ``kinds``."""
        info = self.tag(plant, name, device.enterprise, path)
        if info is not None and kinds is not None and info.kind not in kinds:
            self.fail(path, f"tag {info.tag!r} is a {info.kind} tag; expected {' or '.join(kinds)}")
            info = None
        self._claim(info, device.id, path)
        return info

    def _leak_device(self, plant: Plant, d: s.LeakDevice, p: YamlPath) -> None:
        if plant.gases.get(d.gas) is None:
            self.fail((*p, "gas"), f"gas {d.gas!r} is not in the plant's gas table")
        if d.near is not None:
            info = self.tag(plant, d.near, d.enterprise, (*p, "near"))
            if info is not None and (info.x_m is None or info.y_m is None):
                self.fail((*p, "near"), f"tag {d.near!r} has no coordinates in the plant")

    def _tank_device(self, plant: Plant, d: s.TankDevice, p: YamlPath) -> None:
        level = self._drive(plant, d, d.level, ("level",), (*p, "level"))
        if d.pressure is not None:
            self._drive(plant, d, d.pressure, ("pressure",), (*p, "pressure"))
        if d.temperature is not None:
            self._drive(plant, d, d.temperature, ("temperature",), (*p, "temperature"))
        if level is not None:
            height = d.height_m or level.range_hi * 1.05
            if d.level_m >= height:
                self.fail(
                    (*p, "level_m"),
                    f"level_m {d.level_m} is not below the tank height {height:g} m",
                )

    def _sis_device(self, plant: Plant, d: s.SisDevice, p: YamlPath) -> None:
        ent = d.enterprise
        sis_tags = [
            t
            for t in plant.tags.values()
            if t.sif == d.sif and (ent is None or t.enterprise == ent)
        ]
        if not sis_tags:
            self.fail((*p, "sif"), f"no sis_* tag of the plant belongs to SIF {d.sif!r}")
        for t in sis_tags:
            if t.kind in ("sis_trip", "sis_bypass", "sis_fault"):
                self._claim(t, d.id, (*p, "sif"))
        vote = parse_voting(d.voting)
        if vote is None:
            self.fail((*p, "voting"), f"voting {d.voting!r}: use {_VOTING}")
        elif vote[1] != len(d.inputs):
            self.fail(
                (*p, "voting"),
                f"voting {d.voting} needs {vote[1]} inputs, got {len(d.inputs)}",
            )
        if d.degrade_to is not None and parse_voting(d.degrade_to) is None:
            self.fail((*p, "degrade_to"), f"degrade_to {d.degrade_to!r}: use {_VOTING}")
        for j, inp in enumerate(d.inputs):
            self.tag(plant, inp.tag, ent, (*p, "inputs", j, "tag"))

    def _timeline(self, plant: Plant, pack: RulePack, devices: Mapping[str, AnyDevice]) -> None:
        kinds = {
            "leak_start": "leak",
            "leak_stop": "leak",
            "leak_rate": "leak",
            "tank_flow": "tank",
            "bypass_on": "sis",
            "bypass_off": "sis",
            "sis_fault": "sis",
            "sis_reset": "sis",
        }
        for i, e in enumerate(self.m.timeline):
            p: YamlPath = ("timeline", i)
            if e.at > self.m.duration:
                self.fail(
                    (*p, "at"),
                    f"at {e.at / 1000:g}s is after the end of the scenario ({self.m.duration / 1000:g}s)",
                )
            device = getattr(e, "device", None)
            if device is not None:
                want = kinds[e.type]
                found = devices.get(device)
                if found is None:
                    self.fail(
                        (*p, "device"),
                        f"no device {device!r} (devices: {', '.join(devices) or 'none'})",
                    )
                elif found.type != want:
                    self.fail(
                        (*p, "device"),
                        f"device {device!r} is a {found.type}; {e.type} needs a {want} device",
                    )
            if isinstance(e, s.DetectorFaultEvent | s.DetectorRepaired):
                info = self.tag(plant, e.tag, e.enterprise, (*p, "tag"))
                if info is not None and info.kind not in GAS_KINDS:
                    self.fail(
                        (*p, "tag"), f"tag {e.tag!r} is a {info.kind} tag, not a gas detector"
                    )
            elif isinstance(e, s.ForceValue | s.ReleaseValue | s.InjectReading):
                self.tag(plant, e.tag, e.enterprise, (*p, "tag"))
            elif isinstance(e, s.GatewayDown | s.GatewayUp | s.ClockSkew):
                self._enterprise(plant, e.enterprise, p)
            elif isinstance(e, s.OperatorEvent):
                self._alarm_ref(plant, pack, e, p)

    def _enterprise(self, plant: Plant, code: str | None, p: YamlPath) -> None:
        if code is None:
            if len(plant.enterprises) != 1:
                self.fail(p, "enterprise: is required when the scenario simulates more than one")
        elif code not in plant.enterprises:
            self.fail((*p, "enterprise"), f"enterprise {code!r} is not simulated in this scenario")

    def _alarm_ref(
        self,
        plant: Plant,
        pack: RulePack,
        e: s.Expectation | s.OperatorEvent | s.AlarmRef,
        p: YamlPath,
    ) -> None:
        if e.alert is not None and e.alert != "*" and e.alert not in pack:
            self.fail((*p, "alert"), f"alert {e.alert!r} is not in the rule pack")
        if e.enterprise is not None and e.enterprise not in plant.enterprises:
            self.fail(
                (*p, "enterprise"), f"enterprise {e.enterprise!r} is not simulated in this scenario"
            )
            return
        if e.tag is not None:
            self.tag(plant, e.tag, e.enterprise, (*p, "tag"))
        if e.zone is not None and not any(
            z == e.zone and (e.enterprise is None or ent == e.enterprise) for ent, z in plant.zones
        ):
            self.fail((*p, "zone"), f"zone {e.zone!r} is not in the plant's simulated enterprises")
        if e.hazard_source is not None and e.hazard_source not in plant.hazard_sources:
            self.fail(
                (*p, "hazard_source"),
                f"hazard source {e.hazard_source!r} is not in the plant's simulated enterprises",
            )

    def _expectations(self, plant: Plant, pack: RulePack) -> None:
        for i, x in enumerate(self.m.expect):
            p: YamlPath = ("expect", i)
            self._alarm_ref(plant, pack, x, p)
            if x.first_out is not None:
                self._alarm_ref(plant, pack, x.first_out, (*p, "first_out"))
            for key in ("raised_between", "cleared_between", "flood_between", "within"):
                window = getattr(x, key)
                if window is not None and window[0] > self.m.duration:
                    self.fail((*p, key), f"{key} starts after the end of the scenario")
            if x.state_at is not None and x.state_at > self.m.duration:
                self.fail((*p, "state_at"), "state_at is after the end of the scenario")
            if x.disposal_at is not None and x.disposal_at > self.m.duration:
                self.fail((*p, "disposal_at"), "disposal_at is after the end of the scenario")
            if x.overdue_between is not None and x.overdue_between[0] > self.m.duration:
                self.fail((*p, "overdue_between"), "overdue_between starts after the end")
