"""The durable outbox for alarm events: survives restarts, keeps order, retries."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from safety_hub.errors import DiskFullError
from safety_hub.metrics import HubMetrics
from safety_hub.runtime.outbox import Outbox, OutboxPublisher
from tests.fixtures.tmpfs import SmallFs, small_tmpfs_fixture  # noqa: F401


def wait(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_unsent_messages_survive_a_restart(tmp_path: Path) -> None:
    """Rows put but not yet sent are still there when the outbox is opened again."""
    box = Outbox(tmp_path / "o.sqlite")
    box.put("a/1", b"one", 1)
    box.put("a/2", b"two", 2)
    box.close()
    again = Outbox(tmp_path / "o.sqlite")
    assert [(r.topic, r.payload, r.created_ms) for r in again.pending()] == [
        ("a/1", b"one", 1),
        ("a/2", b"two", 2),
    ]


def test_publisher_keeps_order_and_retries_until_acknowledged(tmp_path: Path) -> None:
    """A refused publish is retried before anything behind it; rows go only once acked."""
    box = Outbox(tmp_path / "o.sqlite")
    sent: list[bytes] = []
    refusals = {"left": 2}

    def publish(topic: str, payload: bytes, timeout: float) -> bool:
        if payload == b"2" and refusals["left"]:
            refusals["left"] -= 1
            return False
        sent.append(payload)
        return True

    for i in range(1, 5):
        box.put("t", str(i).encode(), i)
    publisher = OutboxPublisher(box, publish)
    publisher.start()
    wait(lambda: box.depth() == 0)
    publisher.stop()
    assert sent == [b"1", b"2", b"3", b"4"]
    assert refusals["left"] == 0


def test_a_row_sent_on_a_full_disk_is_deleted_later_not_sent_again(
    small_tmpfs: SmallFs, caplog: pytest.LogCaptureFixture
) -> None:
    """When the disk is too full to delete a sent row, the publisher keeps trying to delete it
    without publishing it again, and deletes it once there is room; put fails meanwhile."""
    box = Outbox(small_tmpfs.path / "outbox.sqlite")
    box.put("t", b"1" * 50_000, 1)
    small_tmpfs.fill()
    with pytest.raises(DiskFullError, match="outbox: database or disk is full"):
        box.put("t", b"2" * 50_000, 2)
    sent: list[bytes] = []

    def publish(topic: str, payload: bytes, timeout: float) -> bool:
        sent.append(payload[:1])
        return True

    publisher = OutboxPublisher(box, publish)
    with caplog.at_level(logging.WARNING, logger="safety_hub.outbox"):
        publisher.start()
        wait(lambda: sum("not deleted yet" in r.message for r in caplog.records) >= 2)
        assert box.depth() == 1
        small_tmpfs.unfill()
        wait(lambda: box.depth() == 0)
    publisher.stop()
    assert sent == [b"1"]
    assert publisher.sent == 1


def test_pending_events_go_out_together_and_a_partial_ack_resumes_in_order(
    tmp_path: Path,
) -> None:
    """publish_many gets every pending row at once (one round trip for a level-1 and a level-2
    event, not one each); when only the first ones are acknowledged, those are deleted and the
    rest are sent again from the first unacknowledged one, in order, none twice."""
    box = Outbox(tmp_path / "o.sqlite")
    calls: list[list[bytes]] = []
    acked: list[bytes] = []

    def publish_many(messages: object, timeout: float) -> int:
        payloads = [p for _, p in messages]  # type: ignore[attr-defined]
        calls.append(payloads)
        n = 1 if len(calls) == 1 else len(payloads)  # the first call: only one PUBACK back
        acked.extend(payloads[:n])
        return n

    for i in range(1, 4):
        box.put("t", str(i).encode(), i)
    publisher = OutboxPublisher(box, lambda *_: False, publish_many=publish_many)
    publisher.start()
    wait(lambda: box.depth() == 0)
    publisher.stop()
    assert calls[0] == [b"1", b"2", b"3"]  # all pending rows in one call
    assert calls[1] == [b"2", b"3"]  # resumed at the first unacknowledged row
    assert acked == [b"1", b"2", b"3"] and publisher.sent == 3


def _sample(metrics: HubMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    assert value is not None, name
    return value


def test_metrics_show_events_waiting_while_the_broker_refuses_then_their_delay(
    tmp_path: Path,
) -> None:
    """While the broker refuses, /metrics shows the events waiting and the oldest one's age;
    once it acknowledges, each event's delay from its commit lands in the histogram (here
    5 s and 7 s on the publisher's clock), the count of published events grows, and the
    gauges fall back to 0."""
    box = Outbox(tmp_path / "o.sqlite")
    metrics = HubMetrics()
    clock = {"now": 10_000}
    broker_up = {"up": False}

    def publish(topic: str, payload: bytes, timeout: float) -> bool:
        return broker_up["up"]

    box.put("t", b"a", 3_000)
    box.put("t", b"b", 5_000)
    publisher = OutboxPublisher(box, publish, metrics=metrics, now_ms=lambda: clock["now"])
    publisher.start()
    try:
        wait(lambda: _sample(metrics, "safety_hub_alarm_outbox_events") == 2)
        assert _sample(metrics, "safety_hub_alarm_outbox_age_seconds") == 7.0
        assert _sample(metrics, "safety_hub_alarm_events_published_total") == 0
        broker_up["up"] = True
        wait(lambda: box.depth() == 0)
        wait(lambda: _sample(metrics, "safety_hub_alarm_outbox_events") == 0)
    finally:
        publisher.stop()
    assert _sample(metrics, "safety_hub_alarm_events_published_total") == 2
    assert _sample(metrics, "safety_hub_alarm_event_delay_seconds_count") == 2
    assert _sample(metrics, "safety_hub_alarm_event_delay_seconds_sum") == 12.0
    assert _sample(metrics, "safety_hub_alarm_event_delay_seconds_bucket", le="5.0") == 1
    assert _sample(metrics, "safety_hub_alarm_outbox_age_seconds") == 0
