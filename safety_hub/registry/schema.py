"""Pydantic models of the plant registry file (docs/registry.md).

These check the shape and the value of each field on its own: unknown keys, types, allowed
words, number bounds. Rules that relate several fields (setpoint limits, uniqueness, voting
groups) live in ``checks.py`` and ``loader.py`` so that every problem carries its own position.

All models are strict (YAML already gives typed values: ``yes`` is a boolean, ``0101`` is a
number): a string field wants a string, a number field a number. Times are the exception: an
ISO-8601 string is accepted as well as a YAML timestamp, and both need an offset.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from safety_hub.registry.gb18218 import Category

TagKind = Literal[
    "combustible_gas",
    "toxic_gas",
    "oxygen",
    "open_path_gas",
    "level",
    "pressure",
    "temperature",
    "flow",
    "sis_trip",
    "sis_bypass",
    "sis_fault",
    "sis_status",
    "analyzer",
    "status",
]
TAG_KINDS: tuple[str, ...] = get_args(TagKind)

Eu = Literal[
    "%LEL", "ppm", "mg/m3", "%VOL", "LEL·m", "m", "%", "MPa", "kPa", "°C", "m3/h", "t/h", ""
]
EUS: tuple[str, ...] = get_args(Eu)

_CODE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CAS = re.compile(r"(\d{2,7})-(\d{2})-(\d)")
_VOTING = re.compile(r"([1-9])oo([1-9])")


def _topic_code(value: str) -> str:
    if not _CODE.fullmatch(value):
        raise ValueError(
            "must be lower-case letters, digits, '-' or '_', starting with a letter or digit "
            "(it is part of MQTT topics)"
        )
    if len(value) > 64:
        raise ValueError("must be at most 64 characters")
    return value


def _label(value: str) -> str:
    """A 位号 or code: any printable text on one line, as a line-protocol tag value allows."""
    if not value:
        raise ValueError("must not be empty")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if not value.isprintable():
        raise ValueError("must not contain newlines, tabs or other control characters")
    if value.endswith("\\"):
        raise ValueError("must not end with a backslash")
    return value


def _text(value: str) -> str:
    """A name: one line of text, not empty."""
    if not value.strip():
        raise ValueError("must not be empty")
    if not value.isprintable():
        raise ValueError("must be one line without control characters")
    return value


def _optional_text(value: str) -> str:
    return _text(value) if value else value


def _cas(value: str) -> str:
    match = _CAS.fullmatch(value)
    if not match:
        raise ValueError("is not a CAS number (NNNNNNN-NN-N)")
    digits = (match.group(1) + match.group(2))[::-1]
    check = sum((i + 1) * int(d) for i, d in enumerate(digits)) % 10
    if check != int(match.group(3)):
        raise ValueError(f"has a wrong check digit (expected {check})")
    return value


def _voting(value: str) -> str:
    match = _VOTING.fullmatch(value)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ValueError("must be MooN with M ≤ N, e.g. 2oo3")
    return value


TopicCode = Annotated[str, AfterValidator(_topic_code)]
Label = Annotated[str, AfterValidator(_label)]
Text = Annotated[str, AfterValidator(_text)]
OptText = Annotated[str, AfterValidator(_optional_text)]
Cas = Annotated[str, AfterValidator(_cas)]
Voting = Annotated[str, AfterValidator(_voting)]
Time = Annotated[AwareDatetime, Field(strict=False)]
Positive = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GasModel(_Model):
    """An addition to, or an override of, the built-in gas table. Unset fields keep the
    built-in value; a new gas needs at least ``mw``."""

    name: OptText | None = None
    name_en: OptText | None = None
    cas: Cas | None = None
    mw: Positive | None = None
    lel_vol: Annotated[float, Field(gt=0, lt=100)] | None = None
    oel_type: Literal["MAC", "PC-TWA"] | None = None
    oel_mg_m3: Positive | None = None
    idlh_mg_m3: Positive | None = None


class Coordinates(_Model):
    """Metres in the park's local grid: x east, y north of the grid origin."""

    x_m: float
    y_m: float


class Wgs84(_Model):
    """A WGS84 position in decimal degrees (what the provincial uplink reports)."""

    longitude: Annotated[float, Field(ge=-180, le=180)]
    latitude: Annotated[float, Field(ge=-90, le=90)]


class OutOfService(_Model):
    reason: Text
    by: Text
    since: Time


class Sis(_Model):
    sif: Label
    planned_bypass_end: Time | None = None


class Setpoints(_Model):
    """Alarm setpoints in the tag's unit: l1/l2 for gas detectors, l/h for oxygen, any of
    ll/l/h/hh for process values."""

    l1: float | None = None
    l2: float | None = None
    ll: float | None = None
    l: float | None = None  # noqa: E741 - the standard's name for the low alarm
    h: float | None = None
    hh: float | None = None


class TagModel(_Model):
    tag: Label
    name: OptText = ""
    kind: TagKind
    eu: Eu = ""
    range: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    gas: Label | None = None
    idlh_mode: bool = False
    setpoints: Setpoints = Setpoints()
    interval_s: Positive | None = None
    zone: Label | None = None
    voting: Voting | None = None
    in_service: bool = True
    out_of_service: OutOfService | None = None
    coordinates: Coordinates | None = None
    wgs84: Wgs84 | None = None
    sis: Sis | None = None
    holds_at: float | None = None
    """a value the detector legitimately holds for hours (zero suppression): not frozen"""


class EnterpriseTagModel(TagModel):
    """A tag outside any hazard source; names its equipment itself."""

    equipment: Label | None = None


class EquipmentModel(_Model):
    code: Label
    name: Text
    name_en: OptText = ""
    tags: list[TagModel] = []


class UnitModel(_Model):
    code: Label
    name: Text
    name_en: OptText = ""
    equipment: list[EquipmentModel] = []


class ChemicalModel(_Model):
    name: Text
    name_en: OptText = ""
    cas: Cas | None = None
    gas: Label | None = None
    """key into the gas table or the β table, when the CAS number is not enough"""
    category: Category
    q_t: Annotated[float, Field(ge=0)]
    Q_t: Positive
    beta: Positive | None = None


class HazardSourceModel(_Model):
    code: Label
    name: Text
    name_en: OptText = ""
    kind: Literal["storage", "production"]
    chemicals: Annotated[list[ChemicalModel], Field(min_length=1)]
    people_within_500m: Annotated[int, Field(ge=0)]
    filed_grade: Literal[1, 2, 3, 4] | None = None
    wgs84: Wgs84 | None = None
    units: list[UnitModel] = []


class EnterpriseModel(_Model):
    code: TopicCode
    name: Text
    name_en: OptText = ""
    publish_interval_s: Positive = 10.0
    wgs84: Wgs84 | None = None
    hazard_sources: list[HazardSourceModel] = []
    tags: list[EnterpriseTagModel] = []


class ParkModel(_Model):
    code: TopicCode
    name: Text
    name_en: OptText = ""


class PlantDoc(_Model):
    version: Literal[1]
    park: ParkModel
    gases: dict[Label, GasModel] = {}
    enterprises: list[EnterpriseModel]
