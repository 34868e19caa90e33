"""HTTP API on an in-memory transport and the embedded store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_hub.runtime.hub import Hub
from tests.unit.api_support import ADMIN_HEADERS, NOW, OPERATOR, make_app, make_hub, publish


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


@pytest.fixture
def client(hub: Hub, tmp_path: Path) -> Iterator[TestClient]:
    """The API as the built-in admin (the admin token)."""
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        yield client


def test_tags_list_has_setpoints_keyed_by_kind(client: TestClient) -> None:
    """Gas tags carry l1/l2 setpoints, process tags ll/l/h/hh; every tag has its chain and unit."""
    tags = client.get("/api/v1/tags").json()
    assert len(tags) >= 280
    gas = next(t for t in tags if t["kind"] == "toxic_gas")
    assert set(gas["setpoints"]) <= {"l1", "l2"} and gas["setpoints"]
    level = next(t for t in tags if t["kind"] == "level" and t["setpoints"])
    assert set(level["setpoints"]) <= {"ll", "l", "h", "hh"}
    assert level["eu"] and level["range"]["hi"] > level["range"]["lo"]
    assert level["enterprise"] and level["hazard_source"]
    only = client.get(
        "/api/v1/tags", params={"enterprise": gas["enterprise"], "kind": "toxic_gas"}
    ).json()
    assert only and all(
        t["enterprise"] == gas["enterprise"] and t["kind"] == "toxic_gas" for t in only
    )


def test_latest_and_history_after_ingest(client: TestClient, hub: Hub) -> None:
    """A reading shows as the latest value and in the raw and aggregated history."""
    publish(
        hub,
        "e01-chloralkali",
        [
            {"tag": "GT-1101", "v": 0.1, "ts": NOW - 20_000},
            {"tag": "GT-1101", "v": 0.3, "ts": NOW - 10_000},
        ],
    )
    latest = client.get("/api/v1/tags/e01-chloralkali/GT-1101/latest").json()
    assert (latest["has_value"], latest["value"], latest["ts"], latest["age_s"]) == (
        True,
        0.3,
        NOW - 10_000,
        10.0,
    )
    history = client.get("/api/v1/tags/e01-chloralkali/GT-1101/history").json()
    assert [p["value"] for p in history["points"]] == [0.1, 0.3]
    agg = client.get(
        "/api/v1/tags/e01-chloralkali/GT-1101/history",
        params={"every": 3600, "start": NOW - 3_600_000},
    ).json()
    assert sum(p["count"] for p in agg["points"]) == 2
    assert max(p["max"] for p in agg["points"]) == 0.3


def test_latest_without_data_and_unknown_tags(client: TestClient) -> None:
    """No reading yet is has_value false; an unknown tag or enterprise is a 404 naming it."""
    assert client.get("/api/v1/tags/e01-chloralkali/GT-1101/latest").json()["has_value"] is False
    missing = client.get("/api/v1/tags/e01-chloralkali/NOPE/latest")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    assert client.get("/api/v1/tags/nobody/GT-1101/history").status_code == 404


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"start": "yesterday"}, "start='yesterday'"),
        ({"start": "2026-01-01T00:00:00"}, "offset"),
        ({"start": str(NOW), "end": str(NOW - 1)}, "before end"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_history_parameters_are_4xx(
    client: TestClient, params: dict[str, str], needle: str
) -> None:
    """Bad history parameters get a 422 naming the problem, never a 5xx."""
    resp = client.get("/api/v1/tags/e01-chloralkali/GT-1101/history", params=params)
    assert resp.status_code == 422
    assert needle in resp.text


def test_health_ready_metrics_and_system(client: TestClient, hub: Hub) -> None:
    """healthz, readyz, metrics and the system view answer and reflect the state."""
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    publish(hub, "e01-chloralkali", [{"tag": "NOPE", "v": 1}])
    metrics = client.get("/metrics").text
    assert (
        'safety_hub_readings_rejected_total{enterprise="e01-chloralkali",reason="unknown_tag"} 1.0'
        in metrics
    )
    system = client.get("/api/v1/system").json()
    assert system["mqtt_connected"] is True
    assert system["spool"]["readings"] == 0
    assert len(system["gateways"]) == len(hub.plant.enterprises)
    openapi = client.get("/openapi.json").json()
    assert "/api/v1/tags/{enterprise}/{tag}/history" in openapi["paths"]


def test_gas_alarm_lifecycle_through_the_api(client: TestClient, hub: Hub) -> None:
    """Cl2 over level 2 raises latched level-1 and level-2 alarms; ack, clear and reset them."""
    publish(hub, "e01-chloralkali", [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    alarms = client.get("/api/v1/alarms", params={"enterprise": "e01-chloralkali"}).json()
    by_alert = {a["alert"]: a for a in alarms}
    assert {"ToxicGasLevel1", "ToxicGasLevel2"} <= set(by_alert)
    level2 = by_alert["ToxicGasLevel2"]
    assert (level2["state"], level2["tag"], level2["latched"]) == (
        "unacknowledged",
        "GT-1101",
        True,
    )
    assert level2["priority"] in ("high", "critical")  # grade-1 source: never below high
    alarm_id = level2["id"]
    # Reset before acknowledge is refused with a 409 naming the problem.
    op = OPERATOR.headers
    refused = client.post(f"/api/v1/alarms/{alarm_id}/reset", json={}, headers=op)
    assert refused.status_code == 409 and "acknowledged" in refused.json()["detail"]
    acked = client.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge", json={"comment": "seen"}, headers=op
    )
    assert acked.json()["state"] == "acknowledged"
    publish(hub, "e01-chloralkali", [{"tag": "GT-1101", "v": 0.0, "ts": NOW - 500}])
    assert client.get(f"/api/v1/alarms/{alarm_id}").json()["state"] == "latched"
    reset = client.post(f"/api/v1/alarms/{alarm_id}/reset", json={}, headers=op)
    assert reset.json()["state"] == "normal"
    journal = client.get(f"/api/v1/alarms/{alarm_id}/journal").json()
    assert [e["action"] for e in journal] == ["raise", "ack", "clear", "reset"]
    assert any(e["user"] == "op1" and e["comment"] == "seen" for e in journal)
    # The journal records the token's user, whatever the body says.
    assert [e["user"] for e in journal] == [None, "op1", None, "op1"]
    # Bad input: unknown alarm, unknown field, no body.
    assert client.post("/api/v1/alarms/999999/acknowledge", json={}).status_code == 404
    bogus = client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={"bogus": 1})
    assert bogus.status_code == 422 and "bogus" in bogus.text
    assert client.post(f"/api/v1/alarms/{alarm_id}/acknowledge").status_code == 422
    assert client.get("/api/v1/alarms", params={"state": "bogus"}).status_code == 422
    # Every transition went out on the enterprise's alarm topic, in order.
    wait_for_published = [t for t, _ in hub.source.published if t.endswith("/alarms")]  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while len(wait_for_published) < len(journal) and time.monotonic() < deadline:
        time.sleep(0.05)
        wait_for_published = [t for t, _ in hub.source.published if t.endswith("/alarms")]  # type: ignore[union-attr]
    assert set(wait_for_published) == {"hazard/v1/e01-chloralkali/alarms"}
    assert client.get("/api/v1/alarms/kpis").json()["annunciations"] >= 2


def test_an_alarm_id_is_decimal_digits_only_in_every_route(client: TestClient, hub: Hub) -> None:
    """An alarm id padded with whitespace or a sign, or in other digits, is a 422 naming
    alarm_id, as "abc" is, in the path of every route: pydantic alone reads "1\\x0b" as 1
    and the route acted on alarm 1 (the API fuzz test found it on dispose)."""
    publish(hub, "e01-chloralkali", [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    alarm_id = client.get("/api/v1/alarms").json()[0]["id"]
    assert client.get(f"/api/v1/alarms/{alarm_id}").status_code == 200
    op = OPERATOR.headers
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in str(alarm_id))
    for bad in (f"{alarm_id}%0B", f"%20{alarm_id}", f"+{alarm_id}", arabic_indic):
        answers = [client.get(f"/api/v1/alarms/{bad}"), client.get(f"/api/v1/alarms/{bad}/journal")]
        for action in ("acknowledge", "dispose"):
            body = {"category": "instrument_fault", "text": "x"} if action == "dispose" else {}
            answers.append(client.post(f"/api/v1/alarms/{bad}/{action}", json=body, headers=op))
        for answer in answers:
            assert answer.status_code == 422, (bad, answer.request.url, answer.text)
            assert answer.json()["detail"][0]["loc"] == ["path", "alarm_id"]
    assert client.get(f"/api/v1/alarms/{alarm_id}").json()["state"] == "unacknowledged"
