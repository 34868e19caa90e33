"""Field device models: gas detector, storage tank, SIS logic solver, plain process value.

Every model is a pure state machine stepped by the caller with a time step in seconds; random
behaviour (noise) comes from a ``random.Random`` the caller seeds, so a model driven by the same
inputs and seed always gives the same outputs. None of them reads a clock.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from enum import StrEnum

LN10 = math.log(10.0)
ATM_MPA = 0.101325


def stable_seed(*parts: object) -> int:
    """A seed from text parts that is the same in every process (``hash()`` of a str is not)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8"))


def namur_limits(lo: float, hi: float) -> tuple[float, float]:
    """NAMUR NE 43 saturation limits of a 4–20 mA loop over ``[lo, hi]``: 3.8 mA and 20.5 mA,
    i.e. lo − 1.25 % and hi + 3.125 % of the span. A healthy transmitter never reports beyond."""
    span = hi - lo
    return lo - 0.0125 * span, hi + 0.03125 * span


class DetectorFault(StrEnum):
    STUCK = "stuck"
    """the output freezes at its last value"""
    OUT_OF_RANGE = "out_of_range"
    """the loop goes to a failure current: above 21 mA (or below 3.6 mA with ``low``)"""
    ZERO_DRIFT = "zero_drift"
    """the zero shifts by an offset (a false reading in clean air)"""
    BAD_QUALITY = "bad_quality"
    """the transmitter flags its value bad (sensor or loop diagnostics)"""
    COMM_LOSS = "comm_loss"
    """nothing arrives from the detector"""


@dataclass
class GasDetector:
    """A point gas detector (or an oxygen cell) over the range ``[lo, hi]`` of its unit.

    The sensor follows the gas at its position with a first-order lag whose time constant is
    ``t90_s / ln 10``, so a step reaches 90 % of its final value after exactly ``t90_s``
    (the T90 of GB 15322 / EN 60079-29-1). Zero drift grows linearly (``drift_per_day``),
    noise is Gaussian (``noise`` is one standard deviation, in the unit), and a healthy output
    saturates at the NAMUR NE 43 limits.
    """

    tag: str
    lo: float
    hi: float
    rng: random.Random
    t90_s: float = 30.0
    noise: float = 0.0
    drift_per_day: float = 0.0
    baseline: float = 0.0
    """clean-air reading: 0 for gas detectors, 20.9 for oxygen"""
    decimals: int = 3
    sensed: float = field(init=False)
    fault: DetectorFault | None = field(default=None, init=False)
    fault_value: float = field(default=0.0, init=False)
    """the zero-drift offset, or the failure current side (< 0: low) for out of range"""
    _elapsed_s: float = field(default=0.0, init=False)
    _last_output: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.t90_s >= 0:
            raise ValueError(f"{self.tag}: t90 must be >= 0, got {self.t90_s}")
        self.sensed = self.baseline

    def step(self, true_value: float, dt_s: float) -> None:
        """Advance ``dt_s`` seconds with ``true_value`` at the sensor."""
        self._elapsed_s += dt_s
        if self.t90_s == 0:
            self.sensed = true_value
        else:
            alpha = 1.0 - math.exp(-dt_s * LN10 / self.t90_s)
            self.sensed += (true_value - self.sensed) * alpha

    def set_fault(self, fault: DetectorFault | None, value: float = 0.0) -> None:
        self.fault = fault
        self.fault_value = value

    def read(self) -> tuple[float, str] | None:
        """(value, quality) as the transmitter reports it now, or None on a communication loss."""
        fault = self.fault
        if fault is DetectorFault.COMM_LOSS:
            return None
        if fault is DetectorFault.STUCK and self._last_output is not None:
            return self._last_output, "good"
        if fault is DetectorFault.OUT_OF_RANGE:
            span = self.hi - self.lo
            value = self.lo - 0.05 * span if self.fault_value < 0 else self.hi + 0.1 * span
            return round(value, self.decimals), "good"
        value = self.sensed + self.drift_per_day * self._elapsed_s / 86_400.0
        if self.noise:
            value += self.rng.gauss(0.0, self.noise)
        if fault is DetectorFault.ZERO_DRIFT:
            value += self.fault_value
        low, high = namur_limits(self.lo, self.hi)
        if self.baseline <= self.lo:
            low = self.lo  # a gas detector does not read below zero gas (it clamps at 4 mA)
        value = round(min(max(value, low), high), self.decimals)
        self._last_output = value
        return value, "bad" if fault is DetectorFault.BAD_QUALITY else "good"


@dataclass
class ProcessValue:
    """A process measurement in steady operation: a set value with a slow swing and noise."""

    tag: str
    value: float
    rng: random.Random
    swing: float = 0.0
    """amplitude of a slow sine (period ``period_s``)"""
    period_s: float = 1800.0
    noise: float = 0.0
    decimals: int = 3
    phase: float = 0.0
    _t: float = field(default=0.0, init=False)

    def step(self, dt_s: float) -> None:
        self._t += dt_s

    def read(self) -> float:
        v = self.value + self.swing * math.sin(2 * math.pi * self._t / self.period_s + self.phase)
        if self.noise:
            v += self.rng.gauss(0.0, self.noise)
        return round(v, self.decimals)


@dataclass
class Tank:
    """A vertical cylindrical storage tank with a gas blanket, filled and drained by flows.

    Level: dL/dt = (Q_in − Q_out) / A. The liquid cannot rise above ``height_m``: at the top the
    tank overfills (``overfilled``, and the excess is counted in ``spilled_m3``). Pressure: the
    blanket gas is compressed isothermally-then-heated as the ullage shrinks,
    p_abs = p0_abs · (H − L0)/(H − L) · T/T0 (ideal gas, kelvin), capped at the relief valve's
    set pressure. Temperature relaxes to ambient with ``tau_s`` and mixes with what flows in.
    Pressures are gauge, MPa.
    """

    name: str
    area_m2: float
    height_m: float
    level_m: float
    pressure_mpa: float = 0.2
    temperature_c: float = 20.0
    ambient_c: float = 20.0
    inflow_m3_h: float = 0.0
    outflow_m3_h: float = 0.0
    inflow_temperature_c: float = 20.0
    relief_mpa: float | None = None
    tau_s: float = 6 * 3600.0
    overfilled: bool = field(default=False, init=False)
    spilled_m3: float = field(default=0.0, init=False)
    inlet_closed: bool = field(default=False, init=False)
    """set by a SIS trip: nothing flows in until the inlet is opened again"""
    _gas_const: float = field(init=False)

    def __post_init__(self) -> None:
        if not 0 <= self.level_m < self.height_m:
            raise ValueError(
                f"tank {self.name}: level {self.level_m} m must lie in [0, height {self.height_m})"
            )
        # (p_abs · V_ullage / T) stays constant: the blanket gas is a closed amount.
        self._gas_const = (
            (self.pressure_mpa + ATM_MPA)
            * (self.height_m - self.level_m)
            / (self.temperature_c + 273.15)
        )

    def step(self, dt_s: float) -> None:
        inflow = 0.0 if self.inlet_closed else self.inflow_m3_h
        volume_in = inflow * dt_s / 3600.0
        net = volume_in - self.outflow_m3_h * dt_s / 3600.0
        if net < 0 and self.level_m <= 0:
            net = 0.0
        level = self.level_m + net / self.area_m2
        top = self.height_m * 0.999  # a little ullage always stays (the nozzles)
        if level >= top:
            self.spilled_m3 += (level - top) * self.area_m2
            self.overfilled = True
            level = top
        self.level_m = max(0.0, level)
        liquid = max(self.level_m * self.area_m2, 1e-6)
        if volume_in > 0:
            mix = min(1.0, volume_in / liquid)
            self.temperature_c += (self.inflow_temperature_c - self.temperature_c) * mix
        relax = 1.0 - math.exp(-dt_s / self.tau_s)
        self.temperature_c += (self.ambient_c - self.temperature_c) * relax
        ullage = self.height_m - self.level_m
        p_abs = self._gas_const * (self.temperature_c + 273.15) / ullage
        pressure = p_abs - ATM_MPA
        if self.relief_mpa is not None and pressure > self.relief_mpa:
            # the relief valve vents: the blanket loses gas down to the set pressure
            pressure = self.relief_mpa
            self._gas_const = (pressure + ATM_MPA) * ullage / (self.temperature_c + 273.15)
        self.pressure_mpa = pressure


@dataclass(frozen=True)
class SisInput:
    """One transmitter of a safety function: trips when its value passes ``trip_at``."""

    name: str
    trip_at: float
    direction: str = "high"

    def demands(self, value: float) -> bool:
        return value >= self.trip_at if self.direction == "high" else value <= self.trip_at


@dataclass
class SisLogicSolver:
    """The logic solver of one safety instrumented function (IEC 61511).

    ``MooN`` voting over its inputs: the function trips when at least M healthy inputs demand.
    A faulty input (bad, missing) degrades the vote as the solver is configured to: with
    ``degrade_to`` = (M', N') the vote becomes M' out of the healthy inputs (2oo3 → 2oo2 by
    default, which is what the status word's "voting degraded" bit reports). The trip latches
    until ``reset`` (and a reset while the demand stands is refused, as solvers do). A bypass
    overrides the trip for maintenance; it has a planned end, and with ``auto_expire`` the solver
    removes it at that time, else it stays on and is reported overdue. ``first_out`` is the input
    that demanded first in the current trip.
    """

    sif: str
    inputs: list[SisInput]
    m: int
    degraded_m: int | None = None
    latch: bool = True
    auto_expire: bool = False
    tripped: bool = field(default=False, init=False)
    bypassed: bool = field(default=False, init=False)
    bypass_until_s: float | None = field(default=None, init=False)
    diagnostic_fault: bool = field(default=False, init=False)
    first_out: str | None = field(default=None, init=False)
    voting_degraded: bool = field(default=False, init=False)
    events: list[tuple[float, str]] = field(default_factory=list, init=False)
    """(time s, text) of every trip, reset, bypass change and expiry"""
    _demand_order: list[str] = field(default_factory=list, init=False)
    _overdue: bool = field(default=False, init=False)
    _demand: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        n = len(self.inputs)
        if not 1 <= self.m <= n:
            raise ValueError(f"{self.sif}: voting {self.m}oo{n} needs 1 <= M <= N")

    @property
    def voting(self) -> str:
        return f"{self.m}oo{len(self.inputs)}"

    def bypass(self, on: bool, now_s: float, until_s: float | None = None) -> None:
        self.bypassed = on
        self.bypass_until_s = until_s if on else None
        self.events.append((now_s, f"{self.sif} bypass {'on' if on else 'off'}"))

    @property
    def bypass_overdue(self) -> bool:
        return self.bypassed and self._overdue

    def evaluate(self, values: dict[str, float | None], now_s: float) -> bool:
        """Vote on the input ``values`` (None: faulty); returns whether the function is tripped."""
        if self.bypassed and self.bypass_until_s is not None and now_s >= self.bypass_until_s:
            if self.auto_expire:
                self.bypass(False, now_s)
                self.events[-1] = (now_s, f"{self.sif} bypass expired and was removed")
            elif not self._overdue:
                self._overdue = True
                self.events.append((now_s, f"{self.sif} bypass overdue"))
        if not self.bypassed:
            self._overdue = False
        healthy = [i for i in self.inputs if values.get(i.name) is not None]
        demanding = [i for i in healthy if i.demands(values[i.name])]  # type: ignore[arg-type]
        for i in demanding:
            if i.name not in self._demand_order:
                self._demand_order.append(i.name)
        self._demand_order = [n for n in self._demand_order if n in {i.name for i in demanding}]
        faulty = len(self.inputs) - len(healthy)
        self.voting_degraded = faulty > 0
        need = self.m
        if faulty and self.degraded_m is not None:
            need = self.degraded_m
        need = min(need, len(healthy)) if healthy else need
        demand = len(healthy) > 0 and len(demanding) >= need
        if demand and not self.tripped and not self.bypassed:
            self.tripped = True
            self.first_out = self._demand_order[0] if self._demand_order else None
            self.events.append(
                (now_s, f"{self.sif} tripped ({self.voting}), first-out {self.first_out}")
            )
        elif self.tripped and not demand and not self.latch:
            self.tripped = False
            self.events.append((now_s, f"{self.sif} demand gone (non-latching)"))
        self._demand = demand
        return self.tripped

    def reset(self, now_s: float) -> bool:
        """Reset a latched trip; refused (False) while the demand still stands."""
        if not self.tripped:
            return False
        if self._demand and not self.bypassed:
            self.events.append((now_s, f"{self.sif} reset refused: demand still present"))
            return False
        self.tripped = False
        self.first_out = None
        self.events.append((now_s, f"{self.sif} reset"))
        return True

    def status_word(self) -> int:
        """Bit 0: diagnostic fault; bit 1: voting degraded (the sample park's SIS status word)."""
        return (1 if self.diagnostic_fault else 0) | (2 if self.voting_degraded else 0)
