"""The simulators speak contract v1.1 to a real Mosquitto: ``safety-hub simulate`` (load mode
and a scenario) publishes gas and SIS readings on ``hazard/v1/{enterprise}/critical`` and the
rest on ``.../telemetry``, everything on telemetry with ``--no-critical-topic``; the recorder
(``safety-hub replay --record``) captures the critical topic too."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from safety_hub.ingest.telemetry import CRITICAL_SUBSCRIPTION
from safety_hub.registry import default_plant_path, load_plant
from safety_hub.scenarios.recording import RecordedMessage, read_recording
from simulators.gateway import Gateway, critical_tags
from simulators.recorder import Recorder
from tests.integration.hubproc import wait_for

pytestmark = pytest.mark.integration

ENT = "e01-chloralkali"
PLANT = load_plant(default_plant_path())
CRITICAL = critical_tags(PLANT, ENT)

SCENARIO = f"""\
scenario: 1
name: topics, live
duration: 20s
enterprises: [{ENT}]
"""


@pytest.fixture
def recording(mosquitto: Any, tmp_path: Path) -> Iterator[tuple[Recorder, Path]]:
    out = tmp_path / "capture.jsonl"
    recorder = Recorder(out, "127.0.0.1", mosquitto.port, url=mosquitto.url)
    assert recorder.wait_subscribed(10)
    try:
        yield recorder, out
    finally:
        recorder.close()


def _readings(messages: list[RecordedMessage], level: str) -> list[tuple[int, str]]:
    """(seq, tag) of every reading of ENT on the topic level ``level``."""
    return [
        (doc["seq"], r["tag"])
        for m in messages
        if m.topic == f"hazard/v1/{ENT}/{level}"
        for doc in [json.loads(m.payload)]
        for r in doc["readings"]
    ]


def _simulate(url: str, *args: str) -> str:
    argv = [sys.executable, "-m", "safety_hub.cli", "simulate", *args, "--url", url]
    sim = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert sim.returncode == 0, sim.stderr
    return sim.stderr


def _captured(recorder: Recorder, out: Path, at_least: int) -> list[RecordedMessage]:
    wait_for(lambda: recorder.count >= at_least, 10, "the recorded messages")
    recorder.close()
    head, messages = read_recording(out)
    assert CRITICAL_SUBSCRIPTION in head["topics"]
    return messages


def test_the_recorder_captures_both_topics_of_a_live_gateway(
    mosquitto: Any, recording: tuple[Recorder, Path]
) -> None:
    """A live ``Gateway`` splits a sample: the critical readings first, on critical; the
    recorder has both messages, seq 1 and 2; a v1.0 gateway sends the same on telemetry."""
    recorder, out = recording
    sample = [{"tag": t, "v": 0.0, "ts": 1_790_000_000_000} for t in ("LT-1101", "GT-1101")]
    gw = Gateway("127.0.0.1", mosquitto.port, ENT, critical_tags=CRITICAL)
    v10 = Gateway(
        "127.0.0.1",
        mosquitto.port,
        "e02-sodium",
        critical_tags=critical_tags(PLANT, "e02-sodium"),
        critical_topic=False,
    )
    try:
        assert gw.wait_connected() and v10.wait_connected()
        infos = gw.publish(sample)
        assert len(v10.publish([{"tag": "GT-2101", "v": 0.0}, {"tag": "TT-2101", "v": 1.0}])) == 1
        assert len(infos) == 2
    finally:
        gw.close()
        v10.close()
    messages = _captured(recorder, out, 3 + 4)  # 3 with readings, 2 x online and offline
    assert _readings(messages, "critical") == [(1, "GT-1101")]
    assert _readings(messages, "telemetry") == [(2, "LT-1101")]
    sodium = [(m.topic, json.loads(m.payload)) for m in messages if "/e02-sodium/tele" in m.topic]
    assert [(topic, [r["tag"] for r in doc["readings"]]) for topic, doc in sodium] == [
        ("hazard/v1/e02-sodium/telemetry", ["GT-2101", "TT-2101"])
    ]
    assert not [m for m in messages if m.topic == "hazard/v1/e02-sodium/critical"]


def test_simulate_load_mode_v1_1_and_v1_0(mosquitto: Any, tmp_path: Path) -> None:
    """``simulate`` (load mode) sends exactly the gas and SIS readings on critical; with
    ``--no-critical-topic`` nothing goes there and the gas readings are on telemetry."""
    for v1_0 in (False, True):
        out = tmp_path / f"load-{v1_0}.jsonl"
        recorder = Recorder(out, "127.0.0.1", mosquitto.port, url=mosquitto.url)
        try:
            assert recorder.wait_subscribed(10)
            flag = ["--no-critical-topic"] if v1_0 else []
            err = _simulate(
                mosquitto.url, "--enterprises", "1", "--rate", "400", "--duration", "1", *flag
            )
            assert ("contract v1.0" if v1_0 else "contract v1.1") in err, err
            messages = _captured(recorder, out, 3)
        finally:
            recorder.close()
        critical = {tag for _, tag in _readings(messages, "critical")}
        telemetry = {tag for _, tag in _readings(messages, "telemetry")}
        if v1_0:
            assert critical == set() and telemetry & CRITICAL
        else:
            assert critical and critical <= CRITICAL
            assert telemetry and not telemetry & CRITICAL
        seqs = sorted(
            json.loads(m.payload)["seq"] for m in messages if not m.topic.endswith("/status")
        )
        assert seqs == list(range(1, len(seqs) + 1)), "one seq counter for both topics"


def test_simulate_a_scenario_with_and_without_the_critical_topic(
    mosquitto: Any, tmp_path: Path
) -> None:
    """A scenario's gateways follow the default (v1.1); ``--no-critical-topic`` overrides."""
    path = tmp_path / "topics.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    for v1_0 in (False, True):
        out = tmp_path / f"scenario-{v1_0}.jsonl"
        recorder = Recorder(out, "127.0.0.1", mosquitto.port, url=mosquitto.url)
        try:
            assert recorder.wait_subscribed(10)
            flag = ["--no-critical-topic"] if v1_0 else []
            err = _simulate(mosquitto.url, str(path), "--speed", "20", *flag)
            assert ("contract v1.0" if v1_0 else "contract v1.1") in err, err
            assert "simulate: done" in err
            messages = _captured(recorder, out, 5)
        finally:
            recorder.close()
        critical = {tag for _, tag in _readings(messages, "critical")}
        telemetry = {tag for _, tag in _readings(messages, "telemetry")}
        assert critical | telemetry == {t.tag for t in PLANT.tags_of(ENT)}
        assert critical == (set() if v1_0 else CRITICAL)
