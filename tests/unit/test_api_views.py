"""The console's views: the plant with alarm tiers, the alarm summary, the paginated list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_hub.api.routes.plant import GRID_STEP_M, layout
from safety_hub.registry import load_plant
from safety_hub.runtime.hub import Hub
from tests.unit.api_support import ADMIN_HEADERS, E1, E2, NOW, make_app, make_hub, publish

SPECIAL_PLANT = Path(__file__).parent.parent / "data" / "special_plant.yaml"


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


@pytest.fixture
def client(hub: Hub, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        yield client


def sources(plant: dict[str, object]) -> dict[str, dict[str, object]]:
    return {
        hs["id"]: hs
        for ent in plant["enterprises"]  # type: ignore[attr-defined]
        for hs in ent["hazard_sources"]
    }


def test_plant_lists_enterprises_and_sources_with_positions(client: TestClient, hub: Hub) -> None:
    """Every enterprise and hazard source of the registry, with names, grade and a position
    from its tags' coordinates; no alarm means no tier."""
    plant = client.get("/api/v1/plant").json()
    assert plant["code"] == hub.plant.park_code and plant["name"]
    assert [e["id"] for e in plant["enterprises"]] == sorted(hub.plant.enterprises)
    by_id = sources(plant)
    assert set(by_id) == set(hub.plant.hazard_sources)
    tank_farm = by_id["HS-E01-01"]
    assert tank_farm["grade"] == hub.plant.hazard_sources["HS-E01-01"].computed_grade
    assert tank_farm["position"] == "registry"
    xs = [t.x_m for t in hub.plant.tags.values() if t.hazard_source == "HS-E01-01" and t.x_m]
    assert min(xs) <= tank_farm["x"] <= max(xs)
    assert all(hs["worst_tier"] is None and hs["active_alarms"] == 0 for hs in by_id.values())
    assert all(e["online"] is None for e in plant["enterprises"])  # no gateway status yet


def test_plant_colours_follow_the_worst_alarm(client: TestClient, hub: Hub) -> None:
    """Cl2 past level 1 turns the tank farm to the level-1 alarm's tier; past level 2, to the
    higher tier; a comms alarm without source counts for the enterprise only."""
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.4, "ts": NOW - 2000}])
    first = sources(client.get("/api/v1/plant").json())["HS-E01-01"]
    level1 = next(a for a in client.get("/api/v1/alarms").json() if a["alert"] == "ToxicGasLevel1")
    assert first["worst_tier"] == level1["tier"]
    assert (first["active_alarms"], first["unacknowledged"]) == (1, 1)
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 1000}])
    alarms = client.get("/api/v1/alarms", params={"hazard_source": "HS-E01-01"}).json()
    tiers = {"critical": "red", "high": "orange", "medium": "yellow", "low": "blue"}
    assert all(a["tier"] == tiers[a["priority"]] for a in alarms)
    order = ["blue", "yellow", "orange", "red"]
    worst = max((a["tier"] for a in alarms), key=order.index)
    plant = client.get("/api/v1/plant").json()
    tank = sources(plant)["HS-E01-01"]
    assert tank["worst_tier"] == worst and tank["active_alarms"] == len(alarms) == 2
    e1 = next(e for e in plant["enterprises"] if e["id"] == E1)
    assert e1["worst_tier"] == worst and e1["active_alarms"] == 2
    assert sources(plant)["HS-E01-02"]["worst_tier"] is None


def test_layout_grid_for_sources_without_coordinates() -> None:
    """A registry without coordinates gets a stable grid, one cell per source, 100 m apart."""
    plant = load_plant(SPECIAL_PLANT)
    first = layout(plant)
    assert first == layout(plant)
    assert set(first) == set(plant.hazard_sources)
    assert {p.source for p in first.values()} == {"layout"}
    cells = {(p.x, p.y) for p in first.values()}
    assert len(cells) == len(first)
    assert all(x % GRID_STEP_M == 0 and y % GRID_STEP_M == 0 for x, y in cells)


def test_summary_counts_and_pagination(client: TestClient, hub: Hub) -> None:
    """Counts by priority, state, enterprise and source agree with the list; limit/offset
    page through the list and X-Total-Count tells the whole."""
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 1000}])
    publish(hub, E2, [{"tag": "GT-2101", "v": 0.4, "ts": NOW - 1000}])
    everything = client.get("/api/v1/alarms")
    alarms = everything.json()
    assert int(everything.headers["X-Total-Count"]) == len(alarms) == 3
    assert alarms[0]["first_out"] is True
    pages = [
        client.get("/api/v1/alarms", params={"limit": 2, "offset": offset}) for offset in (0, 2, 4)
    ]
    assert [len(p.json()) for p in pages] == [2, 1, 0]
    assert {p.headers["X-Total-Count"] for p in pages} == {"3"}
    assert [a["id"] for p in pages for a in p.json()] == [a["id"] for a in alarms]

    summary = client.get("/api/v1/alarms/summary").json()
    assert summary["total"] == summary["unacknowledged"] == 3
    assert sum(summary["by_priority"].values()) == 3
    assert summary["by_state"]["unacknowledged"] == 3 and "normal" not in summary["by_state"]
    assert {e["enterprise"]: e["total"] for e in summary["by_enterprise"]} == {E1: 2, E2: 1}
    by_source = {s["hazard_source"]: s for s in summary["by_hazard_source"]}
    assert by_source["HS-E01-01"]["total"] == 2
    ack = client.post(f"/api/v1/alarms/{alarms[0]['id']}/acknowledge", json={})
    assert ack.status_code == 200
    again = client.get("/api/v1/alarms/summary").json()
    assert (again["total"], again["unacknowledged"]) == (3, 2)
    assert again["by_state"]["acknowledged"] == 1
    only_e2 = client.get("/api/v1/alarms/summary", params={"enterprise": E2}).json()
    assert only_e2["total"] == 1


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("/api/v1/alarms?enterprize=e01-chloralkali", "unknown query parameter(s) 'enterprize'"),
        ("/api/v1/plant?x=1", "takes: none"),
        ("/api/v1/alarms?state=bogus", "state"),
        ("/api/v1/alarms?priority=urgent", "priority"),
        ("/api/v1/alarms?limit=0", "limit"),
        ("/api/v1/alarms?offset=-1", "offset"),
        ("/api/v1/alarms/journal?since_ms=99999999999999999999", "since_ms"),
        ("/api/v1/alarms/kpis?window_s=1", "window_s"),
        ("/api/v1/alarms/abc", "alarm_id"),
        ("/api/v1/tags/e01-chloralkali/GT-1101/history?end=99999999999999999999", "end"),
        ("/api/v1/tags/e01-chloralkali/GT-1101/history?start=%C2%B2", "start"),
        ("/api/v1/tags/e01-chloralkali/GT-1101/history?start=9999-12-31T23:59:59-23:59", "start"),
    ],
)
def test_bad_query_parameters_are_422_naming_them(
    client: TestClient, url: str, needle: str
) -> None:
    resp = client.get(url)
    assert resp.status_code == 422, resp.text
    assert needle in resp.text


def test_bad_action_bodies_are_422_naming_the_field(client: TestClient, hub: Hub) -> None:
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 1000}])
    alarm_id = client.get("/api/v1/alarms").json()[0]["id"]
    cases = [
        ("shelve", {"reason": "x"}, "exactly one of until_ms and duration_s"),
        ("shelve", {"reason": "x", "duration_s": 10**9}, "duration_s"),
        ("shelve", {"reason": "x", "duration_s": 86_400}, "28800"),
        ("shelve", {"reason": "x", "until_ms": NOW + 86_400_000}, "maximum"),
        ("shelve", {"reason": "x", "until_ms": NOW, "duration_s": 60}, "exactly one"),
        ("shelve", {"duration_s": 60}, "reason"),
        ("out-of-service", {"reason": ""}, "reason"),
        ("acknowledge", {"comment": "x" * 2001}, "comment"),
        ("acknowledge", [], "dictionary"),
    ]
    for action, body, needle in cases:
        resp = client.post(f"/api/v1/alarms/{alarm_id}/{action}", json=body)
        assert resp.status_code == 422, (action, body, resp.text)
        assert needle in resp.text, (action, body, resp.text)
    raw = client.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 422 and "JSON" in raw.text
