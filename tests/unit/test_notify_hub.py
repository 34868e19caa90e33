"""Notifications wired in the hub: a gas alarm through the real ingest path is planned from the
shipped policies, sent through the sender, and listed (redacted) by the API, scoped."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from connectors.influx import SqliteStore
from safety_hub.clock import VirtualClock
from safety_hub.runtime.hub import Hub, Storage
from safety_hub.runtime.notify_file import FileSender, demo_notify_file
from safety_hub.settings import load_settings
from tests.unit.api_support import ADMIN_HEADERS, E2_VIEWER, NOW, make_app, publish
from tests.unit.fakes import MemorySource
from tests.unit.test_notify_runtime import Sender


def notifying_hub(tmp_path: Path, sender: Sender, **settings: object) -> Hub:
    store = SqliteStore(tmp_path / "readings.sqlite")
    clock = VirtualClock(NOW)
    sender.clock_ms = clock.now_ms
    return Hub(
        load_settings(data_dir=tmp_path, **settings),
        clock=clock,
        storage=Storage(store, store, "test store"),
        source=MemorySource(),
        notification_sender=sender,
    )


def test_a_gas_alarm_notifies_the_officer_and_the_api_lists_it_redacted(tmp_path: Path) -> None:
    sender = Sender()
    hub = notifying_hub(tmp_path, sender, public_url="https://hub.example.org")
    assert hub.notifications is not None
    publish(hub, "e01-chloralkali", [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    assert hub.notifications.dispatch() == 1
    ((_, message),) = sender.sent
    # the sample people (safety_hub/plants/sample_people.yaml): e01's safety officer, by email
    assert message.contact.url.startswith("mailtos://smtp.example.com")
    assert "wang.jianguo@e01.example.com" in message.contact.url
    # level 1 and level 2 raised by the same reading: one message listing both
    assert message.title.startswith("【橙色预警汇总】2 条报警 | 2 alarms")
    assert "二级报警" in message.body and "level-1 alarm" in message.body
    assert "https://hub.example.org/console/" in message.body
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        answer = client.get("/api/v1/notifications", params={"status": "sent"}).json()
        assert answer["enabled"] is True
        rows = answer["notifications"]
        assert len(rows) == 2 and {r["message_id"] for r in rows} == {message.notification_id}
        for sent in rows:
            assert (sent["person_id"], sent["channel"], sent["kind"]) == (
                "e01-safety",
                "email",
                "alarm",
            )
            assert sent["contact"] == "mailtos://smtp.example.com/***"
        assert "wang.jianguo" not in client.get("/api/v1/notifications").text
        pending = client.get("/api/v1/notifications", params={"status": "pending"}).json()
        assert "e01-safety" in {n["person_id"] for n in pending["notifications"]}
        assert {n["step"] for n in pending["notifications"]} >= {"1", "0.r1"}
        scoped = client.get("/api/v1/notifications", headers=E2_VIEWER.headers)
        assert scoped.status_code == 200 and scoped.json()["notifications"] == []
        metrics = client.get("/metrics").text
        assert 'safety_hub_notifications_sent_total{channel="email"} 2.0' in metrics


def test_notify_off_plans_nothing_and_the_api_says_so(tmp_path: Path) -> None:
    sender = Sender()
    hub = notifying_hub(tmp_path, sender, notify=False)
    assert hub.notifications is None
    publish(hub, "e01-chloralkali", [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    assert not (tmp_path / "notifications.sqlite").exists()
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        assert client.get("/api/v1/notifications").json() == {
            "enabled": False,
            "notifications": [],
        }


def test_the_demo_sender_writes_json_lines_with_the_contact_redacted(tmp_path: Path) -> None:
    path = demo_notify_file(tmp_path)
    store = SqliteStore(tmp_path / "readings.sqlite")
    hub = Hub(
        load_settings(data_dir=tmp_path),
        clock=VirtualClock(NOW),
        storage=Storage(store, store, "test store"),
        source=MemorySource(),
        notification_sender=FileSender(path),
    )
    assert hub.notifications is not None
    publish(hub, "e01-chloralkali", [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    hub.notifications.dispatch()
    (line,) = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["contact"] == "mailtos://smtp.example.com/***" and "wang.jianguo" not in line
    assert record["title"].startswith("【橙色预警汇总】2 条报警")
