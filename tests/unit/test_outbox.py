"""The durable outbox for alarm events: survives restarts, keeps order, retries."""

from __future__ import annotations

import time
from pathlib import Path

from safety_hub.outbox import Outbox, OutboxPublisher


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
    assert [(t, p) for _, t, p in again.pending()] == [("a/1", b"one"), ("a/2", b"two")]


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
