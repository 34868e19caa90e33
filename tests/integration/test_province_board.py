"""The province Grafana board against what a province-mode hub wrote into a real InfluxDB.

A province hub (``safety-hub run``, SAFETY_HUB_PROVINCE=on, InfluxDB 1.6 over the v1 API) hears
from two parks: park A is a real park hub with an ``mqtt_bridge`` uplink and a gateway whose
chlorine detector goes past level 2; park B is published as a park hub's bridge would, with one
orange warning, one reading, a repeated record, a record whose park is not its topic's, and a
third park that the province's bound (two parks) refuses. Every query of the province board is
then run as Grafana would prepare it, and each answer must show the parks' tiers, counts,
readings and refusals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dashboards.build import build_all
from safety_hub.registry import default_plant_path, load_plant
from safety_hub.rules import default_rules_path, load_rules
from safety_hub.uplink.province import TIER_RANK
from tests.fixtures.processes import InfluxDB1Process, MosquittoProcess
from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.test_dashboards_influx import Answer, Incident, Runner
from tests.integration.test_province_e2e import CL2, ENTERPRISE, SOURCE, ParkHub, start_parks

pytestmark = pytest.mark.integration

UID = "safety-hub-province"
PARK_A, PARK_B = "alxa-hitech", "park-b"
CL2_PEAK = 1.2  # ppm, past GT-1101's level 2 (0.6)
B_READING = {"enterprise": "eb", "hazard_source": "HS-B1", "tag": "PT-B1", "eu": "MPa"}


class Bridge:
    """Publishes records on the province broker as a park hub's MQTT bridge does."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-bridge")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.n = 0

    def send(self, park: str, kind: str, data: dict[str, Any], *, topic_park: str = "") -> str:
        self.n += 1
        body = {"park": park, "dataId": f"{self.n:032x}", "kind": kind, "key": kind, "data": data}
        self.raw(topic_park or park, json.dumps(body))
        return body["dataId"]  # type: ignore[return-value]

    def raw(self, topic_park: str, payload: str) -> None:
        topic = f"province/v1/{topic_park}/records"
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def send_park_b(bridge: Bridge, now_ms: int) -> dict[str, Any]:
    """Park B's records; returns what the board must show of them."""
    bridge.send(PARK_B, "enterprise", {"enterprise": "eb", "name": "B 化工"})
    bridge.send(PARK_B, "hazard_source", {"enterprise": "eb", "hazard_source": "HS-B1", "grade": 2})
    point = {**B_READING, "point_code": "eb/PT-B1"}
    bridge.send(PARK_B, "reading", {**point, "value": 7.5, "quality": "good", "ts_ms": now_ms})
    warning = {**point, "alarm_id": 11, "tier": "orange", "state": "unacknowledged"}
    first = bridge.send(PARK_B, "warning", warning)
    bridge.raw(  # the same record again: a re-send after a lost PUBACK
        PARK_B,
        json.dumps(
            {"park": PARK_B, "dataId": first, "kind": "warning", "key": "w", "data": warning}
        ),
    )
    bridge.send("park-x", "enterprise", {"enterprise": "ex"}, topic_park=PARK_B)  # malformed
    bridge.send("park-c", "enterprise", {"enterprise": "ec"})  # a third park: too many
    return {"records": 4, "duplicates": 1}


@pytest.fixture
def province(
    influxdb1: InfluxDB1Process,
    influx_db: str,
    tmp_path: Path,
    mosquitto_factory: Callable[..., MosquittoProcess],
) -> Iterator[tuple[HubProcess, ParkHub, Bridge, int]]:
    started_ms = int(time.time() * 1000)
    broker = mosquitto_factory()
    hub = HubProcess(
        tmp_path / "province",
        {
            "SAFETY_HUB_MQTT_URL": broker.url,
            "SAFETY_HUB_PROVINCE": "on",
            "SAFETY_HUB_PROVINCE_MAX_PARKS": "2",
            "SAFETY_HUB_INFLUX_URL": influxdb1.url,
            "SAFETY_HUB_INFLUX_API": "v1",
            "SAFETY_HUB_INFLUX_BUCKET": influx_db,
            "SAFETY_HUB_NOTIFY": "off",
        },
    )
    hub.start()
    bridge = Bridge(broker.port)
    park_a = ParkHub(tmp_path / "a", mosquitto_factory(), broker.port, default_plant_path())
    try:
        start_parks(park_a)
        yield hub, park_a, bridge, started_ms
    finally:
        park_a.close()
        park_a.hub.stop()
        bridge.close()
        hub.stop()


def latest_tiers(influx: InfluxDB1Process, db: str) -> dict[str, int]:
    body = influx.query(
        'SELECT last("worst_tier") FROM "province_park_stats" GROUP BY "park"', db, epoch="ms"
    )
    series = [s for r in body["results"] for s in r.get("series", [])]
    return {s["tags"]["park"]: s["values"][-1][1] for s in series}


def test_the_province_board_shows_each_parks_tier_link_and_readings(
    province: tuple[HubProcess, ParkHub, Bridge, int], influxdb1: InfluxDB1Process, influx_db: str
) -> None:
    hub, park_a, bridge, started_ms = province
    wait_for(lambda: PARK_A in parks_of(hub), 60, "park A at the province")
    wait_for(lambda: park_a.uplink()["backlog"] == 0, 90, "park A's base data sent")
    cl2_ts = int(time.time() * 1000)
    park_a.publish([{"tag": CL2, "v": CL2_PEAK}], ts_ms=cl2_ts)
    expected_b = send_park_b(bridge, cl2_ts)
    wait_for(
        lambda: TIER_RANK.get(str(parks_of(hub).get(PARK_A, {}).get("worst_tier")), 0) >= 3,
        60,
        "park A's red/orange tier at the province",
    )
    tier_a = TIER_RANK[parks_of(hub)[PARK_A]["worst_tier"]]
    # The province writes its statistics every 10 s; its sink then writes them to InfluxDB.
    wait_for(
        lambda: latest_tiers(influxdb1, influx_db) == {PARK_A: tier_a, PARK_B: 3},
        90,
        "both parks' tiers in InfluxDB",
        interval=1,
    )
    view = {p: hub.get(f"/api/v1/province/parks/{p}").json() for p in (PARK_A, PARK_B)}
    plant = load_plant(default_plant_path())
    incident = Incident(
        plant=plant,
        boards=build_all(plant, load_rules(default_rules_path(), plant)),
        db=influx_db,
        influx=influxdb1,
        start_ms=started_ms - 60_000,
        end_ms=int(time.time() * 1000) + 60_000,
        annunciations=0,
        annunciations_hs=0,
        acked_priority="",
    )
    r = Runner(incident, incident.boards[UID], {})
    assert r.values["park"] == [PARK_A, PARK_B]  # park-c was refused: not on the board
    assert {ENTERPRISE, "eb"} <= set(r.values["enterprise"])
    assert {CL2, "PT-B1"} <= set(r.values["tag"])

    parks_stat, _, _ = r.panel("园区数 Parks")
    assert last(parks_stat) == 2
    worst, _, _ = r.panel("Worst tier in the province")
    assert last(worst) == max(tier_a, 3)
    stale, _, _ = r.panel("Parks with a stale link")
    assert last(stale) == 0
    subscribed, _, _ = r.panel("Subscribed to the parks")
    assert last(subscribed) == 1

    table, panel, _ = r.panel("Parks by worst open tier")
    rows = {row["park"]: row for row in table.rows()}
    assert set(rows) == {PARK_A, PARK_B}
    assert rows[PARK_A]["tier"] == tier_a and rows[PARK_B]["tier"] == 3
    for park in (PARK_A, PARK_B):
        assert rows[park]["link"] == 0
        assert rows[park]["enterprises"] == view[park]["enterprises"]
        assert rows[park]["hazard_sources"] == view[park]["hazard_sources"]
    assert rows[PARK_B]["open_warnings"] == 1 and rows[PARK_B]["enterprises"] == 1
    (tier_override,) = [
        o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "tier"
    ]
    colours = {p["id"]: p["value"] for p in tier_override["properties"]}
    assert colours["custom.cellOptions"] == {"type": "color-background"}
    assert colours["mappings"][0]["options"]["4"]["color"] == "red"

    by_tier, _, target = r.panel("Open warnings by tier, per park")
    named = named_last(by_tier, target["alias"])
    assert named[f"{PARK_B} orange"] == 1 and named[f"{PARK_B} red"] == 0
    top = {3: "orange", 4: "red"}[tier_a]
    assert named[f"{PARK_A} {top}"] >= 1
    timeline, _, target = r.panel("Worst tier per park over time")
    maxima = named_max(timeline, target["alias"])
    assert maxima == {PARK_A: tier_a, PARK_B: 3}

    _link_health(r, expected_b)
    _readings(r)
    _every_query_has_an_expectation(r)


def _link_health(r: Runner, expected_b: dict[str, Any]) -> None:
    age, _, target = r.panel("Age of the last record, per park")
    ages = named_last(age, target["alias"])
    assert set(ages) == {PARK_A, PARK_B} and all(0 <= a < 180 for a in ages.values())
    link, _, target = r.panel("Link per park")
    assert named_last(link, target["alias"]) == {PARK_A: 1, PARK_B: 1}
    taken, _, target = r.panel("Records taken, per park")
    sums = named_sum(taken, target["alias"])
    assert sums[PARK_B] == expected_b["records"] and sums[PARK_A] > 0
    duplicates, _, target = r.panel("Duplicates, per park")
    assert named_sum(duplicates, target["alias"]).get(PARK_B) == expected_b["duplicates"]
    refused, _, target = r.panel("Refused, by reason")
    assert named_sum(refused, target["alias"]) == {
        "record: malformed": 1,
        "record: too_many_parks": 1,
    }


def _readings(r: Runner) -> None:
    readings, _, target = r.panel("园区读数 Readings")
    series = {
        name: [v for v in s["values"] if v[1] is not None]
        for name, s in readings.by_name(target["alias"]).items()
    }
    cl2 = series[f"{PARK_A}/{ENTERPRISE}/{CL2}"]
    assert max(v[1] for v in cl2) == CL2_PEAK
    assert [v[1] for v in series[f"{PARK_B}/eb/PT-B1"]] == [7.5]
    latest, _, _ = r.panel("Latest readings")
    rows = {(row["park"], row["tag"]): row for row in latest.rows()}
    assert rows[PARK_A, CL2]["value"] == CL2_PEAK
    assert rows[PARK_A, CL2]["hazard_source"] == SOURCE
    b = rows[PARK_B, "PT-B1"]
    assert (b["enterprise"], b["hazard_source"], b["value"], b["eu"], b["quality"]) == (
        "eb",
        "HS-B1",
        7.5,
        "MPa",
        "good",
    )


def _every_query_has_an_expectation(r: Runner) -> None:
    for panel in r.board["panels"]:
        for target in panel.get("targets", []):
            assert r.run(target["query"]).series, f"{panel['title']} returned nothing"
            assert (panel["id"], target["refId"]) in r.asserted, (
                f"{panel['title']} [{target['refId']}] has no expectation in this test"
            )


def parks_of(hub: HubProcess) -> dict[str, dict[str, Any]]:
    response = hub.get("/api/v1/province/parks")
    response.raise_for_status()
    return {p["park"]: p for p in response.json()["parks"]}


def last(answer: Answer) -> Any:
    values = [v for v in answer.column(answer.series[0]["columns"][1]) if v is not None]
    return values[-1]


def _values(answer: Answer, alias: str) -> dict[str, list[Any]]:
    """Series name (alias rendered, ``$col`` included) -> its non-null values."""
    out: dict[str, list[Any]] = {}
    for s in answer.series:
        for i, column in enumerate(s["columns"][1:], start=1):
            name = alias.replace("$col", column)
            tags = s.get("tags") or {}
            for key, value in tags.items():
                name = name.replace(f"$tag_{key}", value)
            out[name] = [row[i] for row in s["values"] if row[i] is not None]
    return out


def named_last(answer: Answer, alias: str) -> dict[str, Any]:
    return {k: v[-1] for k, v in _values(answer, alias).items() if v}


def named_max(answer: Answer, alias: str) -> dict[str, Any]:
    return {k: max(v) for k, v in _values(answer, alias).items() if v}


def named_sum(answer: Answer, alias: str) -> dict[str, Any]:
    return {k: sum(v) for k, v in _values(answer, alias).items() if v}
