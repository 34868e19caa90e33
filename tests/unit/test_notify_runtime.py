"""The notification outbox and dispatcher on a virtual clock, with an in-test sender (our own
NotificationSender protocol): escalation on time, ack cancels, retries with backoff, a system
alarm per failing channel, restart without loss or repeat, a flood summarised."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from safety_hub.errors import NotificationError
from safety_hub.metrics import HubMetrics
from safety_hub.notify.contacts import OutgoingMessage
from safety_hub.notify.planner import Planner
from safety_hub.runtime.notifications import NotificationRuntime, NotifyOptions, channel_alarm
from safety_hub.runtime.notify_outbox import NotificationOutbox, NotificationOutboxStore
from safety_hub.system_alarms import SystemAlarms
from tests.unit.notify_support import directory, policies
from tests.unit.test_alarms_support import MINUTE, SECOND, T0, Rig, gas

POLICY = """
policies:
  - name: esc
    match: {tier: [red, orange]}
    steps:
      - {after: 0s, to: role:enterprise_safety_officer}
      - {after: 5m, to: roster:park_duty}
      - {after: 15m, to: role:regulator, tier: red}
"""


class Sender:
    """Records what it delivers; a channel in ``down`` refuses (retryable) until told."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, OutgoingMessage]] = []
        self.down: set[str] = set()
        self.refused = 0
        self.clock_ms = lambda: 0

    def send(self, message: OutgoingMessage) -> None:
        if message.contact.channel in self.down:
            self.refused += 1
            raise NotificationError(message.contact.channel, message.contact.redacted(), "refused")
        self.sent.append((self.clock_ms(), message))

    def who(self) -> list[tuple[int, str, str]]:
        return [(t - T0, m.contact.url, m.notification_id) for t, m in self.sent]


class Setup:
    def __init__(
        self,
        path: Path | str = ":memory:",
        rig: Rig | None = None,
        outbox: NotificationOutboxStore | None = None,
        **options: int,
    ) -> None:
        self.rig = rig or Rig()
        self.sender = Sender()
        self.sender.clock_ms = self.rig.clock.now_ms
        self.metrics = HubMetrics()
        self.system = SystemAlarms(self.rig.clock, self.metrics)
        self.registry = CollectorRegistry()
        self.runtime = NotificationRuntime(
            planner=Planner(policies(POLICY), directory()),
            outbox=outbox or NotificationOutbox(path),
            sender=self.sender,
            clock=self.rig.clock,
            registry=self.registry,
            system_alarms=self.system,
            options=NotifyOptions(**options),
        )
        self.rig.svc.subscribe(self.runtime.on_transition)

    def raise_red(self, tag: str = "GT-1101") -> int:
        self.rig.on(f"ToxicGasLevel2|e|{tag}", **gas(2, tag), priority="critical")
        return self.rig.alarm(f"ToxicGasLevel2|e|{tag}").id

    def run_until(self, ms: int, step_ms: int = SECOND) -> None:
        while self.rig.clock.now_ms() < T0 + ms:
            self.runtime.dispatch()
            self.rig.advance(step_ms)
        self.runtime.dispatch()

    def metric(self, name: str, channel: str) -> float:
        value = self.registry.get_sample_value(name, {"channel": channel})
        return 0.0 if value is None else value


def test_escalation_goes_on_schedule_and_an_ack_cancels_the_rest() -> None:
    s = Setup()
    alarm_id = s.raise_red()
    s.run_until(6 * MINUTE)
    assert s.sender.who() == [
        (0, "mailto://zhang@example.org", "esc/1/1/0/zhang/email"),
        (5 * MINUTE, "json://h/li", "esc/1/1/1/li/webhook"),
    ]
    assert "红色预警升级" in s.sender.sent[1][1].title
    s.rig.svc.acknowledge(alarm_id, "op")
    s.run_until(30 * MINUTE, 10 * SECOND)
    assert len(s.sender.sent) == 2  # the regulator step was cancelled by the ack
    (row,) = s.runtime.outbox.rows(status="cancelled")
    assert (row.person_id, row.last_error) == ("wang", "acknowledged")
    assert s.metric("safety_hub_notifications_sent_total", "email") == 1
    assert s.metric("safety_hub_notifications_pending", "email") == 0


def test_a_failing_channel_is_retried_counted_alarmed_and_the_next_step_still_fires() -> None:
    s = Setup(retry_initial_ms=2_000, retry_max_ms=16_000)
    s.sender.down.add("email")
    s.raise_red()
    s.run_until(60 * SECOND)
    assert s.sender.sent == [] and s.sender.refused >= 4
    assert s.metric("safety_hub_notification_retries_total", "email") == s.sender.refused
    assert s.metric("safety_hub_notifications_pending", "email") == 2
    assert [a.name for a in s.system.active()] == [channel_alarm("email")]
    s.sender.down.clear()
    s.run_until(6 * MINUTE)
    # the email went once after the outage; the webhook step on its own schedule
    assert [(t, url) for t, url, _ in s.sender.who()] == [
        (s.sender.who()[0][0], "mailto://zhang@example.org"),
        (5 * MINUTE, "json://h/li"),
    ]
    assert 60 * SECOND <= s.sender.who()[0][0] <= 60 * SECOND + 16 * SECOND
    assert s.system.active() == []


def test_a_refused_message_is_failed_at_once_when_not_retryable() -> None:
    s = Setup()

    def refuse(message: OutgoingMessage) -> None:
        raise NotificationError("email", "mailto://x/***", "bad address", retryable=False)

    s.sender.send = refuse  # type: ignore[method-assign]
    s.raise_red()
    s.run_until(2 * SECOND)
    (row,) = s.runtime.outbox.rows(status="failed")
    assert (row.attempts, row.last_error) == (1, "bad address")
    assert s.metric("safety_hub_notifications_failed_total", "email") == 1


def test_a_restart_sends_a_pending_step_once_on_its_original_schedule(tmp_path: Path) -> None:
    path = tmp_path / "notifications.sqlite"
    first = Setup(path)
    first.raise_red()
    first.run_until(2 * MINUTE)
    assert len(first.sender.sent) == 1
    first.runtime.outbox.close()  # the hub dies here; the outbox file is all that is left
    second = Setup(path, rig=first.rig)
    second.run_until(5 * MINUTE - SECOND)
    assert second.sender.sent == []  # not before its due time, and the first step not again
    second.run_until(6 * MINUTE)
    assert [(t, url) for t, url, _ in second.sender.who()] == [(5 * MINUTE, "json://h/li")]


def test_a_crash_before_the_plan_was_committed_is_planned_again_from_the_journal() -> None:
    rig = Rig()
    rig.on("ToxicGasLevel2|e|GT-1101", **gas(2), priority="critical")  # nobody planned it
    rig.advance(MINUTE)
    s = Setup(rig=rig)
    s.runtime.outbox.set_marker(0)
    added = s.runtime.recover(rig.journal.entries(after_id=0), rig.svc.get)
    assert added == 3
    again = s.runtime.recover(rig.journal.entries(after_id=0), rig.svc.get)
    assert again == 0
    s.run_until(6 * MINUTE)
    assert [(t, url) for t, url, _ in s.sender.who()] == [
        (MINUTE, "mailto://zhang@example.org"),  # late, at once
        (5 * MINUTE, "json://h/li"),  # on its original schedule
    ]


def test_a_flood_to_one_person_is_one_summary_message() -> None:
    s = Setup(summary_window_ms=30_000)
    for i in range(20):
        s.raise_red(f"GT-{i:04d}")
        s.runtime.dispatch()  # the dispatcher runs while the flood comes in
        s.rig.advance(100)
    s.run_until(40 * SECOND)
    to_zhang = [m for _, m in s.sender.sent if "zhang" in m.contact.url]
    assert len(to_zhang) == 2
    assert to_zhang[1].title.startswith("【红色预警汇总】19 条报警")
    assert to_zhang[1].notification_id.startswith("summary/")
    assert s.metric("safety_hub_notifications_sent_total", "email") == 20
    assert s.metric("safety_hub_notification_messages_sent_total", "email") == 2


def test_a_red_warning_not_disposed_in_time_notifies_by_its_overdue_policy() -> None:
    s = Setup()
    s.runtime.planner = Planner(
        policies(
            """policies:
  - name: overdue
    trigger: disposal_overdue
    match: {tier: red}
    steps:
      - {after: 0s, to: roster:park_duty}
      - {after: 10m, to: role:regulator}
"""
        ),
        directory(),
    )
    alarm_id = s.raise_red()
    s.rig.svc.acknowledge(alarm_id, "op")
    while s.rig.clock.now_ms() < T0 + 31 * MINUTE:  # the service's tick marks it overdue
        s.rig.advance(30 * SECOND)
        s.rig.svc.tick()
        s.runtime.dispatch()
    assert any(t.action.value == "disposal_overdue" for t in s.rig.events)
    assert [(url, nid) for _, url, nid in s.sender.who()] == [
        ("json://h/li", "overdue/1/1/d0/li/webhook")
    ]
    s.rig.svc.dispose(alarm_id, "op", "false_alarm", "calibration drift")
    s.run_until(50 * MINUTE, 10 * SECOND)
    assert len(s.sender.sent) == 1  # the regulator's overdue step was cancelled by the disposal
    (row,) = s.runtime.outbox.rows(status="cancelled")
    assert (row.person_id, row.last_error) == ("wang", "disposed")


def test_recovery_does_not_notify_alarms_older_than_its_horizon() -> None:
    rig = Rig()
    rig.on("ToxicGasLevel2|e|GT-1101", **gas(2), priority="critical")  # while notify was off
    rig.advance(2 * 60 * MINUTE)
    rig.on("ToxicGasLevel2|e|GT-1102", **gas(2, "GT-1102"), priority="critical")
    s = Setup(rig=rig)
    s.runtime.outbox.set_marker(0)
    s.runtime.recover(rig.journal.entries(after_id=0), rig.svc.get)
    assert {r.facts["tag"] for r in s.runtime.outbox.rows()} == {"GT-1102"}
    assert s.runtime.outbox.marker() == rig.journal.entries(limit=1, newest=True)[0].id
