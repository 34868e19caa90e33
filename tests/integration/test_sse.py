"""The server-sent-events stream through a real uvicorn server and a real HTTP client:
readings that raise an alarm arrive as `alarm` events (the MQTT alarm-event JSON) and
coalesced `value` events, pings keep the line alive, and an enterprise-scoped token never sees
another enterprise's events."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from safety_hub.api.events import LiveEvents, Subscriber
from safety_hub.runtime.hub import Hub
from tests.integration.hubproc import free_port, wait_for
from tests.unit.api_support import (
    ADMIN_HEADERS,
    E1,
    E2,
    E2_VIEWER,
    NOW,
    make_app,
    make_hub,
    publish,
)


@dataclass
class Listener:
    """Reads one SSE stream on a thread; events go to ``events`` as (event, data)."""

    url: str
    headers: dict[str, str]
    events: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    seen: list[tuple[str, Any]] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    status: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Listener:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=30) as resp:
                self.status = resp.status_code
                assert resp.headers["content-type"].startswith("text/event-stream")
                event, data = "message", []
                for line in resp.iter_lines():
                    if line.startswith("retry:"):
                        self.retry.append(int(line[6:]))
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        self.events.put((event, json.loads("\n".join(data))))
                        event, data = "message", []
        finally:
            self.ended.set()

    def next(self, wanted: str, timeout: float = 15) -> Any:
        """The next event named ``wanted`` (others are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {wanted!r} event within {timeout} s; saw {self.seen}")
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(item)
            if item[0] == wanted:
                return item[1]

    def drain(self) -> list[tuple[str, Any]]:
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                return self.seen


@dataclass
class Served:
    hub: Hub
    url: str
    events: LiveEvents


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    hub = make_hub(tmp_path)
    app = make_app(hub, tmp_path, ping_interval_s=0.5)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "uvicorn to start")
    try:
        yield Served(hub, f"http://127.0.0.1:{port}", app.state.events)
    finally:
        app.state.events.close()
        server.should_exit = True
        thread.join(20)
        assert not thread.is_alive()


def alarms_of(events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [data for name, data in events if name == "alarm"]


def test_alarm_and_value_events_reach_a_real_client(served: Served) -> None:
    """A reading past level 2 gives `alarm` events with the alarm-event schema, in seq order,
    and a `value` event with the reading; an acknowledgement is an event too."""
    park = Listener(f"{served.url}/api/v1/stream?alarms=1&values=1", ADMIN_HEADERS).start()
    assert park.next("ping")["ts"] > 0  # subscribed
    assert park.status == 200 and park.retry == [3000]
    publish(served.hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 1000}])
    first = park.next("alarm")
    second = park.next("alarm")
    for event in (first, second):
        assert event["schema"] == "safety-hub/alarm-event/v1"
        assert event["action"] == "raise" and event["annunciated"] is True
        assert event["alarm"]["enterprise"] == E1 and event["alarm"]["tag"] == "GT-1101"
    assert first["seq"] < second["seq"]
    assert {first["alarm"]["alert"], second["alarm"]["alert"]} == {
        "ToxicGasLevel1",
        "ToxicGasLevel2",
    }
    value = park.next("value")
    assert value == {
        "enterprise": E1,
        "tag": "GT-1101",
        "ts": NOW - 1000,
        "value": 0.9,
        "quality": "good",
    }
    ack = httpx.post(
        f"{served.url}/api/v1/alarms/{second['alarm']['id']}/acknowledge",
        json={"comment": "on it"},
        headers=ADMIN_HEADERS,
    )
    assert ack.status_code == 200
    acked = park.next("alarm")
    assert (acked["action"], acked["user"], acked["comment"]) == ("ack", "admin", "on it")
    assert park.next("ping")  # pings keep coming


def test_enterprise_token_never_sees_another_enterprise(served: Served) -> None:
    """An E2 viewer (token in the query, as EventSource sends it) gets E2's alarm and values
    and nothing of E1's, which was published first; a park-wide stream gets both."""
    token = E2_VIEWER.token
    scoped = Listener(f"{served.url}/api/v1/stream?values=1&access_token={token}", {}).start()
    park = Listener(f"{served.url}/api/v1/stream?values=1", ADMIN_HEADERS).start()
    scoped.next("ping")
    park.next("ping")
    publish(served.hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 1000}])
    assert park.next("alarm")["alarm"]["enterprise"] == E1
    publish(served.hub, E2, [{"tag": "GT-2101", "v": 0.9, "ts": NOW - 900}])
    assert scoped.next("alarm")["alarm"]["enterprise"] == E2
    assert scoped.next("value")["enterprise"] == E2
    wait_for(
        lambda: any(d["alarm"]["enterprise"] == E2 for d in alarms_of(park.drain())),
        15,
        "the park-wide stream to get E2's alarm",
    )
    assert {d["alarm"]["enterprise"] for d in alarms_of(park.drain())} == {E1, E2}
    seen = scoped.drain()
    assert {d["alarm"]["enterprise"] for d in alarms_of(seen)} == {E2}
    assert {d["enterprise"] for name, d in seen if name == "value"} == {E2}
    # Asking for E1 with an E2 token is refused before the stream starts.
    denied = httpx.get(
        f"{served.url}/api/v1/stream?enterprise={E1}&access_token={token}", timeout=10
    )
    assert denied.status_code == 403 and E2 in denied.json()["detail"]
    assert httpx.get(f"{served.url}/api/v1/stream", timeout=10).status_code == 401


def test_streams_end_when_the_hub_closes_them(served: Served) -> None:
    """At shutdown the open streams end (a server waits for open requests before stopping)."""
    listener = Listener(f"{served.url}/api/v1/stream", ADMIN_HEADERS).start()
    listener.next("ping")
    assert served.events.subscribers == 1
    served.events.close()
    assert listener.ended.wait(10)
    wait_for(lambda: served.events.subscribers == 0, 10, "the subscriber to go")


def test_a_slow_subscriber_is_cut_off_not_silently_skipped() -> None:
    """Past its queue limit a subscriber gets an `overflow` event and its stream ends."""
    import asyncio

    async def run() -> list[str | None]:
        sub = Subscriber(
            asyncio.get_running_loop(), enterprise=None, alarms=True, values=True, queue_size=3
        )
        sub.put(["a", "b", "c", "d", "e"])
        out = []
        while not sub.queue.empty():
            out.append(sub.queue.get_nowait())
        return out

    frames = asyncio.run(run())
    assert frames[-1] is None
    assert frames[0] is not None and frames[0].startswith("event: overflow")
    assert len(frames) == 2
