"""Load, validate and resolve a plant registry file.

Three passes, and every problem of all three is reported at once:

1. YAML, keeping the position of every key (``safety_hub.yamlfile``); duplicate keys are
   problems.
2. Pydantic models (``schema``): shape, types, allowed words, bounds. When this fails, the
   entities (enterprise, hazard source, unit, equipment, tag) that hold an error are left out and
   the rest is validated again, so that pass 3 still checks everything that is valid on its own.
3. Cross-field rules: uniqueness, GB/T 50493 setpoint limits (``checks``), tank overfill,
   voting groups, and the GB 18218 computation (a grade that disagrees is a warning).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from safety_hub.errors import RegistryError
from safety_hub.registry.checks import check_tag, setpoints_of, tag_range
from safety_hub.registry.gases import BUILTIN_GASES, Gas
from safety_hub.registry.gb18218 import assess, beta_for
from safety_hub.registry.model import (
    ChemicalInfo,
    EnterpriseInfo,
    HazardSourceInfo,
    OutOfServiceInfo,
    Plant,
    TagInfo,
    ZoneInfo,
)
from safety_hub.registry.schema import (
    EnterpriseModel,
    HazardSourceModel,
    PlantDoc,
    TagModel,
)
from safety_hub.yamlfile import (
    Located,
    Locator,
    PathNames,
    YamlPath,
    YamlSyntaxError,
    parse_document,
    show,
)

T = TypeVar("T")

_PRUNABLE = frozenset({"enterprises", "hazard_sources", "units", "equipment", "tags"})

ENTITY_LISTS: dict[str, str] = {
    "enterprises": "code",
    "hazard_sources": "code",
    "units": "code",
    "equipment": "code",
    "tags": "tag",
    "chemicals": "name",
}
"""Lists whose items are entities, and the field that names each item in messages."""
_KEYED = ("gases",)
"""Top-level mappings whose entries are entities named by their key."""
PLANT_NAMES = PathNames(ENTITY_LISTS, keyed=_KEYED)
"""Messages name the innermost entity: ``enterprises[0].tags[3] "GT-1101"``, ``gases "Cl2"``."""


def default_plant_path() -> Path:
    """The bundled sample park (``safety_hub/plants/sample_park.yaml``)."""
    return Path(__file__).resolve().parent.parent / "plants" / "sample_park.yaml"


def load_plant(path: str | Path) -> Plant:
    """Load a plant registry file; raise ``RegistryError`` listing every problem as
    ``file:line:col: message``."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(file, [f"{file}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise RegistryError(
            file, [f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}"]
        ) from None
    return parse_plant(text, file)


def parse_plant(text: str, file: str = "<plant>") -> Plant:
    """Like ``load_plant`` for text already in memory; ``file`` names it in messages."""
    try:
        # the plant schema has no unions of models: nothing in an error's path is a union tag
        document = parse_document(
            file,
            text,
            PlantDoc,
            PLANT_NAMES,
            _PRUNABLE,
            empty="the file is empty",
            keyed=_KEYED,
            discriminator=None,
        )
    except YamlSyntaxError as exc:
        raise RegistryError(file, [exc.at(file)]) from None
    errors, doc = document.errors, document.model
    if doc is None:
        raise RegistryError(file, [text for *_, text in sorted(errors)])
    # a gas whose own entry is broken (already reported) judges no tag
    broken_gases = {str(path[1]) for path in document.dropped if path[0] == "gases"}
    build = _Build(Path(file), doc, document.loc, document.index_map, broken_gases)
    errors.extend(build.errors)
    if errors:
        raise RegistryError(file, [text for *_, text in sorted(errors)])
    return build.plant()


class _Build:
    """Pass 3: cross-field rules and the resolved ``Plant``."""

    def __init__(
        self,
        path: Path,
        doc: PlantDoc,
        loc: Locator,
        index_map: dict[YamlPath, list[int]],
        broken_gases: set[str],
    ) -> None:
        self.path = path
        self.doc = doc
        self.loc = loc
        self.index_map = index_map
        self.broken_gases = broken_gases
        self.errors: list[Located] = []
        self.warnings: list[Located] = []
        self.gases = self._gases()
        self.enterprises: dict[str, EnterpriseInfo] = {}
        self.hazard_sources: dict[str, HazardSourceInfo] = {}
        self.tags: dict[tuple[str, str], TagInfo] = {}
        self.zones: dict[tuple[str, str], ZoneInfo] = {}
        self._first: dict[tuple[str, ...], YamlPath] = {}
        self._zone_members: dict[tuple[str, str], list[tuple[YamlPath, TagModel]]] = {}
        for e_path, ent in self._items(("enterprises",), doc.enterprises):
            self._enterprise(e_path, ent)
        self._check_zones()

    # helpers -------------------------------------------------------------------------------

    def _items(self, list_path: YamlPath, seq: Sequence[T]) -> Iterator[tuple[YamlPath, T]]:
        """Items with their path in the file (indices survive the pruning of pass 2)."""
        original = self.index_map.get(list_path)
        for i, item in enumerate(seq):
            yield (*list_path, original[i] if original is not None else i), item

    def _error(self, path: YamlPath, message: str) -> None:
        self.errors.append(self.loc.at(path, message))

    def _unique(self, scope: tuple[str, ...], what: str, path: YamlPath, where: str = "") -> bool:
        """False (and an error) when ``scope`` was seen before; its last element is the code."""
        first = self._first.get(scope)
        if first is None:
            self._first[scope] = path
            return True
        line, _ = self.loc.pos(first)
        self._error(path, f"duplicate {what} {show(scope[-1])}{where} (first at line {line})")
        return False

    # gases ---------------------------------------------------------------------------------

    def _gases(self) -> dict[str, Gas]:
        table = dict(BUILTIN_GASES)
        for key, entry in self.doc.gases.items():
            path = ("gases", key)
            given = {
                name: getattr(entry, name)
                for name in entry.model_fields_set
                # a null name or mw keeps the built-in value; a null limit removes it
                if not (name in ("name", "name_en", "mw") and getattr(entry, name) is None)
            }
            base = table.get(key)
            if base is None:
                if entry.mw is None:
                    self._error(path, f"new gas {show(key)} needs mw (molecular weight, g/mol)")
                    self.broken_gases.add(key)
                    continue
                base = Gas(key=key, name=key, name_en="", cas=None, mw=entry.mw)
            unconfirmed = tuple(f for f in base.unconfirmed if f not in given)
            table[key] = dataclasses.replace(base, **given, unconfirmed=unconfirmed)
        return table

    # tree ----------------------------------------------------------------------------------

    def _enterprise(self, e_path: YamlPath, ent: EnterpriseModel) -> None:
        if not self._unique(("enterprise", ent.code), "enterprise code", (*e_path, "code")):
            return
        hs_codes: list[str] = []
        for hs_path, hs in self._items((*e_path, "hazard_sources"), ent.hazard_sources):
            if self._unique(("hazard_source", hs.code), "hazard source code", (*hs_path, "code")):
                self._hazard_source(hs_path, ent, hs)
                hs_codes.append(hs.code)
        equipment_groups: dict[str, list[tuple[YamlPath, TagModel]]] = {}
        for t_path, tag in self._items((*e_path, "tags"), ent.tags):
            if self._tag(t_path, ent, tag, "", "", tag.equipment or ""):
                key = tag.equipment if tag.equipment else f"\0{t_path}"
                equipment_groups.setdefault(key, []).append((t_path, tag))
        for members in equipment_groups.values():
            self._check_overfill(members)
        self.enterprises[ent.code] = EnterpriseInfo(
            code=ent.code,
            name=ent.name,
            name_en=ent.name_en,
            publish_interval_s=ent.publish_interval_s,
            hazard_sources=tuple(hs_codes),
            longitude=ent.wgs84.longitude if ent.wgs84 else None,
            latitude=ent.wgs84.latitude if ent.wgs84 else None,
        )

    def _hazard_source(
        self, hs_path: YamlPath, ent: EnterpriseModel, hs: HazardSourceModel
    ) -> None:
        chemicals = tuple(
            ChemicalInfo(
                name=c.name,
                name_en=c.name_en,
                cas=c.cas,
                category=c.category,
                q_t=c.q_t,
                Q_t=c.Q_t,
                beta=c.beta if c.beta is not None else beta_for(c.category, c.gas or c.cas),
            )
            for c in hs.chemicals
        )
        result = assess(((c.q_t, c.Q_t, c.beta) for c in chemicals), hs.people_within_500m)
        mismatch = hs.filed_grade is not None and hs.filed_grade != result.grade
        figures = f"S={result.S:.3g}, R={result.R:.3g}, α={result.alpha:g}"
        if mismatch and result.grade is None:
            self._warn(
                (*hs_path, "filed_grade"),
                f"filed_grade {hs.filed_grade} but {figures}: S < 1 is not a major hazard source",
            )
        elif mismatch:
            self._warn(
                (*hs_path, "filed_grade"),
                f"filed_grade {hs.filed_grade} disagrees with the computed grade {result.grade} ({figures})",
            )
        elif result.is_major and hs.filed_grade is None:
            self._warn(
                hs_path,
                f"major hazard source without filed_grade (computed grade {result.grade}, {figures})",
            )

        unit_codes: list[str] = []
        for u_path, unit in self._items((*hs_path, "units"), hs.units):
            if not self._unique(
                ("unit", hs.code, unit.code), "unit code", (*u_path, "code"), f" in {hs.code}"
            ):
                continue
            unit_codes.append(unit.code)
            for q_path, eq in self._items((*u_path, "equipment"), unit.equipment):
                if not self._unique(
                    ("equipment", ent.code, eq.code),
                    "equipment code",
                    (*q_path, "code"),
                    f" in enterprise {ent.code}",
                ):
                    continue
                group: list[tuple[YamlPath, TagModel]] = []
                for t_path, tag in self._items((*q_path, "tags"), eq.tags):
                    if self._tag(t_path, ent, tag, hs.code, unit.code, eq.code):
                        group.append((t_path, tag))
                self._check_overfill(group)

        self.hazard_sources[hs.code] = HazardSourceInfo(
            code=hs.code,
            name=hs.name,
            name_en=hs.name_en,
            enterprise=ent.code,
            kind=hs.kind,
            S=result.S,
            R=result.R,
            alpha=result.alpha,
            computed_grade=result.grade,
            filed_grade=hs.filed_grade,
            grade_mismatch=mismatch,
            is_major=result.is_major,
            chemicals=chemicals,
            people_within_500m=hs.people_within_500m,
            units=tuple(unit_codes),
            longitude=hs.wgs84.longitude if hs.wgs84 else None,
            latitude=hs.wgs84.latitude if hs.wgs84 else None,
        )

    def _warn(self, path: YamlPath, message: str) -> None:
        self.warnings.append(self.loc.at(path, message))

    def _tag(
        self,
        t_path: YamlPath,
        ent: EnterpriseModel,
        tag: TagModel,
        hs: str,
        unit: str,
        equipment: str,
    ) -> bool:
        unique = self._unique(
            ("tag", ent.code, tag.tag), "tag", (*t_path, "tag"), f" in enterprise {ent.code}"
        )
        for sub, message in check_tag(tag, self.gases, self.broken_gases):
            self._error((*t_path, *sub), message)
        if not unique:
            return False
        rng = tag_range(tag) or (0.0, 0.0)
        oos = tag.out_of_service
        self.tags[(ent.code, tag.tag)] = TagInfo(
            park=self.doc.park.code,
            enterprise=ent.code,
            hazard_source=hs,
            unit=unit,
            equipment=equipment,
            tag=tag.tag,
            kind=tag.kind,
            eu=tag.eu,
            range_lo=rng[0],
            range_hi=rng[1],
            gas=tag.gas,
            setpoints=setpoints_of(tag),
            interval_s=tag.interval_s if tag.interval_s is not None else ent.publish_interval_s,
            zone=tag.zone,
            in_service=tag.in_service,
            out_of_service=OutOfServiceInfo(oos.reason, oos.by, oos.since) if oos else None,
            x_m=tag.coordinates.x_m if tag.coordinates else None,
            y_m=tag.coordinates.y_m if tag.coordinates else None,
            name=tag.name,
            voting=tag.voting,
            idlh_mode=tag.idlh_mode,
            sif=tag.sis.sif if tag.sis else None,
            planned_bypass_end=tag.sis.planned_bypass_end if tag.sis else None,
            holds_at=tag.holds_at,
            longitude=tag.wgs84.longitude if tag.wgs84 else None,
            latitude=tag.wgs84.latitude if tag.wgs84 else None,
        )
        if tag.zone is not None:
            self._zone_members.setdefault((ent.code, tag.zone), []).append((t_path, tag))
        return True

    # rules across tags ---------------------------------------------------------------------

    def _check_overfill(self, group: Sequence[tuple[YamlPath, TagModel]]) -> None:
        """A level tag with h needs hh, on itself or on another level tag of the equipment."""
        levels = [(p, t) for p, t in group if t.kind == "level"]
        if any(t.setpoints.hh is not None for _, t in levels):
            return
        for t_path, tag in levels:
            if tag.setpoints.h is not None:
                self._error(
                    (*t_path, "setpoints", "h"),
                    f"level tag has h={tag.setpoints.h:g} but no hh: a tank needs an independent "
                    "high-high (overfill) alarm",
                )

    def _check_zones(self) -> None:
        for (enterprise, zone), members in self._zone_members.items():
            votes = [t.voting for _, t in members if t.voting is not None]
            names = tuple(t.tag for _, t in members)
            voting = votes[0] if votes else None
            self.zones[(enterprise, zone)] = ZoneInfo(enterprise, zone, voting, names)
            if voting is None:
                continue
            for t_path, tag in members:
                if tag.voting != voting:
                    self._error(
                        (*t_path, "voting" if tag.voting else "zone"),
                        f"zone {show(zone)} votes {voting} but this tag has voting "
                        f"{tag.voting or 'unset'}: every tag of a voting zone carries the same voting",
                    )
            first_path = members[0][0]
            needed = int(voting.split("oo")[1])
            if len(members) != needed:
                self._error(
                    (*first_path, "zone"),
                    f"zone {show(zone)} votes {voting} but has {len(members)} tag(s) "
                    f"({', '.join(names)}); it needs exactly {needed}",
                )
            if len({(t.kind, t.gas) for _, t in members}) > 1:
                self._error(
                    (*first_path, "zone"),
                    f"voting zone {show(zone)} mixes kinds or gases: "
                    + ", ".join(f"{t.tag} {t.kind}/{t.gas}" for _, t in members),
                )

    # result --------------------------------------------------------------------------------

    def plant(self) -> Plant:
        return Plant(
            path=self.path,
            park_code=self.doc.park.code,
            park_name=self.doc.park.name,
            park_name_en=self.doc.park.name_en,
            gases=self.gases,
            enterprises=self.enterprises,
            hazard_sources=self.hazard_sources,
            tags=self.tags,
            zones=self.zones,
            warnings=[text for *_, text in sorted(self.warnings)],
        )
