"""The resolved plant: what the rest of the hub reads (immutable after loading)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from safety_hub.registry.gases import Gas


@dataclass(frozen=True, slots=True)
class OutOfServiceInfo:
    """Why, by whom and since when a tag is out of service."""

    reason: str
    by: str
    since: datetime


@dataclass(frozen=True, slots=True)
class TagInfo:
    """One registered tag (位号) with its identifier chain and alarm configuration.

    ``setpoints`` holds l1/l2 for combustible, toxic and open-path gas detectors, l/h for oxygen,
    any of ll/l/h/hh for process values, nothing for discrete tags; values in ``eu``.
    """

    park: str
    enterprise: str
    hazard_source: str
    """"" when the tag is outside every hazard source"""
    unit: str
    equipment: str
    tag: str
    kind: str
    eu: str
    range_lo: float
    range_hi: float
    gas: str | None
    setpoints: dict[str, float] = field(hash=False)
    interval_s: float = 10.0
    """expected publishing interval, seconds"""
    zone: str | None = None
    in_service: bool = True
    out_of_service: OutOfServiceInfo | None = None
    x_m: float | None = None
    y_m: float | None = None
    name: str = ""
    voting: str | None = None
    """MooN voting of the tag's zone, e.g. 2oo3"""
    idlh_mode: bool = False
    """toxic setpoints are judged against 5/10 %IDLH instead of 100/200 %OEL"""
    sif: str | None = None
    planned_bypass_end: datetime | None = None
    longitude: float | None = None
    """WGS84 decimal degrees, when the registry gives them (``wgs84``)"""
    latitude: float | None = None
    holds_at: float | None = None
    """a value the tag legitimately holds for hours (e.g. a zero-suppressed detector at 0): an
    unchanging reading of it is not a frozen detector"""


@dataclass(frozen=True, slots=True)
class ChemicalInfo:
    name: str
    name_en: str
    cas: str | None
    category: str
    q_t: float
    Q_t: float
    beta: float
    """from the plant file when given there, else ``beta_for(category, gas or CAS)``"""


@dataclass(frozen=True, slots=True)
class HazardSourceInfo:
    """A hazard source with its GB 18218-2018 figures."""

    code: str
    name: str
    name_en: str
    enterprise: str
    kind: str
    S: float
    R: float
    alpha: float
    computed_grade: int | None
    """1–4 when ``is_major``, else None"""
    filed_grade: int | None
    grade_mismatch: bool
    is_major: bool
    chemicals: tuple[ChemicalInfo, ...]
    people_within_500m: int = 0
    units: tuple[str, ...] = ()
    longitude: float | None = None
    latitude: float | None = None


@dataclass(frozen=True, slots=True)
class EnterpriseInfo:
    code: str
    name: str
    name_en: str
    publish_interval_s: float
    hazard_sources: tuple[str, ...] = ()
    longitude: float | None = None
    latitude: float | None = None


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """Tags sharing a zone within an enterprise, and their voting (e.g. 2oo3), if any."""

    enterprise: str
    zone: str
    voting: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Plant:
    """The whole registry: park, enterprises, hazard sources and tags."""

    path: Path
    park_code: str
    park_name: str
    park_name_en: str
    gases: Mapping[str, Gas]
    enterprises: dict[str, EnterpriseInfo]
    hazard_sources: dict[str, HazardSourceInfo]
    tags: dict[tuple[str, str], TagInfo]
    """by (enterprise code, tag)"""
    zones: dict[tuple[str, str], ZoneInfo] = field(default_factory=dict)
    """by (enterprise code, zone)"""
    warnings: list[str] = field(default_factory=list)
    """problems that do not stop loading, e.g. a filed grade that disagrees with R"""
    _by_enterprise: dict[str, list[TagInfo]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for info in self.tags.values():
            self._by_enterprise.setdefault(info.enterprise, []).append(info)

    def tags_of(self, enterprise: str) -> list[TagInfo]:
        """The tags of one enterprise in file order (empty for an unknown enterprise)."""
        return list(self._by_enterprise.get(enterprise, ()))
