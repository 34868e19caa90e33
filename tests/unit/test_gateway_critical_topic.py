"""The simulated gateways speak contract v1.1 (docs/simulators.md, "Enterprise gateway"): the
readings of gas detectors and SIS tags on ``hazard/v1/{enterprise}/critical``, the rest on
``.../telemetry``, one ``seq`` counter for both; ``critical_topic=False`` is a v1.0 gateway;
after an outage store-and-forward sends the buffered critical readings first."""

from __future__ import annotations

import json
from typing import Any

from safety_hub.registry import default_plant_path, load_plant
from safety_hub.runtime.hub import CRITICAL_KINDS as HUB_CRITICAL_KINDS
from safety_hub.scenarios import load_scenario
from simulators.gateway import (
    CRITICAL_KINDS,
    GatewayModel,
    Publication,
    SampledReading,
    critical_tags,
)
from simulators.world import World, readings_of
from tests.scenarios import SCENARIOS, assert_passed, run_scenario

TELEMETRY = "hazard/v1/e01/telemetry"
CRITICAL = "hazard/v1/e01/critical"
GAS = ("GT-1", "GT-2", "UZ-1")  # gas detectors and a SIF's trip: critical
PROCESS = ("LT-1", "PT-1", "XS-1")  # a level, a pressure, a status tag: not


def _sample(value: float = 1.0) -> list[tuple[str, float, str]]:
    """Process and critical readings interleaved, as a gateway samples them."""
    return [(tag, value, "good") for pair in zip(PROCESS, GAS, strict=True) for tag in pair]


def _messages(pubs: list[Publication]) -> list[tuple[str, int, list[str], Any]]:
    """(topic, seq, tags, ts) of each telemetry message."""
    out = []
    for p in pubs:
        doc = json.loads(p.payload)
        out.append((p.topic, doc["seq"], [r["tag"] for r in doc["readings"]], doc["ts"]))
    return out


def test_the_gateways_critical_kinds_are_the_hubs() -> None:
    """What the simulators send on the critical topic is what the hub's triage takes as
    critical: gas detectors (oxygen included) and SIS tags, nothing else."""
    assert CRITICAL_KINDS == HUB_CRITICAL_KINDS
    plant = load_plant(default_plant_path())
    tags = critical_tags(plant, "e01-chloralkali")
    kinds = {t.tag: t.kind for t in plant.tags_of("e01-chloralkali")}
    assert {"GT-1101", "OT-1901", "UZ-1101", "UZ-1101.BP", "UZ-1101.FLT"} <= tags
    assert not {"LT-1101", "PT-1101", "XS-1105", "AIT-1105"} & tags
    assert tags == {tag for tag, kind in kinds.items() if kind in HUB_CRITICAL_KINDS}


def test_a_sample_is_one_message_per_topic_critical_first() -> None:
    """A sample of gas and process readings: one message on critical with exactly the gas and
    SIS readings, then one on telemetry with the rest; seq counts across both; ts as ever."""
    gw = GatewayModel("e01", critical_tags=GAS, clock_skew_ms=-500)
    gw.connect(0)
    first = _messages(gw.sample(1000, _sample()))
    assert first == [
        (CRITICAL, 1, list(GAS), 500),
        (TELEMETRY, 2, list(PROCESS), 500),
    ]
    # the next sample continues the one counter; a sample of one kind is one message
    assert _messages(gw.sample(2000, [("LT-1", 2.0, "good")])) == [(TELEMETRY, 3, ["LT-1"], 1500)]
    assert _messages(gw.sample(3000, [("GT-2", 2.0, "bad")])) == [(CRITICAL, 4, ["GT-2"], 2500)]
    # an injected reading goes on its tag's topic too
    pub = gw.send_reading(4000, SampledReading("UZ-1", 1.0, "good", 3900))
    assert _messages([pub]) == [(CRITICAL, 5, ["UZ-1"], 3900)]


def test_batches_are_per_topic() -> None:
    """``batch`` bounds each message; the split comes first, so no message mixes topics."""
    gw = GatewayModel("e01", batch=2, critical_tags=GAS)
    gw.connect(0)
    got = _messages(gw.sample(1000, _sample()))
    assert [(topic, seq, tags) for topic, seq, tags, _ in got] == [
        (CRITICAL, 1, ["GT-1", "GT-2"]),
        (CRITICAL, 2, ["UZ-1"]),
        (TELEMETRY, 3, ["LT-1", "PT-1"]),
        (TELEMETRY, 4, ["XS-1"]),
    ]


def test_a_v1_0_gateway_puts_everything_on_telemetry() -> None:
    """``critical_topic=False``: the same sample in one telemetry message, in sampled order."""
    gw = GatewayModel("e01", critical_tags=GAS, critical_topic=False)
    gw.connect(0)
    sample = _sample()
    assert _messages(gw.sample(1000, sample)) == [
        (TELEMETRY, 1, [tag for tag, _, _ in sample], 1000)
    ]
    assert gw.send_reading(2000, SampledReading("GT-1", 1.0, "good", 2000)).topic == TELEMETRY


def test_store_and_forward_sends_the_buffered_critical_readings_first() -> None:
    """After an outage: the online status, then every buffered critical reading (in sampling
    order, original timestamps), then the buffered rest; seq continues from before."""
    gw = GatewayModel("e01", critical_tags=GAS, store_and_forward=True)
    gw.connect(0)
    assert len(gw.sample(1000, _sample())) == 2  # seq 1, 2
    gw.disconnect(1500, graceful=False)
    assert gw.sample(2000, _sample(2.0)) == []
    assert gw.sample(3000, _sample(3.0)) == []
    out = gw.connect(10_000)
    assert (out[0].topic, out[0].payload) == ("hazard/v1/e01/status", b'{"state":"online"}')
    docs = [json.loads(p.payload) for p in out[1:]]
    assert [(p.topic, d["seq"], d["ts"]) for p, d in zip(out[1:], docs, strict=True)] == [
        (CRITICAL, 3, 3000),
        (TELEMETRY, 4, 3000),
    ]
    assert [(r["tag"], r["v"], r["ts"]) for r in docs[0]["readings"]] == [
        (tag, v, ts) for ts, v in ((2000, 2.0), (3000, 3.0)) for tag in GAS
    ]
    assert [(r["tag"], r["ts"]) for r in docs[1]["readings"]] == [
        (tag, ts) for ts in (2000, 3000) for tag in PROCESS
    ]
    assert all(p.at_ms == 10_000 for p in out)


def test_a_v1_0_gateway_forwards_its_buffer_as_before() -> None:
    """Without the critical topic the buffer goes out in sampling order, on telemetry."""
    gw = GatewayModel("e01", critical_tags=GAS, store_and_forward=True, critical_topic=False)
    gw.disconnect(0, graceful=False)
    gw.sample(2000, _sample())
    gw.sample(3000, _sample())
    (_status, forwarded) = gw.connect(10_000)
    doc = json.loads(forwarded.payload)
    assert forwarded.topic == TELEMETRY and doc["seq"] == 1
    assert [r["tag"] for r in doc["readings"]] == [tag for tag, _, _ in _sample()] * 2


SCENARIO = """\
scenario: 1
name: the gateways' topics
start: 2026-06-05T14:00:00+08:00
duration: 20s
enterprises: [e01-chloralkali, e02-sodium]
"""


def _topics_by_tag(pubs: list[Publication]) -> dict[tuple[str, str], set[str]]:
    """(enterprise, tag) -> the topic levels its readings went on."""
    out: dict[tuple[str, str], set[str]] = {}
    for p in pubs:
        _, _, code, level = p.topic.split("/")
        if level == "status":
            continue
        for r in json.loads(p.payload)["readings"]:
            out.setdefault((code, r["tag"]), set()).add(level)
    return out


def test_a_scenarios_gateways_speak_v1_1_unless_told_otherwise() -> None:
    """By default every critical tag of the plant publishes on critical only and every other
    tag on telemetry only; ``gateways: {code: {critical_topic: false}}`` makes that one
    gateway v1.0, and ``World(critical_topic=False)`` makes them all v1.0."""
    scenario = load_scenario(SCENARIO)
    plant = scenario.plant
    critical = {(code, tag) for code in plant.enterprises for tag in critical_tags(plant, code)}
    got = _topics_by_tag(list(World(scenario).messages()))
    assert set(got) == set(plant.tags)  # every tag published within 20 s
    assert {k for k, levels in got.items() if levels == {"critical"}} == critical
    assert {k for k, levels in got.items() if levels == {"telemetry"}} == set(got) - critical

    one_v1_0 = load_scenario(SCENARIO + "gateways:\n  e02-sodium: {critical_topic: false}\n")
    got = _topics_by_tag(list(World(one_v1_0).messages()))
    assert {k for k, levels in got.items() if levels == {"critical"}} == {
        k for k in critical if k[0] == "e01-chloralkali"
    }
    assert all(levels == {"telemetry"} for k, levels in got.items() if k[0] == "e02-sodium")

    got = _topics_by_tag(list(World(scenario, critical_topic=False).messages()))
    assert all(levels == {"telemetry"} for levels in got.values())


def test_readings_of_decodes_both_topics() -> None:
    """``readings_of`` gives the readings of the critical topic too: all tags, each sample."""
    scenario = load_scenario(SCENARIO)
    decoded = {(r.enterprise, r.tag) for _, r in readings_of(scenario)}
    assert decoded == set(scenario.plant.tags)


def test_a_v1_0_gateway_raises_the_same_alarms_in_replay() -> None:
    """The same leak sent by a v1.0 gateway (gas readings on telemetry) passes its expectations
    with the same alarms in the same order, and the same readings stored."""
    text = (SCENARIOS / "hcn_leak_2oo3.yaml").read_text(encoding="utf-8")
    v1_0 = text.replace(
        "enterprises: [e04-finechem]\n",
        "enterprises: [e04-finechem]\ngateways:\n  e04-finechem: {critical_topic: false}\n",
    )
    assert v1_0 != text
    scenario = load_scenario(v1_0)
    assert not any(p.topic.endswith("/critical") for p in World(scenario).messages())
    default, older = run_scenario(text), run_scenario(v1_0)
    assert_passed(default)
    assert_passed(older)
    assert older.keys_raised() == default.keys_raised()
    assert older.readings == default.readings
