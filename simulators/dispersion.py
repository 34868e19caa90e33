"""Gaussian plume dispersion of a continuous leak, with the Briggs rural sigma curves.

Ground-level concentration downwind of a continuous point source (Turner 1970; Seinfeld and
Pandis, *Atmospheric Chemistry and Physics*, ch. 18), with total reflection at the ground:

    C(x, y, 0) = Q / (π · u · σy · σz) · exp(−y² / 2σy²) · exp(−H² / 2σz²)

C in g/m³, Q the release rate in g/s, u the wind speed in m/s at release height, x the downwind
and y the crosswind distance in m, H the release height in m. σy(x) and σz(x) are the Briggs
(1973) formulas for open (rural) country, Pasquill stability classes A (very unstable) to
F (moderately stable), as tabulated by Turner, *Workbook of Atmospheric Dispersion Estimates*
(2nd ed., 1994) and Seinfeld and Pandis table 18.3:

    class  σy                         σz
    A      0.22 x (1 + 0.0001 x)^-½   0.20 x
    B      0.16 x (1 + 0.0001 x)^-½   0.12 x
    C      0.11 x (1 + 0.0001 x)^-½   0.08 x (1 + 0.0002 x)^-½
    D      0.08 x (1 + 0.0001 x)^-½   0.06 x (1 + 0.0015 x)^-½
    E      0.06 x (1 + 0.0001 x)^-½   0.03 x (1 + 0.0003 x)^-1
    F      0.04 x (1 + 0.0001 x)^-½   0.016 x (1 + 0.0003 x)^-1

The curves are fitted for 100 m to 10 km; detectors a few metres from a leak are far inside
that. Two guards keep the near field finite and honest: an initial source spread σ0 (default
1 m, the size of a flange or a valve body) added in quadrature, σ = √(σ(x)² + σ0²), and no
concentration upwind of, or abeam of, the source (x ≤ 0). Concentrations are converted to ppm at 25 °C and
101.325 kPa (molar volume 24.45 L/mol).

Wind direction follows the meteorological convention: the direction the wind blows **from**,
degrees clockwise from north (270 = a west wind, blowing towards the east). The park grid is
x east, y north (docs/registry.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MOLAR_VOLUME_L = 24.45
STABILITY_CLASSES = ("A", "B", "C", "D", "E", "F")

# (a_y, a_z, b_z, exponent_z) of σy = a_y·x·(1+0.0001x)^-½ and σz = a_z·x·(1+b_z·x)^exponent_z
_BRIGGS_RURAL: dict[str, tuple[float, float, float, float]] = {
    "A": (0.22, 0.20, 0.0, 0.0),
    "B": (0.16, 0.12, 0.0, 0.0),
    "C": (0.11, 0.08, 0.0002, -0.5),
    "D": (0.08, 0.06, 0.0015, -0.5),
    "E": (0.06, 0.03, 0.0003, -1.0),
    "F": (0.04, 0.016, 0.0003, -1.0),
}


def briggs_rural_sigmas(x_m: float, stability: str) -> tuple[float, float]:
    """σy and σz (m) at downwind distance ``x_m`` for a Pasquill stability class."""
    try:
        a_y, a_z, b_z, e_z = _BRIGGS_RURAL[stability]
    except KeyError:
        raise ValueError(
            f"stability class {stability!r}: use one of {', '.join(STABILITY_CLASSES)}"
        ) from None
    sigma_y = a_y * x_m * (1.0 + 0.0001 * x_m) ** -0.5
    sigma_z = a_z * x_m * ((1.0 + b_z * x_m) ** e_z if b_z else 1.0)
    return sigma_y, sigma_z


@dataclass(frozen=True, slots=True)
class Wind:
    speed_m_s: float
    from_deg: float
    """meteorological direction: where the wind comes from, degrees clockwise from north"""
    stability: str = "D"

    def __post_init__(self) -> None:
        if not self.speed_m_s > 0:
            raise ValueError(f"wind speed {self.speed_m_s} m/s: must be > 0 (calm is not modelled)")
        if self.stability not in _BRIGGS_RURAL:
            raise ValueError(
                f"stability class {self.stability!r}: use one of {', '.join(STABILITY_CLASSES)}"
            )

    def downwind_unit(self) -> tuple[float, float]:
        """Unit vector (east, north) the wind blows towards."""
        rad = math.radians(self.from_deg)
        return -math.sin(rad), -math.cos(rad)


def plume_coordinates(
    source: tuple[float, float], receptor: tuple[float, float], wind: Wind
) -> tuple[float, float]:
    """(downwind x, crosswind y) of ``receptor`` relative to ``source``, metres."""
    dx, dy = receptor[0] - source[0], receptor[1] - source[1]
    ux, uy = wind.downwind_unit()
    # rounded to the nanometre: sin/cos of whole angles leave 1e-16 residues that would put a
    # receptor exactly abeam of the source a hair downwind of it
    along = round(dx * ux + dy * uy, 9)
    across = round(-dx * uy + dy * ux, 9)
    return along, across


def plume_concentration_g_m3(
    rate_g_s: float,
    x_m: float,
    y_m: float,
    wind: Wind,
    *,
    height_m: float = 0.0,
    sigma0_m: float = 1.0,
) -> float:
    """Ground-level concentration (g/m³) at downwind ``x_m``, crosswind ``y_m`` (formula above)."""
    if rate_g_s <= 0 or x_m <= 0:
        return 0.0
    sy, sz = briggs_rural_sigmas(x_m, wind.stability)
    sy = math.hypot(sy, sigma0_m)
    sz = math.hypot(sz, sigma0_m)
    return (
        rate_g_s
        / (math.pi * wind.speed_m_s * sy * sz)
        * math.exp(-(y_m * y_m) / (2 * sy * sy))
        * math.exp(-(height_m * height_m) / (2 * sz * sz))
    )


def g_m3_to_ppm(conc_g_m3: float, mw: float) -> float:
    """Volume ppm of a gas of molecular weight ``mw`` (25 °C, 101.325 kPa)."""
    return conc_g_m3 * 1000.0 * MOLAR_VOLUME_L / mw


def ppm_to_percent_lel(ppm: float, lel_vol_pct: float) -> float:
    """%LEL of a concentration in ppm for a gas whose LEL is ``lel_vol_pct`` %VOL."""
    return ppm / 10_000.0 / lel_vol_pct * 100.0
