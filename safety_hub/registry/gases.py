"""Built-in gas table and ppm ↔ mg/m³ conversion.

Values are in mg/m³ (OEL, IDLH) and %VOL (LEL). OEL is the MAC where one exists, else the
PC-TWA (GBZ 2.1), as GB/T 50493-2019 asks. The OEL and IDLH values of H2S, CO, NH3, Cl2, benzene
and HCN (OEL only) are those of /work/shared/STANDARDS.md. Every other value that could not be
checked against the official text is listed in ``Gas.unconfirmed`` (and marked "(unconfirmed)" in
the comments here and in docs/registry.md); a plant file may override any of them under
``gases:``.

Conversion is at 25 °C and 101.325 kPa, where one mole of an ideal gas takes 24.45 L:
``mg/m³ = ppm × MW / 24.45``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

MOLAR_VOLUME_L = 24.45
"""Litres per mole of an ideal gas at 25 °C and 101.325 kPa."""

OelType = Literal["MAC", "PC-TWA"]


@dataclass(frozen=True, slots=True)
class Gas:
    """One gas: identity, flammability and toxicity limits."""

    key: str
    name: str
    name_en: str
    cas: str | None
    mw: float
    """molecular weight, g/mol"""
    lel_vol: float | None = None
    """lower explosive limit, %VOL; None when not combustible"""
    oel_type: OelType | None = None
    oel_mg_m3: float | None = None
    """occupational exposure limit (MAC, else PC-TWA), mg/m³; None when not toxic"""
    idlh_mg_m3: float | None = None
    """immediately dangerous to life or health, mg/m³"""
    unconfirmed: tuple[str, ...] = ()
    """names of the fields above whose value could not be confirmed against the standard"""

    @property
    def combustible(self) -> bool:
        return self.lel_vol is not None

    @property
    def toxic(self) -> bool:
        return self.oel_mg_m3 is not None


def ppm_to_mg_m3(ppm: float, mw: float) -> float:
    """Volume fraction (ppm) to mass concentration (mg/m³) at 25 °C, 101.325 kPa."""
    return ppm * mw / MOLAR_VOLUME_L


def mg_m3_to_ppm(mg_m3: float, mw: float) -> float:
    """Mass concentration (mg/m³) to volume fraction (ppm) at 25 °C, 101.325 kPa."""
    return mg_m3 * MOLAR_VOLUME_L / mw


def to_mg_m3(value: float, eu: str, gas: Gas) -> float:
    """A toxic-gas value in ``ppm`` or ``mg/m3`` as mg/m³."""
    if eu == "mg/m3":
        return value
    if eu == "ppm":
        return ppm_to_mg_m3(value, gas.mw)
    raise ValueError(f"cannot convert {eu!r} to mg/m³")


_BUILTIN = (
    # H2S: OEL MAC 10, IDLH 430 (STANDARDS.md). LEL 4.0 %VOL from NIOSH (unconfirmed: GB/T 50493
    # appendix not checked; some sources give 4.3).
    Gas("H2S", "硫化氢", "hydrogen sulfide", "7783-06-4", 34.08, 4.0, "MAC", 10.0, 430.0,
        unconfirmed=("lel_vol",)),
    # CO: OEL PC-TWA 20, IDLH 1700 (STANDARDS.md). LEL 12.5 %VOL from NIOSH (unconfirmed).
    Gas("CO", "一氧化碳", "carbon monoxide", "630-08-0", 28.01, 12.5, "PC-TWA", 20.0, 1700.0,
        unconfirmed=("lel_vol",)),
    # NH3: OEL PC-TWA 20, IDLH 360 (STANDARDS.md). LEL 15.0 %VOL from NIOSH (unconfirmed).
    Gas("NH3", "氨", "ammonia", "7664-41-7", 17.03, 15.0, "PC-TWA", 20.0, 360.0,
        unconfirmed=("lel_vol",)),
    # Cl2: OEL MAC 1, IDLH 88 (STANDARDS.md). Not combustible.
    Gas("Cl2", "氯气", "chlorine", "7782-50-5", 70.90, None, "MAC", 1.0, 88.0),
    # Benzene: LEL 1.2 %VOL, OEL PC-TWA 6, IDLH 9800 (STANDARDS.md and the brief).
    Gas("benzene", "苯", "benzene", "71-43-2", 78.11, 1.2, "PC-TWA", 6.0, 9800.0),
    # HCN: OEL MAC 1 (STANDARDS.md). LEL 5.6 %VOL from NIOSH (unconfirmed). IDLH 55 mg/m³ is
    # NIOSH's 50 ppm converted (unconfirmed: the Chinese reference value may differ).
    Gas("HCN", "氰化氢", "hydrogen cyanide", "74-90-8", 27.03, 5.6, "MAC", 1.0, 55.0,
        unconfirmed=("lel_vol", "idlh_mg_m3")),
    # Methane: LEL 5.0 %VOL.
    Gas("CH4", "甲烷", "methane", "74-82-8", 16.04, 5.0),
    # Hydrogen: LEL 4.0 %VOL.
    Gas("H2", "氢气", "hydrogen", "1333-74-0", 2.016, 4.0),
    # Methanol vapour: LEL 6.0 %VOL. OEL PC-TWA 25 (GBZ 2.1, unconfirmed); IDLH 7860 mg/m³ is
    # NIOSH's 6000 ppm converted (unconfirmed).
    Gas("methanol", "甲醇", "methanol", "67-56-1", 32.04, 6.0, "PC-TWA", 25.0, 7860.0,
        unconfirmed=("oel_mg_m3", "idlh_mg_m3")),
    # Ethylene: LEL 2.7 %VOL (unconfirmed).
    Gas("ethylene", "乙烯", "ethylene", "74-85-1", 28.05, 2.7, unconfirmed=("lel_vol",)),
    # Natural gas: a mixture; taken as methane: MW 16.04 and LEL 5.0 %VOL (both unconfirmed:
    # they depend on the composition).
    Gas("natural_gas", "天然气", "natural gas", "8006-14-2", 16.04, 5.0,
        unconfirmed=("mw", "lel_vol")),
)  # fmt: skip

BUILTIN_GASES: Mapping[str, Gas] = MappingProxyType({g.key: g for g in _BUILTIN})
"""The built-in gas table, by key (the ``gas:`` of a tag)."""
