"""Access control on every route: 401 without a valid token, roles (a viewer cannot act, an
operator can, and the journal records who), enterprise scope (enterprise A never sees B), the
action rate limit, CORS, and local mode."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from safety_hub.api.app import create_app
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
    USERS,
    VIEWER,
    make_app,
    make_hub,
    publish,
)

ACTIONS = ("acknowledge", "reset", "shelve", "unshelve", "out-of-service", "return-to-service")
BODIES: dict[str, dict[str, Any]] = {
    "shelve": {"reason": "transmitter fault", "duration_s": 600},
    "out-of-service": {"reason": "maintenance WO-1"},
}


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


@pytest.fixture
def client(hub: Hub, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(hub, tmp_path)) as client:
        yield client


def raise_gas_alarms(hub: Hub) -> None:
    """Chlorine past level 2 in E1 (GT-1101) and in E2 (GT-2101): latched gas alarms in both."""
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    publish(hub, E2, [{"tag": "GT-2101", "v": 0.8, "ts": NOW - 1000}])


def alarm_of(client: TestClient, enterprise: str, alert: str = "ToxicGasLevel2") -> dict[str, Any]:
    alarms = client.get(
        "/api/v1/alarms", params={"enterprise": enterprise}, headers=ADMIN_HEADERS
    ).json()
    return next(a for a in alarms if a["alert"] == alert)


def concrete(path: str) -> str:
    """A route path with its parameters filled in."""
    path = path.replace("{roster}", "park-duty")
    return path.replace("{alarm_id}", "1").replace("{enterprise}", E1).replace("{tag}", "GT-1101")


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) under /api/v1 that the OpenAPI document lists."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), path)
        for path, ops in paths.items()
        if path.startswith("/api/v1")
        for method in ops
    ]


def test_every_api_route_needs_a_valid_token(client: TestClient, hub: Hub) -> None:
    """No token and a wrong token are 401 with WWW-Authenticate on every /api/v1 route; the
    probes and metrics stay open."""
    raise_gas_alarms(hub)
    routes = api_routes(client)
    assert len(routes) >= 20
    for method, path in routes:
        url = concrete(path)
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic x"}):
            resp = client.request(method, url, headers=headers, json=BODIES.get(url, {}))
            assert resp.status_code == 401, (method, url, headers, resp.text)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert "token" in resp.json()["detail"]
    assert client.get("/api/v1/stream", params={"access_token": "wrong"}).status_code == 401
    for open_path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(open_path).status_code == 200


def test_me_tells_user_role_and_scope(client: TestClient) -> None:
    assert client.get("/api/v1/me", headers=ADMIN_HEADERS).json() == {
        "user": "admin",
        "role": "admin",
        "enterprise": None,
    }
    for user in USERS:
        assert client.get("/api/v1/me", headers=user.headers).json() == {
            "user": user.name,
            "role": user.role.value,
            "enterprise": user.enterprise,
        }


def test_user_list_is_for_admins_only(client: TestClient) -> None:
    listed = client.get("/api/v1/users", headers=ADMIN_HEADERS).json()
    assert {u["user"] for u in listed} == {"admin", *(u.name for u in USERS)}
    assert not any("token" in key for u in listed for key in u)
    for user in (VIEWER, OPERATOR):
        denied = client.get("/api/v1/users", headers=user.headers)
        assert denied.status_code == 403 and "admin" in denied.json()["detail"]


def test_viewer_reads_everything_but_cannot_act(client: TestClient, hub: Hub) -> None:
    """Every read route answers a viewer; every action is 403 and changes nothing."""
    raise_gas_alarms(hub)
    alarm = alarm_of(client, E1)
    for method, path in api_routes(client):
        if method != "GET" or path in ("/api/v1/stream", "/api/v1/users"):
            continue
        url = path.replace("{alarm_id}", str(alarm["id"]))
        url = url.replace("{enterprise}", E1).replace("{tag}", "GT-1101")
        url = url.replace("{roster}", "park-duty")
        if path.startswith("/api/v1/province/"):
            # a park hub is not in province mode: the province's view is not there for anyone
            # (tests/integration/test_province_e2e.py reads it with province mode on)
            assert client.get(url, headers=VIEWER.headers).status_code == 404, url
            continue
        assert client.get(url, headers=VIEWER.headers).status_code == 200, url
    before = client.get(f"/api/v1/alarms/{alarm['id']}/journal", headers=VIEWER.headers).json()
    for action in ACTIONS:
        resp = client.post(
            f"/api/v1/alarms/{alarm['id']}/{action}",
            json=BODIES.get(action, {}),
            headers=VIEWER.headers,
        )
        assert resp.status_code == 403, action
        assert "viewer" in resp.json()["detail"] and "operator" in resp.json()["detail"]
    after = client.get(f"/api/v1/alarms/{alarm['id']}/journal", headers=VIEWER.headers).json()
    assert after == before


def test_operator_actions_are_journalled_with_the_token_user(client: TestClient, hub: Hub) -> None:
    """An operator runs every action; each journal row names the operator from the token (a
    `user` in the body is ignored) with the comment or reason."""
    raise_gas_alarms(hub)
    alarm = alarm_of(client, E1)
    op = OPERATOR.headers

    def act(action: str, **body: Any) -> dict[str, Any]:
        resp = client.post(f"/api/v1/alarms/{alarm['id']}/{action}", json=body, headers=op)
        assert resp.status_code == 200, (action, resp.text)
        return dict(resp.json())

    assert act("acknowledge", user="someone-else", comment="on my way")["state"] == "acknowledged"
    shelved = act("shelve", reason="detector drift", duration_s=900)
    assert shelved["state"] == "shelved" and shelved["shelved"]["by"] == "op1"
    # Back from shelving or out of service while still active, it annunciates again.
    assert act("unshelve", comment="fixed")["state"] == "unacknowledged"
    out = act("out-of-service", reason="calibration", comment="WO-7")
    assert out["state"] == "out_of_service" and out["out_of_service"]["by"] == "op1"
    assert act("return-to-service")["state"] == "unacknowledged"
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.0, "ts": NOW - 500}])
    assert act("acknowledge")["state"] == "latched"
    assert act("reset", comment="area clear")["state"] == "normal"
    journal = client.get(f"/api/v1/alarms/{alarm['id']}/journal", headers=op).json()
    operator_rows = [(e["action"], e["user"], e["comment"]) for e in journal if e["user"]]
    assert operator_rows == [
        ("ack", "op1", "on my way"),
        ("shelve", "op1", "detector drift"),
        ("unshelve", "op1", "fixed"),
        ("out_of_service", "op1", "calibration: WO-7"),
        ("return_to_service", "op1", None),
        ("ack", "op1", None),
        ("reset", "op1", "area clear"),
    ]
    # The whole journal and the alarm itself tell the same.
    whole = client.get("/api/v1/alarms/journal", headers=op).json()
    assert [e for e in whole if e["alarm_id"] == alarm["id"]] == journal
    assert (
        client.get(f"/api/v1/alarms/{alarm['id']}", headers=op).json()["acknowledged_by"] == "op1"
    )


def test_enterprise_user_sees_only_its_enterprise(client: TestClient, hub: Hub) -> None:
    """An E2 user gets E2 in every list and 403/404 for E1: tags, latest, history, alarms, one
    alarm, its journal, the journal, the summary, the plant, the system view, the stream."""
    raise_gas_alarms(hub)
    e1_alarm = alarm_of(client, E1)
    h = E2_VIEWER.headers

    tags = client.get("/api/v1/tags", headers=h).json()
    assert tags and {t["enterprise"] for t in tags} == {E2}
    for url in (
        f"/api/v1/tags?enterprise={E1}",
        f"/api/v1/tags/{E1}/GT-1101/latest",
        f"/api/v1/tags/{E1}/GT-1101/history",
        f"/api/v1/alarms?enterprise={E1}",
        f"/api/v1/alarms/summary?enterprise={E1}",
        f"/api/v1/stream?enterprise={E1}",
        "/api/v1/alarms/kpis",
        "/api/v1/alarms/floods",
    ):
        denied = client.get(url, headers=h)
        assert denied.status_code == 403, url
        assert E2 in denied.json()["detail"], url
    assert client.get(f"/api/v1/tags/{E2}/GT-2101/latest", headers=h).json()["value"] == 0.8

    alarms = client.get("/api/v1/alarms", headers=h)
    assert {a["enterprise"] for a in alarms.json()} == {E2}
    assert int(alarms.headers["X-Total-Count"]) == len(alarms.json())
    for url in (f"/api/v1/alarms/{e1_alarm['id']}", f"/api/v1/alarms/{e1_alarm['id']}/journal"):
        assert client.get(url, headers=h).status_code == 404, url
    journal = client.get("/api/v1/alarms/journal", headers=h).json()
    e2_ids = {a["id"] for a in alarms.json()}
    assert journal and {e["alarm_id"] for e in journal} <= e2_ids
    summary = client.get("/api/v1/alarms/summary", headers=h).json()
    assert [e["enterprise"] for e in summary["by_enterprise"]] == [E2]
    assert {s["enterprise"] for s in summary["by_hazard_source"]} == {E2}
    plant = client.get("/api/v1/plant", headers=h).json()
    assert [e["id"] for e in plant["enterprises"]] == [E2]
    system = client.get("/api/v1/system", headers=h).json()
    assert [g["enterprise"] for g in system["gateways"]] == [E2]
    assert system["dead_letters"] == []

    # Acting: an E2 operator cannot touch E1's alarm (404, unchanged); E1's operator can.
    denied = client.post(
        f"/api/v1/alarms/{e1_alarm['id']}/acknowledge", json={}, headers=E2_OPERATOR.headers
    )
    assert denied.status_code == 404
    assert alarm_of(client, E1)["state"] == "unacknowledged"
    ok = client.post(
        f"/api/v1/alarms/{e1_alarm['id']}/acknowledge", json={}, headers=E1_OPERATOR.headers
    )
    assert ok.status_code == 200 and ok.json()["acknowledged_by"] == "e1-op"
    # A park-wide user sees both enterprises.
    every = client.get("/api/v1/alarms", headers=VIEWER.headers).json()
    assert {a["enterprise"] for a in every} == {E1, E2}


def test_actions_are_rate_limited_per_user(tmp_path: Path) -> None:
    """Past the burst an operator gets 429 with Retry-After; another operator is unaffected."""
    hub = make_hub(tmp_path, action_burst=3, action_rate_per_min=1)
    with TestClient(make_app(hub, tmp_path)) as client:
        raise_gas_alarms(hub)
        alarm = alarm_of(client, E1)
        url = f"/api/v1/alarms/{alarm['id']}/acknowledge"
        codes = [client.post(url, json={}, headers=OPERATOR.headers).status_code for _ in range(3)]
        assert codes == [200, 409, 409]  # the first acknowledges; the others are refused
        limited = client.post(url, json={}, headers=OPERATOR.headers)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "too many actions" in limited.json()["detail"]
        assert client.post(url, json={}, headers=E1_OPERATOR.headers).status_code == 409
        # Reads are not limited.
        assert client.get("/api/v1/alarms", headers=OPERATOR.headers).status_code == 200


def test_cors_is_off_by_default_and_follows_the_setting(tmp_path: Path) -> None:
    preflight = {
        "Origin": "https://scada.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with TestClient(make_app(make_hub(tmp_path / "a"), tmp_path / "a")) as client:
        resp = client.options("/api/v1/alarms/1/acknowledge", headers=preflight)
        assert "access-control-allow-origin" not in resp.headers
        got = client.get("/api/v1/me", headers={**ADMIN_HEADERS, "Origin": preflight["Origin"]})
        assert "access-control-allow-origin" not in got.headers
    hub = make_hub(tmp_path / "b", cors_origins="https://scada.example, http://wall:8000")
    with TestClient(make_app(hub, tmp_path / "b")) as client:
        resp = client.options("/api/v1/alarms/1/acknowledge", headers=preflight)
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == "https://scada.example"
        got = client.get("/api/v1/alarms", headers={**ADMIN_HEADERS, "Origin": "http://wall:8000"})
        assert got.headers["access-control-allow-origin"] == "http://wall:8000"
        assert "X-Total-Count" in got.headers["access-control-expose-headers"]
        other = client.options(
            "/api/v1/alarms/1/acknowledge", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_local_mode_token_and_console_mount(tmp_path: Path) -> None:
    """In local mode without an admin token the app makes one; it signs in as admin. `/`
    leads to the console."""
    hub = make_hub(tmp_path)
    app = create_app(hub)
    token = app.state.auth.local_token
    assert token and re.fullmatch(r"[A-Za-z0-9_-]{40,}", token)
    with TestClient(app) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
        root = client.get("/", follow_redirects=False)
        assert root.status_code in (302, 307) and root.headers["location"] == "/console/"
        page = client.get("/console/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
