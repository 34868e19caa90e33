"""The Nagle verdict on broker round trip samples, and what the hub does with it.

The samples here are written out: the loopback Mosquitto of this machine did not show the
Nagle delay reliably (docs/benchmarks.md), so the decision is tested on figures, and the
measurement against real brokers in tests/integration/test_broker_round_trip.py.
"""

from __future__ import annotations

import logging
import math

import pytest

from safety_hub.clock import VirtualClock
from safety_hub.metrics import HubMetrics
from safety_hub.runtime.broker_probe import ADVICE, BrokerProbe, judge

FAST = [(0.4, 0.6), (0.5, 0.7), (0.3, 0.5), (0.6, 0.9), (0.4, 0.6)]
NAGLE = [(0.4, 40.8), (0.5, 41.2), (0.3, 39.9), (0.6, 0.9), (0.4, 43.0)]  # one lucky sample
NAGLE_OTHER_WAY = [(40.1, 0.4), (41.0, 0.5), (40.6, 0.3), (39.8, 0.6), (40.2, 0.4)]
FAR = [(30.2, 31.0), (29.8, 30.5), (35.0, 36.1), (30.1, 30.9), (31.0, 31.8)]  # far, not Nagle
LOADED = [(3.0, 8.0), (2.0, 9.0), (4.0, 11.0), (2.5, 7.5), (3.0, 10.0)]  # a busy broker


@pytest.mark.parametrize(
    ("samples", "suspected"),
    [(FAST, False), (NAGLE, True), (NAGLE_OTHER_WAY, True), (FAR, False), (LOADED, False)],
)
def test_the_second_reply_tens_of_ms_after_a_fast_first_is_nagle(
    samples: list[tuple[float, float]], suspected: bool
) -> None:
    verdict = judge(samples, 1_000)
    assert verdict is not None
    assert verdict.nagle_suspected is suspected
    assert (verdict.advice is not None) is suspected
    assert verdict.samples == len(samples) and verdict.measured_at == 1_000
    assert verdict.first_reply_ms <= verdict.second_reply_ms


def test_the_figures_are_medians() -> None:
    verdict = judge(NAGLE, 0)
    assert verdict is not None
    assert verdict.first_reply_ms == 0.4
    assert verdict.second_reply_ms == 40.8
    assert verdict.round_trip_ms == 40.8


def test_no_samples_no_verdict() -> None:
    assert judge([], 0) is None


def test_the_hub_warns_once_names_the_setting_and_sets_the_gauges(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = [NAGLE, NAGLE, FAST, [], NAGLE]
    metrics = HubMetrics()
    probe = BrokerProbe(
        lambda: rounds.pop(0), lambda: True, metrics, VirtualClock(5_000), "mqtt://b:1883"
    )
    assert math.isnan(metrics.registry.get_sample_value("safety_hub_mqtt_round_trip_seconds"))
    assert probe.as_dict() is None
    with caplog.at_level(logging.INFO, logger="safety_hub.broker_probe"):
        first = probe.run_once()
        probe.run_once()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "set_tcp_nodelay true" in warnings[0].getMessage()
    assert first is not None and first.advice == ADVICE
    assert metrics.registry.get_sample_value("safety_hub_mqtt_nagle_suspected") == 1
    assert metrics.registry.get_sample_value("safety_hub_mqtt_round_trip_seconds") == pytest.approx(
        0.0408
    )
    shown = probe.as_dict()
    assert shown is not None and shown["nagle_suspected"] is True and shown["samples"] == 5

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="safety_hub.broker_probe"):
        assert probe.run_once() is not None  # FAST: cleared
        assert probe.run_once() is None  # nothing came back: the last verdict stays
        probe.run_once()  # NAGLE again: warned again
    assert metrics.registry.get_sample_value("safety_hub_mqtt_nagle_suspected") == 1
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO, logging.WARNING]
    assert "ACL" in caplog.records[1].getMessage()
    assert probe.measurements == 5
