"""Notifications end to end: the hub as a process behind a real Mosquitto, delivering through
apprise to a real SMTP server (aiosmtpd) and a real HTTP webhook server that the tests start.

A level-2 chlorine alarm notifies the enterprise safety officer by email at once and the park
duty officer by webhook when it is not acknowledged within its step; kill -9 during a pending
escalation sends it once, not before its due time; a receiver down for 15 s is retried, counted,
raises and clears a system alarm, loses nothing, and the next step still fires; a flood is one
summary message. Steps are seconds long (a test policy passed through the settings).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.receivers import SmtpReceiver, WebhookReceiver
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.integration

ENT = "e01-chloralkali"
OFFICER_MAIL = "wang.jianguo@e01.example.com"
TIMEOUT = 60.0
# one detector of TK-101's 2oo3 zone over level 2, its neighbours clean: one level-2 alarm
ONE_HIGH = {"GT-1101": 0.8, "GT-1102": 0.0, "GT-1103": 0.0}


def people_file(path: Path, smtp: SmtpReceiver, hook: WebhookReceiver) -> Path:
    people = {
        "version": 1,
        "time_zone": "Asia/Shanghai",
        "people": [
            {
                "id": "e01-safety",
                "name": "王建国",
                "roles": ["enterprise_safety_officer"],
                "scope": ENT,
                "contacts": [{"channel": "email", "url": smtp.url(OFFICER_MAIL)}],
            },
            {
                "id": "park-duty-1",
                "name": "赵磊",
                "roles": ["park_duty_officer"],
                "scope": "park",
                "contacts": [{"channel": "webhook", "url": hook.url("/duty")}],
            },
            {
                "id": "regulator-duty",
                "name": "应急管理局值班室",
                "roles": ["regulator"],
                "scope": "park",
                "contacts": [{"channel": "email", "url": smtp.url("duty@yjglj.example.com")}],
            },
        ],
        "rosters": [
            {
                "name": "park-duty",
                "shifts": [
                    {"name": "day", "start": "08:00", "end": "20:00"},
                    {"name": "night", "start": "20:00", "end": "08:00"},
                ],
                "rota": {
                    "anchor": "2026-01-05",
                    "cycle": [{"day": ["park-duty-1"], "night": ["park-duty-1"]}],
                },
            }
        ],
    }
    path.write_text(json.dumps(people, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


def policy_file(path: Path, steps: list[dict[str, Any]], alert: str = "ToxicGasLevel2") -> Path:
    policy = {"policies": [{"name": "test", "match": {"alert": alert}, "steps": steps}]}
    path.write_text(json.dumps(policy), encoding="utf-8")
    return path


@contextmanager
def gateway(port: int, values: dict[str, float]) -> Iterator[None]:
    """e01's gateway publishing ``values`` (tag -> value) every 2 s (a live detector set)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            ts = int(time.time() * 1000)
            readings = [{"tag": tag, "v": v, "ts": ts} for tag, v in values.items()]
            client.publish(f"hazard/v1/{ENT}/telemetry", json.dumps({"readings": readings}), qos=1)
            stop.wait(2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        client.loop_stop()
        client.disconnect()


def start_hub(
    tmp_path: Path,
    mosquitto: Any,
    smtp: SmtpReceiver,
    hook: WebhookReceiver,
    steps: list[dict[str, Any]],
    **extra: str,
) -> HubProcess:
    env = {
        "SAFETY_HUB_MQTT_URL": mosquitto.url,
        "SAFETY_HUB_PEOPLE": str(people_file(tmp_path / "people.yaml", smtp, hook)),
        "SAFETY_HUB_NOTIFY_POLICIES": str(policy_file(tmp_path / "policy.yaml", steps)),
        "SAFETY_HUB_PUBLIC_URL": "https://hub.park.example",
        **extra,
    }
    hub = HubProcess(tmp_path / "hub", env)
    hub.start()
    return hub


def notifications(hub: HubProcess, **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    answer = hub.get(f"/api/v1/notifications?{query}").json()
    assert answer["enabled"] is True
    rows: list[dict[str, Any]] = answer["notifications"]
    return rows


def level2(hub: HubProcess) -> dict[str, Any]:
    alarms = hub.get(f"/api/v1/alarms?enterprise={ENT}").json()
    return next(a for a in alarms if a["alert"] == "ToxicGasLevel2" and a["tag"] == "GT-1101")


def system_alarm(hub: HubProcess, name: str) -> bool:
    alarms = hub.get("/api/v1/system").json()["system_alarms"]
    return any(a["name"] == name and a["active"] for a in alarms)


def test_level2_notifies_the_officer_at_once_and_the_duty_officer_after_its_step(
    mosquitto: Any, smtp_receiver: SmtpReceiver, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    steps = [
        {"after": "0s", "to": "role:enterprise_safety_officer"},
        {"after": "3s", "to": "roster:park-duty"},
        {"after": "10m", "to": "role:regulator"},
    ]
    hub = start_hub(tmp_path, mosquitto, smtp_receiver, webhook_receiver, steps)
    try:
        with gateway(mosquitto.port, ONE_HIGH):
            (mail,) = smtp_receiver.wait_for(1, TIMEOUT)
            (hook,) = webhook_receiver.wait_for(1, TIMEOUT)
        alarm = level2(hub)
        # the email: to the officer, bilingual, with the id receivers de-duplicate on
        assert mail.rcpt_tos == (OFFICER_MAIL,)
        subject = str(mail.message["Subject"])
        assert "预警" in subject and "warning" in subject and "GT-1101" in subject
        text = mail.text()
        assert "橙色预警" in text or "红色预警" in text
        assert "二级报警" in text and "level-2 alarm" in text and "(Asia/Shanghai)" in text
        assert f"https://hub.park.example/console/#alarm={alarm['id']}" in text
        mail_id = mail.message["X-Safety-Hub-Notification"]
        assert mail_id == f"test/{alarm['id']}/1/0/e01-safety/email"
        # the webhook: the escalation, not before its due time
        body = hook.json()
        assert body["notification_id"] == f"test/{alarm['id']}/1/1/park-duty-1/webhook"
        assert "预警升级" in body["title"] and "escalated" in body["title"]
        (sent,) = [r for r in notifications(hub, status="sent") if r["person_id"] == "park-duty-1"]
        assert sent["due_ms"] == alarm["raised_ms"] + 3000
        assert sent["done_ms"] >= sent["due_ms"]
        assert sent["contact"] == "json://127.0.0.1/***"
        # an acknowledgement cancels the regulator's step
        answer = hub.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", {"comment": "seen"})
        assert answer.status_code == 200, answer.text
        wait_for(
            lambda: (
                [r["person_id"] for r in notifications(hub, status="cancelled")]
                == ["regulator-duty"]
            ),
            TIMEOUT,
            "the regulator's step cancelled by the ack",
        )
        assert [r["person_id"] for r in notifications(hub, status="pending")] == []
        assert len(smtp_receiver.messages) == 1 and len(webhook_receiver.requests) == 1
    finally:
        hub.stop()


def test_kill_9_during_a_pending_escalation_sends_it_once_on_its_schedule(
    mosquitto: Any, smtp_receiver: SmtpReceiver, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    steps = [
        {"after": "0s", "to": "role:enterprise_safety_officer"},
        # long enough for the kill (about a second after the raise) to come first, short enough
        # that the restarted hub still waits for it
        {"after": "8s", "to": "roster:park-duty"},
    ]
    hub = start_hub(tmp_path, mosquitto, smtp_receiver, webhook_receiver, steps)
    try:
        with gateway(mosquitto.port, ONE_HIGH):
            smtp_receiver.wait_for(1, TIMEOUT)
            alarm = level2(hub)
        (pending,) = notifications(hub, status="pending")
        assert pending["person_id"] == "park-duty-1"
        hub.kill9()
        assert webhook_receiver.requests == []  # killed before its due time
        hub.start()
        (hook,) = webhook_receiver.wait_for(1, TIMEOUT)
        assert hook.json()["notification_id"] == pending["notification_id"]
        wait_for(lambda: not notifications(hub, status="pending"), TIMEOUT, "nothing left pending")
        (sent,) = [r for r in notifications(hub, status="sent") if r["person_id"] == "park-duty-1"]
        assert sent["due_ms"] == alarm["raised_ms"] + 8_000 == pending["due_ms"]
        assert sent["done_ms"] >= sent["due_ms"]
        # never twice: one email, one webhook, however many dispatcher passes ran since
        hub.get("/api/v1/system")
        assert len(webhook_receiver.requests) == 1 and len(smtp_receiver.messages) == 1
        assert hub.metric("safety_hub_notifications_sent_total") == 1  # this process's sends
    finally:
        hub.stop()


def test_a_receiver_down_for_15_s_is_retried_counted_alarmed_and_loses_nothing(
    mosquitto: Any, smtp_receiver: SmtpReceiver, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    steps = [
        {"after": "0s", "to": "roster:park-duty"},
        {"after": "5s", "to": "role:enterprise_safety_officer"},
    ]
    webhook_receiver.stop()
    hub = start_hub(
        tmp_path,
        mosquitto,
        smtp_receiver,
        webhook_receiver,
        steps,
        # tries at about 0, 1, 3, 7, 11 and 15 s of the outage: the backoff doubles, then
        # stays at its maximum
        SAFETY_HUB_NOTIFY_RETRY_INITIAL_S="1",
        SAFETY_HUB_NOTIFY_RETRY_MAX_S="4",
    )
    try:
        with gateway(mosquitto.port, ONE_HIGH):
            wait_for(lambda: bool(notifications(hub)), TIMEOUT, "notifications planned")
        down_since = time.monotonic()
        # the next step (email) fires on its own schedule while the webhook is down
        (mail,) = smtp_receiver.wait_for(1, TIMEOUT)
        assert mail.rcpt_tos == (OFFICER_MAIL,)
        wait_for(
            lambda: system_alarm(hub, "notification_channel_webhook"),
            TIMEOUT,
            "the webhook channel's system alarm",
        )
        time.sleep(max(0.0, 15 - (time.monotonic() - down_since)))  # the outage lasts 15 s
        retries = hub.metric('safety_hub_notification_retries_total{channel="webhook"}')
        assert retries >= 3
        assert hub.metric('safety_hub_notifications_pending{channel="webhook"}') == 1
        webhook_receiver.start()
        (hook,) = webhook_receiver.wait_for(1, TIMEOUT)
        assert hook.path == "/duty"
        wait_for(
            lambda: not system_alarm(hub, "notification_channel_webhook"),
            TIMEOUT,
            "the webhook channel's system alarm cleared",
        )
        (row,) = [r for r in notifications(hub) if r["person_id"] == "park-duty-1"]
        assert row["status"] == "sent" and row["attempts"] > 3
        assert hub.metric('safety_hub_notifications_sent_total{channel="webhook"}') == 1
        assert hub.metric('safety_hub_notifications_failed_total{channel="webhook"}') == 0
        assert len(webhook_receiver.requests) == 1
    finally:
        hub.stop()


def test_a_flood_reaches_the_officer_as_one_summary_message(
    mosquitto: Any, smtp_receiver: SmtpReceiver, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    steps = [{"after": "0s", "to": "role:enterprise_safety_officer"}]
    tags = [f"GT-11{n:02d}" for n in range(1, 13)]
    hub = start_hub(
        tmp_path,
        mosquitto,
        smtp_receiver,
        webhook_receiver,
        steps,
        SAFETY_HUB_NOTIFY_SUMMARY_WINDOW_S="3",
    )
    try:
        with gateway(mosquitto.port, dict.fromkeys(tags, 0.8)):
            wait_for(
                lambda: len(notifications(hub, status="sent")) == len(tags),
                TIMEOUT,
                f"{len(tags)} level-2 alarms notified",
            )
        mails = smtp_receiver.messages
        assert 1 <= len(mails) < len(tags)
        summaries = [m for m in mails if "汇总" in str(m.message["Subject"])]
        assert summaries, [str(m.message["Subject"]) for m in mails]
        listed = sum(int(str(m.message["Subject"]).split("】")[1].split(" ")[0]) for m in summaries)
        assert listed + (len(mails) - len(summaries)) == len(tags)
        assert hub.metric('safety_hub_notifications_sent_total{channel="email"}') == len(tags)
        assert hub.metric('safety_hub_notification_messages_sent_total{channel="email"}') == len(
            mails
        )
    finally:
        hub.stop()
