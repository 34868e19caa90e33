"""Rules that relate the fields of one tag: units, ranges, gases and GB/T 50493 setpoint limits.

``check_tag`` returns every problem of a tag as ``(sub-path, message)``; the sub-path (e.g.
``("setpoints", "l2")``) tells the loader which line to point at.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Container, Mapping

from safety_hub.registry.gases import Gas, mg_m3_to_ppm, to_mg_m3
from safety_hub.registry.schema import TagModel
from safety_hub.yamlfile import YamlPath, show

Problem = tuple[YamlPath, str]

POINT_GAS_KINDS = frozenset({"combustible_gas", "toxic_gas", "open_path_gas"})
GAS_KINDS = POINT_GAS_KINDS | {"oxygen"}
PROCESS_KINDS = frozenset({"level", "pressure", "temperature", "flow", "analyzer"})
SIS_KINDS = frozenset({"sis_trip", "sis_bypass", "sis_fault", "sis_status"})
DISCRETE_KINDS = SIS_KINDS | {"status"}

EU_BY_KIND: dict[str, tuple[str, ...]] = {
    "combustible_gas": ("%LEL",),
    "toxic_gas": ("ppm", "mg/m3"),
    "oxygen": ("%VOL",),
    "open_path_gas": ("LEL·m",),
    "level": ("m", "%"),
    "pressure": ("MPa", "kPa"),
    "temperature": ("°C",),
    "flow": ("m3/h", "t/h"),
    **{kind: ("",) for kind in DISCRETE_KINDS},
}
"""Allowed engineering units per kind; ``analyzer`` takes any non-empty unit."""

SETPOINT_KEYS: dict[str, tuple[str, ...]] = {
    **{kind: ("l1", "l2") for kind in POINT_GAS_KINDS},
    "oxygen": ("l", "h"),
    **{kind: ("ll", "l", "h", "hh") for kind in PROCESS_KINDS},
    **{kind: () for kind in DISCRETE_KINDS},
}
"""Allowed setpoint keys per kind, in increasing order."""

ALL_SETPOINT_KEYS = ("l1", "l2", "ll", "l", "h", "hh")

# GB/T 50493-2019 clause 5.5.2 limits.
COMBUSTIBLE_LIMITS = {"l1": 25.0, "l2": 50.0}  # %LEL
OPEN_PATH_LIMITS = {"l1": 1.0, "l2": 2.0}  # LEL·m
TOXIC_OEL_PERCENT = {"l1": 100.0, "l2": 200.0}  # % of OEL
TOXIC_IDLH_PERCENT = {"l1": 5.0, "l2": 10.0}  # % of IDLH, only with idlh_mode
OXYGEN_LOW_MIN = 19.5  # %VOL: the low alarm must sound at 19.5 at the latest
OXYGEN_HIGH_MAX = 23.5  # %VOL: the high alarm must sound at 23.5 at the latest
OXYGEN_IN_AIR = 20.9  # %VOL

LEL_LIMITS: dict[str, tuple[dict[str, float], str, str]] = {
    "combustible_gas": (COMBUSTIBLE_LIMITS, "%LEL", ""),
    "open_path_gas": (OPEN_PATH_LIMITS, "LEL·m", " for open-path detectors"),
}
"""Detectors that read a fraction of the LEL: their limits, unit and a note for messages."""

_REL = 1e-9


def over_limit(value: float, limit: float) -> bool:
    """``value > limit``, ignoring float noise."""
    return value > limit * (1 + _REL) + 1e-12


def _under(value: float, limit: float) -> bool:
    return value < limit * (1 - _REL) - 1e-12


def num(value: float) -> str:
    """A number as the user wrote it (up to 6 significant digits)."""
    return f"{value:g}"


def approx(value: float) -> str:
    """A computed number, 3 significant digits."""
    return f"{value:.3g}"


def setpoints_of(tag: TagModel) -> dict[str, float]:
    """The setpoints that are set, in the order ll, l, h, hh, l1, l2."""
    sp = tag.setpoints
    values = {"ll": sp.ll, "l": sp.l, "h": sp.h, "hh": sp.hh, "l1": sp.l1, "l2": sp.l2}
    return {key: value for key, value in values.items() if value is not None}


def tag_range(tag: TagModel) -> tuple[float, float] | None:
    if tag.range is not None:
        return (tag.range[0], tag.range[1])
    if tag.kind in DISCRETE_KINDS:
        return (0.0, 1.0)
    return None


def unknown_gas_message(key: str, gases: Mapping[str, Gas]) -> str:
    close = difflib.get_close_matches(key, list(gases), n=1, cutoff=0.5)
    hint = (
        f"; did you mean {show(close[0])}?"
        if close
        else f"; known gases: {', '.join(sorted(gases))} (add it under `gases:`)"
    )
    return f"gas {show(key)} is not in the gas table{hint}"


def check_tag(
    tag: TagModel, gases: Mapping[str, Gas], broken_gases: Container[str] = ()
) -> list[Problem]:
    """Every problem of one tag. ``broken_gases`` are gas keys whose own entry was invalid
    (already reported): tags using them are not judged against that gas."""
    out: list[Problem] = []
    kind = tag.kind

    # engineering unit
    allowed_eu = EU_BY_KIND.get(kind)
    if allowed_eu is not None and tag.eu not in allowed_eu:
        want = " or ".join(f'"{eu}"' for eu in allowed_eu)
        out.append((("eu",), f'eu "{tag.eu}" is not allowed for kind {kind} (use {want})'))
    elif allowed_eu is None and tag.eu == "":
        out.append((("eu",), f"kind {kind} needs an engineering unit (eu)"))

    # range
    rng = tag_range(tag)
    if rng is None:
        out.append(((), f"kind {kind} needs a range: [lo, hi]"))
    elif rng[0] >= rng[1]:
        out.append((("range",), f"range [{num(rng[0])}, {num(rng[1])}]: lo must be below hi"))
        rng = None

    # gas
    gas: Gas | None = None
    gas_usable = False
    if kind in POINT_GAS_KINDS:
        if tag.gas is None:
            out.append(((), f"kind {kind} needs a gas (a key of the gas table)"))
        elif tag.gas in broken_gases:
            pass
        elif tag.gas not in gases:
            out.append((("gas",), unknown_gas_message(tag.gas, gases)))
        else:
            gas = gases[tag.gas]
            gas_usable = True
            if kind in ("combustible_gas", "open_path_gas") and gas.lel_vol is None:
                out.append((("gas",), f"gas {show(tag.gas)} has no LEL: it is not combustible"))
                gas_usable = False
            if kind == "toxic_gas":
                need = "idlh_mg_m3" if tag.idlh_mode else "oel_mg_m3"
                if getattr(gas, need) is None:
                    what = "IDLH" if tag.idlh_mode else "OEL"
                    out.append(
                        (("gas",), f"gas {show(tag.gas)} has no {what} value in the gas table")
                    )
                    gas_usable = False
    elif tag.gas is not None:
        out.append((("gas",), f"gas is only for {', '.join(sorted(POINT_GAS_KINDS))}, not {kind}"))
    if tag.idlh_mode and kind != "toxic_gas":
        out.append((("idlh_mode",), f"idlh_mode is only for toxic_gas, not {kind}"))

    out.extend(_check_setpoints(tag, rng, gas if gas_usable else None))

    # SIS
    if tag.sis is not None:
        if kind not in SIS_KINDS:
            out.append((("sis",), f"sis is only for {', '.join(sorted(SIS_KINDS))}, not {kind}"))
        elif tag.sis.planned_bypass_end is not None and kind != "sis_bypass":
            out.append(
                (
                    ("sis", "planned_bypass_end"),
                    f"planned_bypass_end is only for sis_bypass, not {kind}",
                )
            )

    # service state
    if not tag.in_service and tag.out_of_service is None:
        out.append(
            (("in_service",), "in_service is false: out_of_service {reason, by, since} is required")
        )
    if tag.in_service and tag.out_of_service is not None:
        out.append((("out_of_service",), "out_of_service is given but in_service is true"))

    if tag.voting is not None and tag.zone is None:
        out.append((("voting",), f"voting {tag.voting} needs a zone naming the voting group"))
    out.extend(_check_holds_at(tag, rng))
    return out


def _check_holds_at(tag: TagModel, rng: tuple[float, float] | None) -> list[Problem]:
    """``holds_at``: a value a measuring tag may legitimately hold, within its range."""
    value = tag.holds_at
    if value is None:
        return []
    if tag.kind in DISCRETE_KINDS:
        return [(("holds_at",), f"holds_at is only for measured values, not {tag.kind}")]
    if rng is not None and not rng[0] <= value <= rng[1]:
        return [
            (
                ("holds_at",),
                f"holds_at {num(value)} is outside the range [{num(rng[0])}, {num(rng[1])}]",
            )
        ]
    return []


def _check_setpoints(
    tag: TagModel, rng: tuple[float, float] | None, gas: Gas | None
) -> list[Problem]:
    out: list[Problem] = []
    kind = tag.kind
    sps = setpoints_of(tag)
    allowed = SETPOINT_KEYS.get(kind, ())

    for key in sps:
        if key not in allowed:
            use = f"use {'/'.join(allowed)}" if allowed else "it has no setpoints"
            out.append(
                (("setpoints", key), f"setpoint {key} is not allowed for kind {kind} ({use})")
            )
    sps = {key: value for key, value in sps.items() if key in allowed}

    missing = [key for key in allowed if key not in sps] if kind in GAS_KINDS else []
    if missing:
        out.append(
            (
                ("setpoints",),
                f"kind {kind} needs setpoints {' and '.join(allowed)} (missing {', '.join(missing)})",
            )
        )
    if rng is not None:
        out.extend(_check_in_range(tag, sps, rng))

    # order
    ordered = [key for key in allowed if key in sps]
    for low_key, high_key in itertools.pairwise(ordered):
        if sps[low_key] >= sps[high_key]:
            out.append(
                (
                    ("setpoints", high_key),
                    f"setpoint {high_key}={num(sps[high_key])} must be above "
                    f"{low_key}={num(sps[low_key])}",
                )
            )

    # GB/T 50493 limits
    for key, value in sps.items():
        excess = _limit_excess(tag, gas, key, value)
        if excess is not None:
            out.append((("setpoints", key), excess))
    if kind == "oxygen":
        out.extend(_check_oxygen(sps))
    return out


def _limit_excess(tag: TagModel, gas: Gas | None, key: str, value: float) -> str | None:
    """Why setpoint ``key`` of a gas detector is beyond GB/T 50493, or None. ``gas`` is None
    when the tag's gas cannot be judged (unknown, or without the needed LEL/OEL/IDLH)."""
    if tag.kind in LEL_LIMITS:
        return lel_excess(tag.kind, key, value, f"{key}=")
    if tag.kind == "toxic_gas" and gas is not None:
        # the number is echoed with the tag's unit as written ("mg/m3", not "mg/m³")
        return toxic_excess(value, key, tag.eu, gas, tag.idlh_mode, f"{key}=", tag.eu)
    return None


def _check_in_range(
    tag: TagModel, sps: dict[str, float], rng: tuple[float, float]
) -> list[Problem]:
    """Inside the range, and above the range's low end for gas alarms (a gas alarm at zero
    never clears)."""
    unit = f" {tag.eu}" if tag.eu else ""
    lo, hi = rng
    return [
        (
            ("setpoints", key),
            f"setpoint {key}={num(value)}{unit} is outside the range [{num(lo)}, {num(hi)}]",
        )
        for key, value in sps.items()
        if value < lo or value > hi or (tag.kind in POINT_GAS_KINDS and value <= lo)
    ]


def _check_oxygen(sps: dict[str, float]) -> list[Problem]:
    out: list[Problem] = []
    low, high = sps.get("l"), sps.get("h")
    if low is not None and _under(low, OXYGEN_LOW_MIN):
        out.append(
            (
                ("setpoints", "l"),
                f"setpoint l={num(low)} %VOL is below {num(OXYGEN_LOW_MIN)} %VOL: the "
                f"oxygen-deficiency alarm must sound at {num(OXYGEN_LOW_MIN)} %VOL",
            )
        )
    elif low is not None and low >= OXYGEN_IN_AIR:
        out.append(
            (
                ("setpoints", "l"),
                f"setpoint l={num(low)} %VOL is not below air ({OXYGEN_IN_AIR} %VOL)",
            )
        )
    if high is not None and over_limit(high, OXYGEN_HIGH_MAX):
        out.append(
            (
                ("setpoints", "h"),
                f"setpoint h={num(high)} %VOL is above {num(OXYGEN_HIGH_MAX)} %VOL: the "
                f"oxygen-enrichment alarm must sound at {num(OXYGEN_HIGH_MAX)} %VOL",
            )
        )
    elif high is not None and high <= OXYGEN_IN_AIR:
        out.append(
            (
                ("setpoints", "h"),
                f"setpoint h={num(high)} %VOL is not above air ({OXYGEN_IN_AIR} %VOL)",
            )
        )
    return out


def lel_excess(kind: str, key: str, value: float, label: str = "") -> str | None:
    """Why ``value`` as the level ``key`` (l1/l2) setpoint of a ``LEL_LIMITS`` detector is
    beyond GB/T 50493, or None; ``label`` goes before the number (``"l1="``)."""
    limits, unit, note = LEL_LIMITS[kind]
    limit = limits[key]
    if not over_limit(value, limit):
        return None
    return (
        f"setpoint {label}{num(value)} {unit} exceeds {num(limit)} {unit} "
        f"(GB/T 50493 level-{key[1]} limit{note})"
    )


def toxic_excess(
    value: float,
    key: str,
    eu: str,
    gas: Gas,
    idlh_mode: bool,
    label: str = "",
    mg_unit: str = "mg/m³",
) -> str | None:
    """Why ``value`` (in ``eu``) as the level ``key`` (l1/l2) setpoint of a toxic gas detector
    is beyond GB/T 50493 (a share of the gas's OEL, or of its IDLH in ``idlh_mode``), or None;
    also None when the gas has no such value or ``eu`` is no concentration. ``label`` goes
    before the number, ``mg_unit`` after a number given in mg/m3."""
    if idlh_mode:
        base, base_name, percent = gas.idlh_mg_m3, "IDLH", TOXIC_IDLH_PERCENT[key]
    else:
        base, base_name, percent = gas.oel_mg_m3, "OEL", TOXIC_OEL_PERCENT[key]
    if base is None or eu not in ("ppm", "mg/m3"):
        return None
    mg = to_mg_m3(value, eu, gas)
    limit = base * percent / 100
    if not over_limit(mg, limit):
        return None
    if eu == "ppm":
        given = f"{num(value)} ppm ({approx(mg)} mg/m³)"
        allowed = f"{approx(limit)} mg/m³ = {approx(mg_m3_to_ppm(limit, gas.mw))} ppm"
    else:
        given, allowed = f"{num(value)} {mg_unit}", f"{approx(limit)} mg/m³"
    return f"setpoint {label}{given} exceeds {num(percent)} %{base_name} of {gas.key} ({allowed})"
