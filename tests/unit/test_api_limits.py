"""The HTTP API cannot be used to exhaust the hub: request bodies are capped
(SAFETY_HUB_API_MAX_BODY_BYTES), free-text fields are bounded in the OpenAPI document, a 422
quotes only a slice of the input, and every answer carries the security headers.

tests/integration/test_api_limits.py sends a chunked body to a real uvicorn server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from safety_hub.api.app import CONTENT_SECURITY_POLICY
from safety_hub.api.deps import ECHO_MAX_CHARS
from safety_hub.errors import ConfigError
from safety_hub.settings import MAX_BODY_BYTES, MIN_BODY_BYTES, load_settings
from tests.unit.api_support import ADMIN_HEADERS, E1, NOW, make_app, make_hub, publish

# Answers quote at most ECHO_MAX_CHARS of an input; the rest of a 422 is small.
SMALL_ANSWER = 2000


def _served(tmp: Path) -> Iterator[tuple[TestClient, int]]:
    hub = make_hub(tmp, api_max_body_bytes=MIN_BODY_BYTES)
    with TestClient(make_app(hub, tmp), headers=ADMIN_HEADERS) as client:
        publish(hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 1000}])
        yield client, client.get("/api/v1/alarms").json()[0]["id"]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient, int]]:
    """The API (limit MIN_BODY_BYTES) and an unacknowledged alarm, for a test that acts."""
    yield from _served(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, int]]:
    """The same, shared by the tests whose requests all fail (nothing changes)."""
    yield from _served(tmp_path_factory.mktemp("api-limits"))


def acknowledged(client: TestClient, alarm_id: int) -> bool:
    state: bool = client.get(f"/api/v1/alarms/{alarm_id}").json()["acknowledged"]
    return state


def string_max_lengths(model: dict[str, Any]) -> dict[str, int | None]:
    """Each string property of an OpenAPI object schema -> its maxLength (None: unbounded)."""
    out = {}
    for name, prop in model["properties"].items():
        for variant in prop.get("anyOf", [prop]):
            if variant.get("type") == "string":
                out[name] = variant.get("maxLength")
    return out


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with trailing spaces (still valid JSON) to ``size`` bytes."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def test_a_body_over_the_limit_is_413_before_the_route_runs(
    fresh: tuple[TestClient, int],
) -> None:
    """Content-Length past the limit: 413 with the API's error shape naming the setting, and the
    action is not carried out."""
    client, alarm_id = fresh
    resp = client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={"comment": "x" * 20_000_000})
    assert resp.status_code == 413, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and "SAFETY_HUB_API_MAX_BODY_BYTES" in detail
    assert str(MIN_BODY_BYTES) in detail
    assert len(resp.content) < SMALL_ANSWER
    assert not acknowledged(client, alarm_id)


def test_a_body_of_exactly_the_limit_passes_and_one_byte_more_does_not(
    fresh: tuple[TestClient, int],
) -> None:
    """The limit is inclusive: MIN_BODY_BYTES bytes are taken, one more is a 413."""
    client, alarm_id = fresh
    url = f"/api/v1/alarms/{alarm_id}/acknowledge"
    headers = {"Content-Type": "application/json"}
    over = client.post(url, content=padded({"comment": "ok"}, MIN_BODY_BYTES + 1), headers=headers)
    assert over.status_code == 413
    at = client.post(url, content=padded({"comment": "ok"}, MIN_BODY_BYTES), headers=headers)
    assert at.status_code == 200, at.text
    assert acknowledged(client, alarm_id)


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(
    fresh: tuple[TestClient, int],
) -> None:
    """A body without Content-Length (chunked) is counted as it arrives: 413 past the limit,
    and the action is not carried out."""
    client, alarm_id = fresh
    chunk = b" " * 4096

    def body() -> Iterator[bytes]:
        yield b'{"comment": "x"}'
        for _ in range(MIN_BODY_BYTES // len(chunk) + 2):
            yield chunk

    resp = client.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge",
        content=body(),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413, resp.text
    assert "SAFETY_HUB_API_MAX_BODY_BYTES" in resp.json()["detail"]
    assert not acknowledged(client, alarm_id)


def test_the_lowest_limit_still_takes_the_largest_valid_action(
    fresh: tuple[TestClient, int],
) -> None:
    """A shelve body with every text field at its maximum length, in characters that JSON
    escapes to 12 bytes each, fits under MIN_BODY_BYTES and is accepted."""
    client, alarm_id = fresh
    model = client.get("/openapi.json").json()["components"]["schemas"]["ShelveIn"]
    longest = {name: "😀" * (n or 0) for name, n in string_max_lengths(model).items()}
    assert set(longest) == {"user", "reason", "comment"}
    body = json.dumps({**longest, "duration_s": 60}).encode()  # ensure_ascii: \ud83d\ude00
    assert len(body) <= MIN_BODY_BYTES
    resp = client.post(
        f"/api/v1/alarms/{alarm_id}/shelve",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json()["shelved"]["reason"] == longest["reason"]


def test_the_body_limit_setting_is_bounded() -> None:
    """SAFETY_HUB_API_MAX_BODY_BYTES outside its documented bounds is a configuration error
    naming it; the default is 64 KiB."""
    assert load_settings().api_max_body_bytes == 65_536
    for bad in (MIN_BODY_BYTES - 1, MAX_BODY_BYTES + 1):
        with pytest.raises(ConfigError) as caught:
            load_settings(api_max_body_bytes=bad)
        assert caught.value.variable == "SAFETY_HUB_API_MAX_BODY_BYTES"


def test_every_free_text_field_of_a_request_body_has_a_documented_max_length(
    shared: tuple[TestClient, int],
) -> None:
    """Every string a request body takes has a maxLength in the OpenAPI document, and every
    route that takes a body documents the 413."""
    client, _ = shared
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    bodies = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if "requestBody" not in op:
                continue
            bodies.append((method, path))
            assert "413" in op["responses"], (method, path)
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            lengths = string_max_lengths(schemas[ref.rsplit("/", 1)[1]])
            assert lengths, (method, path)
            for name, max_length in lengths.items():
                assert max_length is not None and 0 < max_length <= 2000, (path, name)
    assert len(bodies) == 7  # acknowledge, reset, shelve, unshelve, out/return to service, dispose


def test_a_422_quotes_only_a_slice_of_a_long_body_field(shared: tuple[TestClient, int]) -> None:
    """A comment past its maxLength is a 422 in FastAPI's shape (loc, msg, type) whose input is
    cut to ECHO_MAX_CHARS with the count left out."""
    client, alarm_id = shared
    comment = "评论" * 10_000  # 20,000 characters, 60 KB of UTF-8: under the body limit
    resp = client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={"comment": comment[:9000]})
    assert resp.status_code == 422
    (item,) = resp.json()["detail"]
    assert item["loc"] == ["body", "comment"] and item["type"] == "string_too_long"
    assert "2000" in item["msg"]
    assert item["input"].startswith(comment[:ECHO_MAX_CHARS])
    assert item["input"].endswith("(8800 more characters)")
    assert len(resp.text) < SMALL_ANSWER


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"reason": "r" * 10_000, "duration_s": 60}, "reason"),  # too long
        ({"k" * 10_000: 1, "reason": "r", "duration_s": 60}, "extra_forbidden"),  # long key
        ({"comment": "c" * 1000, "padding": ["p" * 1000] * 10}, "missing"),  # whole object as input
        ({"reason": "r", "duration_s": int("9" * 4000)}, "duration_s"),  # a huge number
    ],
)
def test_no_422_echoes_the_whole_body(
    shared: tuple[TestClient, int], body: dict[str, Any], needle: str
) -> None:
    """Whatever part of the input a 422 quotes (the value, a key in loc, a whole object), it
    quotes a slice: the answer stays small."""
    client, alarm_id = shared
    resp = client.post(f"/api/v1/alarms/{alarm_id}/shelve", json=body)
    assert resp.status_code == 422, resp.text[:500]
    assert needle in resp.text
    assert len(resp.text) < SMALL_ANSWER, resp.text[:500]
    assert all({"loc", "msg", "type"} <= set(item) for item in resp.json()["detail"])


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": "9" * 5000}, "limit"),
        ({"x" * 5000: "1"}, "unknown query parameter"),
        ({f"p{i}": "1" for i in range(500)}, "and 490 more"),
    ],
)
def test_no_422_echoes_a_whole_query_parameter(
    shared: tuple[TestClient, int], params: dict[str, str], needle: str
) -> None:
    """Query parameters (a value, a name, many names) are quoted as a slice too."""
    client, _ = shared
    resp = client.get("/api/v1/alarms", params=params)
    assert resp.status_code == 422
    assert needle in resp.text
    assert len(resp.text) < SMALL_ANSWER, resp.text[:500]


def test_no_error_echoes_a_whole_path_or_time_parameter(shared: tuple[TestClient, int]) -> None:
    """The history route's time parameters and an unknown tag in the path are quoted as a
    slice in their 422 and 404."""
    client, _ = shared
    history = "/api/v1/tags/e01-chloralkali/GT-1101/history"
    for value in ("9" * 5000, "2026-" + "x" * 5000):
        resp = client.get(history, params={"start": value})
        assert resp.status_code == 422 and "start=" in resp.text
        assert len(resp.text) < SMALL_ANSWER
    missing = client.get(f"/api/v1/tags/e01-chloralkali/{'T' * 5000}/latest")
    assert missing.status_code == 404 and "more characters" in missing.text
    assert len(missing.text) < SMALL_ANSWER


def test_every_answer_carries_the_security_headers(shared: tuple[TestClient, int]) -> None:
    """The console, its assets, the API (success, 401, 404, 413) and the probes all send CSP
    with frame-ancestors 'none', X-Frame-Options DENY, nosniff and no-referrer."""
    client, alarm_id = shared
    answers = {
        "console": client.get("/console/"),
        "script": client.get("/console/app.js"),
        "api": client.get("/api/v1/alarms"),
        "401": client.get("/api/v1/alarms", headers={"Authorization": "Bearer nobody"}),
        "404": client.get("/api/v1/alarms/999999"),
        "413": client.post(
            f"/api/v1/alarms/{alarm_id}/acknowledge", json={"comment": "x" * MIN_BODY_BYTES}
        ),
        "readyz": client.get("/readyz"),
    }
    assert answers["console"].status_code == 200 and "<html" in answers["console"].text
    for name, resp in answers.items():
        headers = resp.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
    policy = dict(
        part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";") if part.strip()
    )
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"


def test_the_openapi_viewer_keeps_only_the_framing_rule(shared: tuple[TestClient, int]) -> None:
    """/docs (its viewer comes from a CDN with an inline script) gets frame-ancestors 'none'
    without default-src, and the other headers as everywhere."""
    client, _ = shared
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert docs.headers["x-frame-options"] == "DENY"
