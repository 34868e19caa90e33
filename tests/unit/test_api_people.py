"""People and rosters through the API: contact URLs redacted, enterprise scope, who is on duty
now and at a given time (the sample park's people, the hub's virtual clock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_hub.runtime.hub import Hub
from tests.unit.api_support import ADMIN_HEADERS, E2, E2_VIEWER, VIEWER, make_app, make_hub

# NOW (tests.unit.api_support) is 2026-09-21 22:13 in Shanghai: the night shift of cycle day 3
# (park-duty-3); at 08:00 on the 22nd cycle day 0 begins (park-duty-1).


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


@pytest.fixture
def client(hub: Hub, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        yield client


def test_people_are_listed_with_redacted_contacts(client: TestClient, hub: Hub) -> None:
    people = client.get("/api/v1/people").json()
    assert len(people) == len(hub.people) == 11
    by_id = {p["id"]: p for p in people}
    officer = by_id["e01-safety"]
    assert officer["name"] == "王建国"
    assert officer["roles"] == ["enterprise_safety_officer"]
    assert officer["enterprises"] == ["e01-chloralkali"]
    assert officer["contacts"][0] == {
        "channel": "email",
        "target": "mailtos://smtp.example.com/***",
    }
    assert by_id["park-director"]["enterprises"] is None
    assert by_id["park-director"]["contacts"][0] == {
        "channel": "dingtalk",
        "target": "dingtalk:///***",
    }
    text = client.get("/api/v1/people").text
    assert (
        "wang.jianguo" not in text and "EXAMPLE-DINGTALK" not in text and "13800000001" not in text
    )


def test_a_scoped_user_sees_their_enterprise_and_the_park(client: TestClient) -> None:
    people = client.get("/api/v1/people", headers=E2_VIEWER.headers).json()
    ids = [p["id"] for p in people]
    assert "e02-safety" in ids and "park-duty-1" in ids and "regulator-duty" in ids
    assert not [i for i in ids if i.startswith("e0") and i != "e02-safety"], ids
    assert all(p["enterprises"] in (None, [E2]) for p in people)
    rosters = client.get("/api/v1/rosters", headers=E2_VIEWER.headers).json()
    assert [r["name"] for r in rosters] == ["park-duty"]  # its people are park-wide


def test_rosters_show_who_is_on_duty_now_and_the_next_change(client: TestClient) -> None:
    (roster,) = client.get("/api/v1/rosters", headers=VIEWER.headers).json()
    assert roster["name"] == "park-duty" and roster["time_zone"] == "Asia/Shanghai"
    assert roster["shifts"] == [
        {"name": "day", "start": "08:00", "end": "20:00"},
        {"name": "night", "start": "20:00", "end": "08:00"},
    ]
    now = roster["on_duty"]
    assert (now["shift"], now["date"]) == ("night", "2026-09-21")
    assert now["people"] == [{"id": "park-duty-3", "name": "周强"}]
    assert now["start"] == "2026-09-21T20:00:00+08:00"
    nxt = roster["next"]
    assert nxt["start"] == "2026-09-22T08:00:00+08:00" == now["end"]
    assert nxt["people"] == [{"id": "park-duty-1", "name": "赵磊"}]
    assert nxt["start_ms"] == now["end_ms"]


def test_on_duty_at_a_time_and_an_override(client: TestClient) -> None:
    at = client.get("/api/v1/rosters/park-duty/on_duty", params={"at": "2026-09-22T07:59:00+08:00"})
    assert at.json()["people"][0]["id"] == "park-duty-3"
    at = client.get("/api/v1/rosters/park-duty/on_duty", params={"at": "2026-09-22T08:00:00+08:00"})
    assert at.json()["people"][0]["id"] == "park-duty-1"
    swapped = client.get(
        "/api/v1/rosters/park-duty/on_duty", params={"at": "2026-10-01T10:00:00+08:00"}
    ).json()
    assert swapped["overridden"] and swapped["people"][0]["id"] == "park-duty-3"
    assert swapped["override_reason"].startswith("国庆调班")
    ms = client.get("/api/v1/rosters/park-duty/on_duty", params={"at": str(swapped["start_ms"])})
    assert ms.json() == swapped


def test_unknown_rosters_and_bad_times_are_refused(client: TestClient) -> None:
    missing = client.get("/api/v1/rosters/park-dutty/on_duty")
    assert missing.status_code == 404
    assert "park-dutty" in missing.json()["detail"]
    bad = client.get("/api/v1/rosters/park-duty/on_duty", params={"at": "yesterday"})
    assert bad.status_code == 422
    assert client.get("/api/v1/people", params={"role": "x"}).status_code == 422
    anonymous = TestClient(client.app).get("/api/v1/people")
    assert anonymous.status_code == 401


def test_a_hub_on_another_plant_without_a_people_file_has_nobody(tmp_path: Path) -> None:
    plant = Path(__file__).parent.parent / "data" / "special_plant.yaml"
    hub = make_hub(tmp_path, plant=plant)
    assert len(hub.people) == 0
    assert hub.people.resolve("role:park_duty_officer", enterprise=None, at_ms=0) == []
