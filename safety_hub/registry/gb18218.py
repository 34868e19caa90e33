"""GB 18218-2018 major hazard source identification and grading.

- S = Σ qᵢ/Qᵢ (q actual quantity, Q critical quantity, both in tonnes); a major hazard source
  when S ≥ 1.
- R = α · Σ βᵢ · qᵢ/Qᵢ; grade 1 when R ≥ 100, 2 when 50 ≤ R < 100, 3 when 10 ≤ R < 50, 4 when
  R < 10.
- β by category and, for toxic gases, by the gas (GB 18218-2018 table 4); α by the number of
  people within 500 m.

The β and α values are those of /work/shared/STANDARDS.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

Category = Literal[
    "toxic_gas",
    "highly_toxic_gas",
    "flammable_gas",
    "flammable_liquid",
    "explosive",
    "water_reactive",
    "other",
]
"""Hazard category of a chemical in a hazard source; decides its β."""

CATEGORIES: tuple[str, ...] = get_args(Category)

# Toxic gases named in GB 18218-2018 table 4: key -> (CAS, β).
_TOXIC_GAS_BETA: dict[str, tuple[str, float]] = {
    "CO": ("630-08-0", 2.0),
    "SO2": ("7446-09-5", 2.0),
    "NH3": ("7664-41-7", 2.0),
    "ethylene_oxide": ("75-21-8", 2.0),
    "HCl": ("7647-01-0", 3.0),
    "methyl_bromide": ("74-83-9", 3.0),
    "Cl2": ("7782-50-5", 4.0),
    "H2S": ("7783-06-4", 5.0),
    "HF": ("7664-39-3", 5.0),
    "NO2": ("10102-44-0", 10.0),
    "HCN": ("74-90-8", 10.0),
    "phosgene": ("75-44-5", 20.0),
    "PH3": ("7803-51-2", 20.0),
    "methyl_isocyanate": ("624-83-9", 20.0),
}

TOXIC_GAS_BETA: Mapping[str, float] = MappingProxyType(
    {
        **{key.lower(): beta for key, (_, beta) in _TOXIC_GAS_BETA.items()},
        **{cas: beta for cas, beta in _TOXIC_GAS_BETA.values()},
    }
)
"""β of the toxic gases named in the standard, by lower-case key and by CAS number."""

_UNLISTED_TOXIC_BETA = {"toxic_gas": 2.0, "highly_toxic_gas": 4.0}
_CATEGORY_BETA = {
    "flammable_gas": 1.5,
    "explosive": 2.0,
    # STANDARDS.md: "others 1". GB 18218-2018 table 3 is believed to give 1.5 to some
    # flammable-liquid classes (unconfirmed): put an explicit `beta` in the plant file for those.
    "flammable_liquid": 1.0,
    "water_reactive": 1.0,
    "other": 1.0,
}


def beta_for(category: str, gas: str | None = None) -> float:
    """β of a chemical: a named toxic gas by key (e.g. ``Cl2``) or CAS number, else by category.

    Unlisted toxic gases take 2, unlisted highly toxic gases 4, flammable gases 1.5,
    explosives 2, everything else 1.
    """
    if category in _UNLISTED_TOXIC_BETA:
        listed = TOXIC_GAS_BETA.get(gas.lower()) if gas else None
        return listed if listed is not None else _UNLISTED_TOXIC_BETA[category]
    if category in _CATEGORY_BETA:
        return _CATEGORY_BETA[category]
    raise ValueError(f"unknown hazard category {category!r}; expected one of {CATEGORIES}")


def alpha_for(people_within_500m: int) -> float:
    """α from the number of people within 500 m of the hazard source.

    ≥ 100 → 2.0; 50–99 → 1.5; 30–49 → 1.2; 1–29 → 1.0; 0 → 0.5. The standard's band is
    "100 人以上", which in Chinese standards includes 100 (STANDARDS.md writes "> 100").
    """
    if people_within_500m < 0:
        raise ValueError(f"people_within_500m={people_within_500m} must not be negative")
    if people_within_500m >= 100:
        return 2.0
    if people_within_500m >= 50:
        return 1.5
    if people_within_500m >= 30:
        return 1.2
    if people_within_500m >= 1:
        return 1.0
    return 0.5


def grade_for(r: float) -> int:
    """Grade 1–4 from R (1 is the most dangerous)."""
    r = round(r, 9)  # 1.2 * 250/3 and friends must not fall off a band edge
    if r >= 100:
        return 1
    if r >= 50:
        return 2
    if r >= 10:
        return 3
    return 4


@dataclass(frozen=True, slots=True)
class Assessment:
    """Result of the GB 18218 computation for one hazard source."""

    S: float
    R: float
    alpha: float
    is_major: bool
    grade: int | None
    """1–4 for a major hazard source, None otherwise"""


def assess(chemicals: Iterable[tuple[float, float, float]], people_within_500m: int) -> Assessment:
    """S, R, α and grade from ``(q, Q, β)`` per chemical and the people within 500 m."""
    s = 0.0
    weighted = 0.0
    for q, big_q, beta in chemicals:
        s += q / big_q
        weighted += beta * q / big_q
    alpha = alpha_for(people_within_500m)
    r = alpha * weighted
    is_major = round(s, 9) >= 1
    return Assessment(
        S=s, R=r, alpha=alpha, is_major=is_major, grade=grade_for(r) if is_major else None
    )
