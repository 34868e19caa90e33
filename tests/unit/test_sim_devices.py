"""Device models of the simulators: detector response, plume formula, tank, SIS solver, gateway."""

from __future__ import annotations

import json
import math
import random

import pytest

from simulators.devices import DetectorFault, GasDetector, SisInput, SisLogicSolver, Tank
from simulators.dispersion import (
    Wind,
    briggs_rural_sigmas,
    g_m3_to_ppm,
    plume_concentration_g_m3,
    plume_coordinates,
)
from simulators.gateway import GatewayModel


def test_t90_response_reaches_90_percent_at_t90() -> None:
    """A step of gas reaches 90 % of its value after T90, not before (first-order lag)."""
    det = GasDetector("GT-1", 0, 100, random.Random(1), t90_s=30)
    for _ in range(29):
        det.step(50.0, 1.0)
    assert det.sensed < 45.0
    det.step(50.0, 1.0)
    assert det.sensed == pytest.approx(45.0, rel=1e-9)
    reading = det.read()
    assert reading == (45.0, "good")


def test_detector_faults() -> None:
    """Stuck freezes, out of range leaves the NAMUR band, bad quality flags, comm loss is silent."""
    det = GasDetector("GT-1", 0, 10, random.Random(1), t90_s=0)
    det.step(2.0, 1.0)
    assert det.read() == (2.0, "good")
    det.set_fault(DetectorFault.STUCK)
    det.step(8.0, 1.0)
    assert det.read() == (2.0, "good")
    det.set_fault(DetectorFault.OUT_OF_RANGE)
    value, _ = det.read() or (0.0, "")
    assert value > 10 + 0.03125 * 10
    det.set_fault(DetectorFault.BAD_QUALITY)
    assert det.read() == (8.0, "bad")
    det.set_fault(DetectorFault.ZERO_DRIFT, 0.5)
    assert det.read() == (8.5, "good")
    det.set_fault(DetectorFault.COMM_LOSS)
    assert det.read() is None
    det.set_fault(None)
    det.step(50.0, 1.0)
    assert det.read() == (10.312, "good"), "a healthy output saturates at 20.5 mA"


def test_same_seed_same_noise() -> None:
    """Noise is reproducible from the seed."""
    a = GasDetector("GT-1", 0, 10, random.Random(7), noise=0.1)
    b = GasDetector("GT-1", 0, 10, random.Random(7), noise=0.1)
    assert [a.read() for _ in range(20)] == [b.read() for _ in range(20)]


def test_plume_centreline_matches_hand_computation() -> None:
    """Q = 10 g/s, u = 2 m/s, class D, x = 100 m, ground source and receptor, no spread."""
    # Briggs rural D at 100 m: σy = 0.08·100·(1.01)^-½ = 7.9603, σz = 0.06·100·(1.15)^-½ = 5.5950
    sy, sz = briggs_rural_sigmas(100.0, "D")
    assert sy == pytest.approx(7.96030, rel=1e-5)
    assert sz == pytest.approx(5.59503, rel=1e-5)
    wind = Wind(2.0, 270.0, "D")
    c = plume_concentration_g_m3(10.0, 100.0, 0.0, wind, sigma0_m=1e-9)
    # 10 / (π · 2 · 7.96030 · 5.59503) = 10 / 279.841 = 0.0357346 g/m³
    assert c == pytest.approx(0.0357346, rel=1e-5)
    # Cl2 (70.90 g/mol): 35.7346 mg/m³ · 24.45 / 70.90 = 12.323 ppm
    assert g_m3_to_ppm(c, 70.90) == pytest.approx(12.323, rel=1e-4)
    off_axis = plume_concentration_g_m3(10.0, 100.0, sy, wind, sigma0_m=1e-9)
    assert off_axis == pytest.approx(c * math.exp(-0.5), rel=1e-9)


def test_wind_direction_convention() -> None:
    """A west wind (from 270°) carries gas east; a receptor west of the source is upwind."""
    wind = Wind(3.0, 270.0)
    assert plume_coordinates((0, 0), (50, 0), wind) == pytest.approx((50.0, 0.0))
    assert plume_coordinates((0, 0), (-50, 0), wind)[0] < 0
    assert plume_concentration_g_m3(5.0, -50.0, 0.0, wind) == 0.0


def test_tank_fills_to_overfill_and_pressure_rises() -> None:
    """Level rises by Q/A, the blanket pressure rises as the ullage shrinks, the top overfills."""
    tank = Tank("TK", area_m2=2.0, height_m=3.0, level_m=1.0, pressure_mpa=0.2, tau_s=1e12)
    tank.inflow_m3_h = 36.0  # 0.01 m³/s -> 5 mm/s
    for _ in range(100):
        tank.step(1.0)
    assert tank.level_m == pytest.approx(1.5)
    assert tank.pressure_mpa == pytest.approx((0.2 + 0.101325) * 2.0 / 1.5 - 0.101325)
    for _ in range(1000):
        tank.step(1.0)
    assert tank.overfilled and tank.spilled_m3 > 0
    assert tank.level_m < tank.height_m


def _solver(**kw: object) -> SisLogicSolver:
    inputs = [SisInput(n, 2.3) for n in ("A", "B", "C")]
    return SisLogicSolver("SIF-1", inputs, 2, degraded_m=2, **kw)  # type: ignore[arg-type]


def test_2oo3_voting_trips_on_two_and_records_first_out() -> None:
    """One demanding input of three does not trip; the second does; first-out is the first."""
    sis = _solver()
    assert not sis.evaluate({"A": 1.0, "B": 1.0, "C": 1.0}, 0)
    assert not sis.evaluate({"A": 1.0, "B": 2.4, "C": 1.0}, 1)
    assert sis.evaluate({"A": 2.5, "B": 2.4, "C": 1.0}, 2)
    assert sis.first_out == "B"
    assert not sis.reset(3), "reset refused while the demand stands"
    sis.evaluate({"A": 1.0, "B": 1.0, "C": 1.0}, 4)
    assert sis.tripped, "the trip latches"
    assert sis.reset(5) and not sis.tripped


def test_degraded_vote_and_status_word() -> None:
    """A faulty input makes 2oo3 a 2oo2 over the healthy ones and sets the status word bit 1."""
    sis = _solver()
    assert not sis.evaluate({"A": None, "B": 2.5, "C": 1.0}, 0)
    assert sis.voting_degraded and sis.status_word() == 2
    assert sis.evaluate({"A": None, "B": 2.5, "C": 2.5}, 1)
    sis.diagnostic_fault = True
    assert sis.status_word() == 3


def test_bypass_blocks_trip_and_expires() -> None:
    """A bypass blocks the trip; past its planned end it is overdue, or removed with auto_expire."""
    sis = _solver()
    sis.bypass(True, 0, until_s=60)
    assert not sis.evaluate({"A": 3.0, "B": 3.0, "C": 3.0}, 10)
    assert not sis.bypass_overdue
    sis.evaluate({"A": 1.0, "B": 1.0, "C": 1.0}, 60)
    assert sis.bypassed and sis.bypass_overdue
    auto = _solver(auto_expire=True)
    auto.bypass(True, 0, until_s=60)
    assert not auto.evaluate({"A": 3.0, "B": 3.0, "C": 3.0}, 59)
    assert auto.evaluate({"A": 3.0, "B": 3.0, "C": 3.0}, 60), "expired bypass: the demand trips"
    assert not auto.bypassed


def test_gateway_sequence_batches_skew_and_last_will() -> None:
    """Messages carry increasing seq in batches; a dead link leaves offline to the last-will."""
    gw = GatewayModel("e01", batch=2, keepalive_s=30, clock_skew_ms=-5000)
    first = gw.connect(1000)
    assert [(p.topic, p.payload, p.retain) for p in first] == [
        ("hazard/v1/e01/status", b'{"state":"online"}', True)
    ]
    pubs = gw.sample(2000, [("A", 1.0, "good"), ("B", 2.0, "bad"), ("C", 3.0, "good")])
    docs = [json.loads(p.payload) for p in pubs]
    assert [d["seq"] for d in docs] == [1, 2]
    assert [len(d["readings"]) for d in docs] == [2, 1]
    assert docs[0]["readings"][1] == {"tag": "B", "v": 2.0, "ts": -3000, "q": "bad"}
    assert gw.disconnect(3000, graceful=False) == []
    assert gw.will_delay_ms == 45_000
    assert gw.sample(4000, [("A", 1.0, "good")]) == []
    will = gw.last_will(48_000)
    assert (will.topic, will.payload, will.retain) == (
        "hazard/v1/e01/status",
        b'{"state":"offline"}',
        True,
    )
    again = gw.connect(60_000)
    assert json.loads(again[0].payload) == {"state": "online"}
    assert json.loads(gw.sample(61_000, [("A", 1.0, "good")])[0].payload)["seq"] == 3


def test_gateway_store_and_forward_sends_buffer_after_reconnect() -> None:
    """With store-and-forward the outage's readings follow the reconnect with their own ts."""
    gw = GatewayModel("e01", store_and_forward=True)
    gw.connect(0)
    gw.disconnect(1000, graceful=False)
    gw.sample(2000, [("A", 1.0, "good")])
    gw.sample(3000, [("A", 2.0, "good")])
    out = gw.connect(10_000)
    body = json.loads(out[1].payload)
    assert [r["ts"] for r in body["readings"]] == [2000, 3000]
