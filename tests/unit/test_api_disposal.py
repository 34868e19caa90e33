"""The closed loop through the API: dispose, 409/422/403/404, the overdue filter, the records."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from safety_hub.alarms import Condition, Transition
from safety_hub.clock import VirtualClock
from safety_hub.runtime.alarm_runtime import alarm_event_line
from safety_hub.runtime.hub import Hub
from tests.unit.api_support import (
    ADMIN_HEADERS,
    E1,
    E1_OPERATOR,
    E2,
    E2_OPERATOR,
    E2_VIEWER,
    NOW,
    OPERATOR,
    VIEWER,
    make_app,
    make_hub,
    publish,
)
from tests.unit.fakes import MemorySource

MINUTE = 60_000


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


@pytest.fixture
def client(hub: Hub, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(hub, tmp_path)) as client:
        yield client


def level2_alarms(hub: Hub, client: TestClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """Chlorine past level 2 in E1 and E2: an orange warning in each (the sample rules)."""
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    publish(hub, E2, [{"tag": "GT-2101", "v": 0.8, "ts": NOW - 1000}])
    alarms = client.get("/api/v1/alarms", headers=ADMIN_HEADERS).json()
    e1 = next(a for a in alarms if a["enterprise"] == E1 and a["alert"] == "ToxicGasLevel2")
    e2 = next(a for a in alarms if a["enterprise"] == E2 and a["alert"] == "ToxicGasLevel2")
    return e1, e2


def mqtt_events_of(hub: Hub, alarm_id: int, until_action: str) -> list[dict[str, Any]]:
    """The alarm's MQTT alarm events, published or waiting in the outbox, once the one with
    ``until_action`` is among them (waiting up to 10 s for the outbox publisher)."""
    source = hub.source
    assert isinstance(source, MemorySource)
    deadline = time.monotonic() + 10
    while True:
        payloads = [p for _, p in list(source.published)]
        payloads += [row.payload for row in hub.outbox.pending(1000)]
        events = sorted((json.loads(p) for p in payloads), key=lambda e: e["seq"])
        mine = list({e["seq"]: e for e in events if e["alarm"]["id"] == alarm_id}.values())
        if any(e["action"] == until_action for e in mine) or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


def overdue_ids(client: TestClient, headers: dict[str, str] = ADMIN_HEADERS) -> set[int]:
    listed = client.get("/api/v1/alarms", params={"overdue": "true"}, headers=headers)
    assert listed.status_code == 200
    return {a["id"] for a in listed.json()}


def test_an_orange_warning_goes_overdue_and_leaves_the_list_once_disposed(
    hub: Hub, client: TestClient
) -> None:
    seen: list[Transition] = []
    hub.alarms.service.subscribe(seen.append)
    e1, e2 = level2_alarms(hub, client)
    assert e1["tier"] == "orange" and e1["disposal"] is None and not e1["disposal_overdue"]
    assert e1["disposal_due_ms"] == e1["raised_ms"] + 120 * MINUTE
    assert overdue_ids(client) == set()
    clock = hub.clock
    assert isinstance(clock, VirtualClock)
    clock.advance(119 * MINUTE)
    hub.alarms.tick()
    assert overdue_ids(client) == set()
    clock.advance(2 * MINUTE)
    hub.alarms.tick()
    assert overdue_ids(client) == {e1["id"], e2["id"]}
    assert overdue_ids(client, E2_VIEWER.headers) == {e2["id"]}
    one = client.get(f"/api/v1/alarms/{e1['id']}", headers=VIEWER.headers).json()
    assert one["disposal_overdue"] and one["age_ms"] == 121 * MINUTE

    done = client.post(
        f"/api/v1/alarms/{e1['id']}/dispose",
        json={"category": "false_alarm", "text": "calibration gas during a bump test"},
        headers=E1_OPERATOR.headers,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["disposal"]["by"] == "e1-op" and body["disposal"]["category"] == "false_alarm"
    assert body["state"] == e1["state"] and not body["disposal_overdue"]
    assert overdue_ids(client) == {e2["id"]}
    journal = client.get(f"/api/v1/alarms/{e1['id']}/journal", headers=VIEWER.headers).json()
    assert [e["action"] for e in journal][-2:] == ["disposal_overdue", "dispose"]
    assert journal[-1]["comment"] == "false_alarm: calibration gas during a bump test"
    # Both went to the outputs: the MQTT alarm events (outbox) and the alarm_event lines.
    mine = mqtt_events_of(hub, e1["id"], until_action="dispose")
    assert [e["action"] for e in mine][-2:] == ["disposal_overdue", "dispose"]
    assert mine[-2]["alarm"]["disposal_overdue"] and not mine[-2]["annunciated"]
    assert mine[-1]["alarm"]["disposal"]["text"] == "calibration gas during a bump test"
    lines = [alarm_event_line(t) for t in seen if t.alarm.id == e1["id"]]
    assert "action=disposal_overdue" in lines[-2]
    assert "action=dispose" in lines[-1] and 'category="false_alarm"' in lines[-1]
    not_overdue = client.get("/api/v1/alarms", params={"overdue": "false"}, headers=ADMIN_HEADERS)
    assert e1["id"] in {a["id"] for a in not_overdue.json()}


def test_dispose_conflicts_bounds_and_permissions(hub: Hub, client: TestClient) -> None:
    e1, _ = level2_alarms(hub, client)
    url = f"/api/v1/alarms/{e1['id']}/dispose"
    ok = {"category": "real_release", "text": "valve gland leak; isolated and repacked"}
    assert client.post(url, json=ok, headers=VIEWER.headers).status_code == 403
    assert client.post(url, json=ok, headers=E2_OPERATOR.headers).status_code == 404
    for bad in (
        {"category": "sabotage", "text": "x"},
        {"category": "other", "text": ""},
        {"category": "other", "text": "x" * 2001},
        {"category": "other"},
        {"category": "other", "text": "x", "extra": 1},
    ):
        assert client.post(url, json=bad, headers=OPERATOR.headers).status_code == 422, bad
    assert client.post(url, json=ok, headers=OPERATOR.headers).status_code == 200
    again = client.post(url, json=ok, headers=OPERATOR.headers)
    assert again.status_code == 409 and "already disposed" in again.json()["detail"]
    assert (
        client.post("/api/v1/alarms/999999/dispose", json=ok, headers=OPERATOR.headers).status_code
        == 404
    )


def test_a_blue_warning_needs_no_disposal(hub: Hub, client: TestClient) -> None:
    svc = hub.alarms.service
    level2_alarms(hub, client)
    svc.apply(
        Condition(
            key="Info|e01-chloralkali|XT-1",
            alert="Info",
            active=True,
            ts_ms=NOW,
            enterprise=E1,
            hazard_source="",
            tag="XT-1",
            zone=None,
            priority="low",
            alarm_class="process",
            latch=False,
        )
    )
    low = [a for a in svc.list() if a.priority.value == "low"]
    refused = client.post(
        f"/api/v1/alarms/{low[0].id}/dispose",
        json={"category": "other", "text": "n/a"},
        headers=OPERATOR.headers,
    )
    assert refused.status_code == 409 and "blue" in refused.json()["detail"]


def test_disposal_records_are_listed_filtered_and_scoped(hub: Hub, client: TestClient) -> None:
    e1, e2 = level2_alarms(hub, client)
    clock = hub.clock
    assert isinstance(clock, VirtualClock)
    clock.advance(5 * MINUTE)
    first = client.post(
        f"/api/v1/alarms/{e1['id']}/dispose",
        json={"category": "false_alarm", "text": "bump test"},
        headers=OPERATOR.headers,
    )
    assert first.status_code == 200
    clock.advance(5 * MINUTE)
    second = client.post(
        f"/api/v1/alarms/{e2['id']}/dispose",
        json={"category": "real_release", "text": "flange leak"},
        headers=OPERATOR.headers,
    )
    assert second.status_code == 200
    every = client.get("/api/v1/disposals", headers=VIEWER.headers).json()
    assert [(d["alarm_id"], d["category"]) for d in every] == [
        (e1["id"], "false_alarm"),
        (e2["id"], "real_release"),
    ]
    assert [d["time_to_dispose_ms"] for d in every] == [5 * MINUTE, 10 * MINUTE]
    assert every[0]["tag"] == "GT-1101" and every[0]["tier"] == "orange" and every[0]["by"] == "op1"

    def ids(params: dict[str, Any], headers: dict[str, str] = VIEWER.headers) -> list[int]:
        got = client.get("/api/v1/disposals", params=params, headers=headers)
        assert got.status_code == 200, got.text
        return [d["alarm_id"] for d in got.json()]

    assert ids({"category": "real_release"}) == [e2["id"]]
    assert ids({"enterprise": E1}) == [e1["id"]]
    assert ids({"since": NOW + 6 * MINUTE}) == [e2["id"]]
    assert ids({"until": NOW + 6 * MINUTE}) == [e1["id"]]
    assert ids({}, E2_VIEWER.headers) == [e2["id"]]
    assert (
        client.get(f"/api/v1/disposals?enterprise={E1}", headers=E2_VIEWER.headers).status_code
        == 403
    )
    assert client.get("/api/v1/disposals?category=bogus", headers=VIEWER.headers).status_code == 422
    # Ten silent minutes on the virtual clock take every enterprise's link down; the watchdog
    # raises those alarms on its own thread, so wait for all five before counting.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = client.get("/api/v1/alarms", headers=ADMIN_HEADERS).json()
        if sum(a["alert"] == "EnterpriseLinkDown" for a in listed) == 5:
            break
        time.sleep(0.05)
    kpis = client.get("/api/v1/alarms/kpis", headers=VIEWER.headers).json()["disposal"]
    # level 1 (yellow) and level 2 (orange) in each enterprise, five yellow link-downs; the two
    # level-2s disposed
    assert (kpis["needed"], kpis["disposed"]) == (9, 2)
    assert kpis["rate_pct"] == pytest.approx(200 / 9)
    assert kpis["median_time_to_dispose_ms"] == 7.5 * MINUTE
    assert kpis["p90_time_to_dispose_ms"] == 10 * MINUTE
    assert kpis["false_alarms"] == [{"enterprise": E1, "tag": "GT-1101", "count": 1}]
