"""The API shows root-cause groups: a link-down alarm with its children (``children_count``,
``/children``, the ``parent_id`` filter), each child naming its parent (``parent_id``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_hub.clock import VirtualClock
from safety_hub.runtime.hub import Hub
from tests.unit.api_support import (
    ADMIN_HEADERS,
    E1_OPERATOR,
    E2,
    E2_VIEWER,
    NOW,
    make_app,
    make_hub,
)

LINK_KEY = f"EnterpriseLinkDown|{E2}|{E2}"


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


@pytest.fixture
def client(hub: Hub, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        yield client


def outage(hub: Hub) -> None:
    """e02-sodium's gateway dies (its last-will) and stays silent for 30 s."""
    clock = hub.clock
    assert isinstance(clock, VirtualClock)
    hub.alarms.on_gateway_status(E2, False, NOW)
    for ms in range(NOW + 1000, NOW + 30_000, 1000):
        clock.set(ms)
        hub.alarms.tick()


def test_link_down_alarm_lists_its_grouped_children(client: TestClient, hub: Hub) -> None:
    outage(hub)
    alarms = client.get("/api/v1/alarms", params={"enterprise": E2, "limit": 1000}).json()
    (link,) = [a for a in alarms if a["key"] == LINK_KEY]
    assert link["state"] == "unacknowledged" and link["parent_id"] is None
    assert [a["key"] for a in alarms if a["state"] == "unacknowledged"] == [LINK_KEY]
    children = client.get(f"/api/v1/alarms/{link['id']}/children").json()
    assert link["children_count"] == len(children) > 20
    assert {c["alert"] for c in children} == {"TagStale", "GasDetectorStale", "GasVoteDegraded"}
    for child in children:
        assert (child["state"], child["parent_id"], child["children_count"]) == (
            "suppressed",
            link["id"],
            0,
        )
        assert LINK_KEY in child["suppressed_by"]
        assert child["labels"]["parent"] == LINK_KEY
    filtered = client.get("/api/v1/alarms", params={"parent_id": link["id"], "limit": 1000})
    assert [a["id"] for a in filtered.json()] == [c["id"] for c in children]
    assert filtered.headers["X-Total-Count"] == str(len(children))
    one = client.get(f"/api/v1/alarms/{children[0]['id']}").json()
    assert one["parent_id"] == link["id"]


def test_children_follow_the_users_scope(client: TestClient, hub: Hub) -> None:
    outage(hub)
    link = next(a for a in client.get("/api/v1/alarms").json() if a["key"] == LINK_KEY)
    url = f"/api/v1/alarms/{link['id']}/children"
    assert len(client.get(url, headers=E2_VIEWER.headers).json()) == link["children_count"]
    assert client.get(url, headers=E1_OPERATOR.headers).status_code == 404
    assert client.get("/api/v1/alarms/999999/children").status_code == 404
    nothing = client.get("/api/v1/alarms", params={"parent_id": 999999})
    assert (nothing.status_code, nothing.json()) == (200, [])
