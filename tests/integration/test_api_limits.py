"""The request-body limit and the security headers through a real uvicorn server: a chunked
body is refused while the client is still sending it, a declared oversized body is refused
before it is sent, and the event stream keeps streaming with the headers on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from safety_hub.api.app import CONTENT_SECURITY_POLICY
from safety_hub.settings import MIN_BODY_BYTES
from tests.integration.hubproc import free_port, wait_for
from tests.unit.api_support import ADMIN_HEADERS, ADMIN_TOKEN, E1, NOW, make_app, make_hub, publish


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The API of a hub with the lowest body limit on a real server: (base URL, alarm id)."""
    hub = make_hub(tmp_path, api_max_body_bytes=MIN_BODY_BYTES)
    app = make_app(hub, tmp_path, ping_interval_s=0.5)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "uvicorn to start")
    try:
        publish(hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 1000}])
        url = f"http://127.0.0.1:{port}"
        alarm_id = httpx.get(f"{url}/api/v1/alarms", headers=ADMIN_HEADERS).json()[0]["id"]
        yield url, alarm_id
    finally:
        app.state.events.close()
        server.should_exit = True
        thread.join(20)
        assert not thread.is_alive()


def _read_head(sock: socket.socket) -> bytes:
    """The status line and headers of the answer (waits for them; the socket has a timeout)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _post_head(path: str, port: int, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_a_chunked_body_is_refused_while_it_is_still_being_sent(served: tuple[str, int]) -> None:
    """Chunks past the limit get a 413 although the body has not ended (no terminating chunk
    was sent): the server counts bytes as they arrive instead of waiting for the whole body."""
    url, alarm_id = served
    port = int(url.rsplit(":", 1)[1])
    chunk = b" " * 8192
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            _post_head(
                f"/api/v1/alarms/{alarm_id}/acknowledge", port, "Transfer-Encoding: chunked\r\n"
            )
        )
        sock.sendall(b'10\r\n{"comment": "x"}\r\n')
        for _ in range(MIN_BODY_BYTES // len(chunk) + 1):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        head = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"connection: close" in head.lower()
    alarm = httpx.get(f"{url}/api/v1/alarms/{alarm_id}", headers=ADMIN_HEADERS).json()
    assert alarm["acknowledged"] is False


def test_a_declared_oversized_body_is_refused_before_it_is_sent(served: tuple[str, int]) -> None:
    """A Content-Length past the limit gets its 413 right after the headers: the client never
    has to send the body."""
    url, alarm_id = served
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            _post_head(
                f"/api/v1/alarms/{alarm_id}/acknowledge", port, "Content-Length: 20000000\r\n"
            )
        )
        head = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 413 "), head


def test_the_event_stream_streams_with_the_security_headers(served: tuple[str, int]) -> None:
    """The middlewares leave the SSE stream a stream: pings keep arriving one by one, and the
    answer carries the CSP and the other headers."""
    url, _ = served
    with httpx.stream("GET", f"{url}/api/v1/stream", headers=ADMIN_HEADERS, timeout=20) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert resp.headers["x-frame-options"] == "DENY"
        pings = 0
        for line in resp.iter_lines():
            if line == "event: ping":
                pings += 1
                if pings == 3:  # the first on connecting, then one per ping interval
                    break
    assert pings == 3
