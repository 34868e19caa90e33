"""The simulated field of a scenario: device models stepped on the scenario's time grid, sampled
by each tag's publishing interval and published by enterprise gateway models.

``World(scenario).stream()`` yields, in time order, every MQTT message the gateways (and the
broker, for a last-will) send (``Publication``) and every operator action of the timeline
(``OperatorAction``). Replay (``safety_hub.runtime.replay``) feeds both into an in-process hub;
``safety-hub simulate`` (``simulators.player``) publishes the messages to a broker. The same
scenario and seed always give the same stream. ``World(scenario).messages()`` and
``readings_of(scenario)`` give a scenario's messages and its decoded readings.

The gateways speak contract revision 1.1 (gas and SIS readings on the critical topic) unless
the scenario's ``gateways:`` says ``critical_topic: false`` for one, or ``critical_topic`` given
to ``World`` overrides that for all of them (``safety-hub simulate --no-critical-topic``).
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from safety_hub.clock import VirtualClock
from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.telemetry import Reading, enterprise_of_topic
from safety_hub.registry import TagInfo
from safety_hub.scenarios import schema as s
from safety_hub.scenarios.loader import GAS_KINDS, Scenario, parse_voting
from safety_hub.scenarios.report import FieldNote
from simulators.devices import (
    DetectorFault,
    GasDetector,
    ProcessValue,
    SisInput,
    SisLogicSolver,
    Tank,
    stable_seed,
)
from simulators.dispersion import (
    Wind,
    briggs_rural_sigmas,
    g_m3_to_ppm,
    plume_concentration_g_m3,
    plume_coordinates,
    ppm_to_percent_lel,
)
from simulators.gateway import GatewayModel, Publication, SampledReading, critical_tags

AIR_O2_PCT = 20.9


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """An operator action of the timeline (ack, reset, shelve, ...) at scenario time."""

    at_ms: int
    event: s.AnyOperatorEvent
    index: int
    """position in the timeline (for messages)"""


@dataclass
class _Leak:
    spec: s.LeakDevice
    x: float
    y: float
    mw: float
    lel: float | None
    rate: float = 0.0
    history: list[tuple[int, float]] = field(default_factory=lambda: [(-(10**15), 0.0)])
    """(time ms, rate g/s) from that time on"""

    def set_rate(self, t_ms: int, rate: float) -> None:
        self.rate = rate
        self.history.append((t_ms, rate))

    def rate_at(self, t_ms: float) -> float:
        i = bisect.bisect_right(self.history, (t_ms, math.inf)) - 1
        return self.history[i][1]


def _safe_band(info: TagInfo) -> tuple[float, float]:
    lo, hi = info.range_lo, info.range_hi
    sp = info.setpoints
    lower = max([lo, *(sp[k] for k in ("ll", "l") if k in sp)])
    upper = min([hi, *(sp[k] for k in ("h", "hh") if k in sp)])
    if upper <= lower:
        return lo, hi
    return lower, upper


class World:
    def __init__(self, scenario: Scenario, *, critical_topic: bool | None = None) -> None:
        """``critical_topic``: True or False for every gateway (revision 1.1 or 1.0); None:
        each as the scenario's ``gateways:`` says (default 1.1)."""
        self.sc = scenario
        self._critical_topic = critical_topic
        m = scenario.model
        self.start = scenario.start_ms
        self.step_ms = m.step
        self.wind = Wind(m.wind.speed_m_s, m.wind.from_deg, m.wind.stability)
        self.notes: list[FieldNote] = []
        self.tags: dict[tuple[str, str], TagInfo] = dict(scenario.plant.tags)

        # -- device models ---------------------------------------------------------------
        self.detectors: dict[tuple[str, str], GasDetector] = {}
        self.process: dict[tuple[str, str], ProcessValue] = {}
        self._tag_models()
        self.leaks: dict[str, _Leak] = {}
        self.tanks: dict[str, Tank] = {}
        self.tank_tags: dict[tuple[str, str], tuple[Tank, str]] = {}
        self.sis: dict[str, tuple[SisLogicSolver, s.SisDevice, str]] = {}
        for d in m.devices:
            if isinstance(d, s.LeakDevice):
                self._add_leak(d)
            elif isinstance(d, s.TankDevice):
                self._add_tank(d)
            elif isinstance(d, s.SisDevice):
                self._add_sis(d)
            elif isinstance(d, s.ProcessDevice):
                k = self.key(d.tag, d.enterprise)
                self.process[k] = ProcessValue(
                    d.tag,
                    d.value,
                    self._rng(*k),
                    swing=d.swing,
                    period_s=d.period / 1000,
                    noise=d.noise,
                )
        self._sis_outputs: dict[tuple[str, str], float] = {}
        for _solver, d, enterprise in self.sis.values():
            for t in scenario.plant.tags.values():
                if t.sif == d.sif and t.enterprise == enterprise:
                    self._sis_outputs[(enterprise, t.tag)] = 0.0
        self.forced: dict[tuple[str, str], tuple[float, str]] = {}

        # -- gateways and the publishing schedule -----------------------------------------
        self.gateways: dict[str, GatewayModel] = {}
        self._due: list[tuple[int, int, str, str]] = []
        self._intervals: dict[tuple[str, str], int] = {}
        self._schedule()
        self._wills: dict[str, int] = {}
        self.injected: dict[tuple[str, int], tuple[int, s.InjectReading]] = {}
        """(enterprise, seq) of each injected reading's message -> (timeline index, event)"""

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(stable_seed(self.sc.model.seed, *parts))

    def _tag_models(self) -> None:
        """A gas detector per gas tag, a process value per level, pressure, ... tag; devices
        of the scenario replace them."""
        tuned: dict[tuple[str, str], s.DetectorDevice] = {}
        for d in self.sc.model.devices:
            if isinstance(d, s.DetectorDevice):
                for name in d.tags:
                    tuned[self.key(name, d.enterprise)] = d
        for key, info in self.sc.plant.tags.items():
            span = info.range_hi - info.range_lo
            if info.kind in GAS_KINDS:
                spec = tuned.get(key)
                oxygen = info.kind == "oxygen"
                noise = (
                    (0.02 if oxygen else 0.002 * span)
                    if spec is None or spec.noise is None
                    else spec.noise
                )
                self.detectors[key] = GasDetector(
                    info.tag,
                    info.range_lo,
                    info.range_hi,
                    self._rng(*key),
                    t90_s=(spec.t90 if spec else 20_000) / 1000,
                    noise=noise,
                    drift_per_day=spec.drift_per_day if spec else 0.0,
                    baseline=AIR_O2_PCT if oxygen else info.range_lo,
                )
            elif info.kind in ("level", "pressure", "temperature", "flow", "analyzer"):
                lower, upper = _safe_band(info)
                half = (upper - lower) / 2
                r = self._rng(*key)
                self.process[key] = ProcessValue(
                    info.tag,
                    lower + half,
                    r,
                    swing=0.1 * half,
                    period_s=1800 + r.uniform(0, 1800),
                    noise=0.001 * span,
                    phase=r.uniform(0, 2 * math.pi),
                )

    def _add_leak(self, d: s.LeakDevice) -> None:
        gas = self.sc.plant.gases[d.gas]
        if d.near is not None:
            info = self.tags[self.key(d.near, d.enterprise)]
            assert info.x_m is not None and info.y_m is not None
            x, y = info.x_m, info.y_m
        else:
            assert d.x_m is not None and d.y_m is not None
            x, y = d.x_m, d.y_m
        self.leaks[d.id] = _Leak(d, x, y, gas.mw, gas.lel_vol)

    def _add_tank(self, d: s.TankDevice) -> None:
        level_key = self.key(d.level, d.enterprise)
        level_info = self.tags[level_key]
        tank = Tank(
            d.id,
            area_m2=math.pi * d.diameter_m**2 / 4,
            height_m=d.height_m or level_info.range_hi * 1.05,
            level_m=d.level_m,
            pressure_mpa=d.pressure_mpa,
            temperature_c=d.temperature_c,
            ambient_c=d.ambient_c,
            inflow_m3_h=d.inflow_m3_h,
            outflow_m3_h=d.outflow_m3_h,
            inflow_temperature_c=(
                d.inflow_temperature_c if d.inflow_temperature_c is not None else d.ambient_c
            ),
            relief_mpa=d.relief_mpa,
        )
        self.tanks[d.id] = tank
        self.tank_tags[level_key] = (tank, "level")
        self.process.pop(level_key, None)
        for tag, what in ((d.pressure, "pressure"), (d.temperature, "temperature")):
            if tag is not None:
                k = self.key(tag, d.enterprise)
                self.tank_tags[k] = (tank, what)
                self.process.pop(k, None)

    def _add_sis(self, d: s.SisDevice) -> None:
        vote = parse_voting(d.voting)
        assert vote is not None
        degraded = parse_voting(d.degrade_to) if d.degrade_to else None
        inputs = [
            SisInput(f"{self.key(i.tag, d.enterprise)[0]}/{i.tag}", i.trip_at, i.direction)
            for i in d.inputs
        ]
        solver = SisLogicSolver(
            d.sif,
            inputs,
            vote[0],
            degraded_m=degraded[0] if degraded else None,
            latch=d.latch,
            auto_expire=d.auto_expire,
        )
        sif_tags = [t for t in self.sc.plant.tags.values() if t.sif == d.sif]
        enterprise = d.enterprise or sif_tags[0].enterprise
        self.sis[d.id] = (solver, d, enterprise)

    def _schedule(self) -> None:
        """Each enterprise's gateway model, and when each tag is sampled first."""
        m, plant, override = self.sc.model, self.sc.plant, self._critical_topic
        for code in plant.enterprises:
            gw_spec = m.gateways.get(code, s.GatewayModelSpec())
            self.gateways[code] = GatewayModel(
                code,
                batch=gw_spec.batch,
                keepalive_s=gw_spec.keepalive / 1000,
                clock_skew_ms=gw_spec.clock_skew,
                store_and_forward=gw_spec.store_and_forward,
                critical_tags=critical_tags(plant, code),
                critical_topic=gw_spec.critical_topic if override is None else override,
            )
        order = 0
        for code in plant.enterprises:
            for i, info in enumerate(plant.tags_of(code)):
                interval = max(self.step_ms, round(info.interval_s * 1000))
                offset = (i * self.step_ms) % interval
                self._due.append((offset, order, code, info.tag))
                order += 1
        heapq.heapify(self._due)
        self._intervals = {
            key: max(self.step_ms, round(info.interval_s * 1000))
            for key, info in plant.tags.items()
        }

    def key(self, tag: str, enterprise: str | None) -> tuple[str, str]:
        if enterprise is not None:
            return enterprise, tag
        for ent, name in self.tags:
            if name == tag:
                return ent, tag
        raise KeyError(tag)

    def note(self, t_ms: int, text: str) -> None:
        self.notes.append(FieldNote(self.start + t_ms, text))

    # -- the stream --------------------------------------------------------------------------
    def messages(self) -> Iterator[Publication]:
        for item in self.stream():
            if isinstance(item, Publication):
                yield item

    def stream(self) -> Iterator[Publication | OperatorAction]:
        m = self.sc.model
        events = sorted(enumerate(m.timeline), key=lambda ie: (ie[1].at, ie[0]))
        ei = 0
        for code, gw in self.gateways.items():
            yield from gw.connect(self.start)
            del code
        t = 0
        while t <= m.duration:
            while ei < len(events) and events[ei][1].at <= t:
                index, event = events[ei]
                ei += 1
                if isinstance(event, s.OperatorEvent):
                    yield OperatorAction(self.start + t, event, index)
                elif isinstance(event, s.InjectReading):
                    yield self._inject(index, event, t)
                else:
                    yield from self._apply(event, t)
            for code, due in list(self._wills.items()):
                if due <= t:
                    del self._wills[code]
                    self.note(t, f"{code}: broker publishes the gateway's last-will (offline)")
                    yield self.gateways[code].last_will(self.start + t)
            self._physics(t)
            yield from self._sample(t)
            t += self.step_ms

    def _apply(self, e: s.Event, t: int) -> Iterator[Publication]:
        if isinstance(e, s.LeakStart | s.LeakStop | s.LeakRate):
            leak = self.leaks[e.device]
            if isinstance(e, s.LeakStop):
                rate = 0.0
            elif isinstance(e, s.LeakStart):
                rate = e.rate_g_s if e.rate_g_s is not None else leak.spec.rate_g_s
            else:
                rate = e.rate_g_s
            leak.set_rate(t, rate)
            self.note(t, f"leak {e.device} ({leak.spec.gas}): {rate:g} g/s")
        elif isinstance(e, s.WindChange):
            w = self.wind
            self.wind = Wind(
                e.speed_m_s if e.speed_m_s is not None else w.speed_m_s,
                e.from_deg if e.from_deg is not None else w.from_deg,
                e.stability if e.stability is not None else w.stability,
            )
            self.note(
                t,
                f"wind {self.wind.speed_m_s:g} m/s from {self.wind.from_deg:g}°, "
                f"class {self.wind.stability}",
            )
        elif isinstance(
            e, s.DetectorFaultEvent | s.DetectorRepaired | s.ForceValue | s.ReleaseValue
        ):
            self._apply_to_tag(e, t)
        elif isinstance(e, s.TankFlow):
            tank = self.tanks[e.device]
            if e.inflow_m3_h is not None:
                tank.inflow_m3_h = e.inflow_m3_h
            if e.outflow_m3_h is not None:
                tank.outflow_m3_h = e.outflow_m3_h
            self.note(
                t, f"tank {e.device}: in {tank.inflow_m3_h:g} m3/h, out {tank.outflow_m3_h:g} m3/h"
            )
        elif isinstance(e, s.BypassOn | s.BypassOff | s.SisFault | s.SisReset):
            self._apply_to_sis(e, t)
        elif isinstance(e, s.GatewayDown | s.GatewayUp | s.ClockSkew):
            yield from self._apply_to_gateway(e, t)

    def _apply_to_tag(
        self,
        e: s.DetectorFaultEvent | s.DetectorRepaired | s.ForceValue | s.ReleaseValue,
        t: int,
    ) -> None:
        key = self.key(e.tag, e.enterprise)
        if isinstance(e, s.DetectorFaultEvent):
            self.detectors[key].set_fault(DetectorFault(e.fault), e.offset)
            self.note(t, f"detector {key[0]}/{e.tag}: fault {e.fault}")
        elif isinstance(e, s.DetectorRepaired):
            self.detectors[key].set_fault(None)
            self.note(t, f"detector {key[0]}/{e.tag}: repaired")
        elif isinstance(e, s.ForceValue):
            self.forced[key] = (e.value, e.quality)
            self.note(t, f"{key[0]}/{e.tag} forced to {e.value:g} ({e.quality})")
        else:
            self.forced.pop(key, None)
            self.note(t, f"{key[0]}/{e.tag} released")

    def _apply_to_sis(self, e: s.BypassOn | s.BypassOff | s.SisFault | s.SisReset, t: int) -> None:
        solver, spec, _ = self.sis[e.device]
        now_s = t / 1000
        if isinstance(e, s.BypassOn):
            solver.bypass(True, now_s, e.until / 1000 if e.until is not None else None)
        elif isinstance(e, s.BypassOff):
            solver.bypass(False, now_s)
        elif isinstance(e, s.SisFault):
            solver.diagnostic_fault = e.active
            solver.events.append(
                (now_s, f"{solver.sif} diagnostic fault {'on' if e.active else 'off'}")
            )
        elif solver.reset(now_s) and spec.closes is not None:
            self.tanks[spec.closes].inlet_closed = False

    def _apply_to_gateway(
        self, e: s.GatewayDown | s.GatewayUp | s.ClockSkew, t: int
    ) -> Iterator[Publication]:
        code = self._enterprise(e.enterprise)
        gw = self.gateways[code]
        if isinstance(e, s.GatewayDown):
            self.note(t, f"{code}: gateway {'link lost' if e.last_will else 'disconnects cleanly'}")
            out = gw.disconnect(self.start + t, graceful=not e.last_will)
            if e.last_will:
                self._wills[code] = t + gw.will_delay_ms
            yield from out
        elif isinstance(e, s.GatewayUp):
            if code in self._wills:  # a takeover before the broker noticed: the will goes first
                del self._wills[code]
                yield gw.last_will(self.start + t)
            self.note(t, f"{code}: gateway reconnects")
            yield from gw.connect(self.start + t)
        else:
            gw.clock_skew_ms = e.skew
            self.note(t, f"{code}: gateway clock off by {e.skew / 1000:+g} s")

    def _inject(self, index: int, e: s.InjectReading, t: int) -> Publication:
        code, tag = self.key(e.tag, e.enterprise)
        kind, ms = e.ts if e.ts is not None else ("offset", 0)
        ts_ms = ms if kind == "epoch" else self.start + t + ms
        gw = self.gateways[code]
        pub = gw.send_reading(self.start + t, SampledReading(tag, e.value, e.quality, ts_ms))
        self.injected[(code, gw.seq)] = (index, e)
        self.note(
            t,
            f"{code}/{tag}: one reading {e.value:g} ({e.quality}) sent, "
            f"ts {(ts_ms - self.start - t) / 1000:+g} s from now",
        )
        return pub

    def _enterprise(self, code: str | None) -> str:
        return code if code is not None else next(iter(self.gateways))

    # -- physics -----------------------------------------------------------------------------
    def _physics(self, t: int) -> None:
        dt = self.step_ms / 1000
        for key, det in self.detectors.items():
            det.step(self._gas_at(key, t), dt)
        for pv in self.process.values():
            pv.step(dt)
        for tank in self.tanks.values():
            was = tank.overfilled
            tank.step(dt)
            if tank.overfilled and not was:
                self.note(t, f"tank {tank.name} overfills")
        for solver, spec, enterprise in self.sis.values():
            before = len(solver.events)
            values: dict[str, float | None] = {}
            for inp in solver.inputs:
                ent, tag = inp.name.split("/", 1)
                values[inp.name] = self._input_value((ent, tag))
            solver.evaluate(values, t / 1000)
            if solver.tripped and spec.closes is not None:
                self.tanks[spec.closes].inlet_closed = True
            for at_s, text in solver.events[before:]:
                self.notes.append(FieldNote(self.start + round(at_s * 1000), text))
            for info in self.sc.plant.tags.values():
                if info.sif != spec.sif or info.enterprise != enterprise:
                    continue
                key = (enterprise, info.tag)
                if info.kind == "sis_trip":
                    self._sis_outputs[key] = 1.0 if solver.tripped else 0.0
                elif info.kind == "sis_bypass":
                    self._sis_outputs[key] = 1.0 if solver.bypassed else 0.0
                elif info.kind == "sis_fault":
                    self._sis_outputs[key] = 1.0 if solver.diagnostic_fault else 0.0

    def _input_value(self, key: tuple[str, str]) -> float | None:
        value = self._value(key)
        if value is None or value[1] == "bad":
            return None
        return value[0]

    def _gas_at(self, key: tuple[str, str], t: int) -> float:
        info = self.tags[key]
        if not self.leaks or info.x_m is None or info.y_m is None:
            return AIR_O2_PCT if info.kind == "oxygen" else info.range_lo
        total_ppm = 0.0
        own = 0.0
        for leak in self.leaks.values():
            x, y = plume_coordinates((leak.x, leak.y), (info.x_m, info.y_m), self.wind)
            if x <= 0:
                continue
            rate = leak.rate_at(t - 1000 * x / self.wind.speed_m_s)
            if rate <= 0:
                continue
            conc = plume_concentration_g_m3(
                rate, x, y, self.wind, height_m=leak.spec.height_m, sigma0_m=leak.spec.sigma0_m
            )
            ppm = g_m3_to_ppm(conc, leak.mw)
            total_ppm += ppm
            if leak.spec.gas != info.gas:
                continue
            if info.kind == "toxic_gas":
                own += ppm if info.eu == "ppm" else conc * 1000
            elif info.kind == "combustible_gas" and leak.lel:
                own += ppm_to_percent_lel(ppm, leak.lel)
            elif info.kind == "open_path_gas" and leak.lel:
                # LEL·m: the LEL fraction times the path length inside the cloud (≈ 2.5 σy wide)
                sy = math.hypot(briggs_rural_sigmas(x, self.wind.stability)[0], leak.spec.sigma0_m)
                own += ppm_to_percent_lel(ppm, leak.lel) / 100 * 2.5 * sy
        if info.kind == "oxygen":
            return AIR_O2_PCT * (1 - min(total_ppm, 1e6) / 1e6)
        return info.range_lo + own

    def _value(self, key: tuple[str, str]) -> tuple[float, str] | None:
        forced = self.forced.get(key)
        if forced is not None:
            return forced
        det = self.detectors.get(key)
        if det is not None:
            return det.read()
        pv = self.process.get(key)
        if pv is not None:
            return pv.read(), "good"
        tank_what = self.tank_tags.get(key)
        if tank_what is not None:
            tank, what = tank_what
            raw = {
                "level": tank.level_m,
                "pressure": tank.pressure_mpa,
                "temperature": tank.temperature_c,
            }[what]
            return round(raw, 4), "good"
        out = self._sis_outputs.get(key)
        if out is not None:
            return out, "good"
        info = self.tags[key]
        if info.kind == "sis_status":
            word = 0
            for solver, _spec, enterprise in self.sis.values():
                if enterprise == key[0]:
                    word |= solver.status_word()
            return float(word), "good"
        if info.kind == "status":
            return 1.0, "good"
        return 0.0, "good"

    def _sample(self, t: int) -> Iterator[Publication]:
        due: dict[str, list[tuple[str, float, str]]] = {}
        while self._due and self._due[0][0] <= t:
            at, order, code, tag = heapq.heappop(self._due)
            key = (code, tag)
            heapq.heappush(self._due, (at + self._intervals[key], order, code, tag))
            value = self._value(key)
            if value is not None:
                due.setdefault(code, []).append((tag, value[0], value[1]))
        for code, readings in due.items():
            yield from self.gateways[code].sample(self.start + t, readings)


def readings_of(scenario: Scenario) -> Iterator[tuple[int, Reading]]:
    """(send time ms, Reading) of every accepted reading, decoded by the telemetry contract."""
    clock = VirtualClock(scenario.start_ms)
    decoder = TelemetryDecoder(scenario.plant.tags, set(scenario.plant.enterprises), clock.now_ms)
    for pub in World(scenario).messages():
        if enterprise_of_topic(pub.topic) is None:  # status
            continue
        clock.set(max(clock.now_ms(), pub.at_ms))
        for reading in decoder.decode(pub.topic, pub.payload).readings:
            yield pub.at_ms, reading
