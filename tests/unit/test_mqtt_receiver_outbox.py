"""The receiver child's queue towards the hub (connectors/mqtt/receiver.py): urgent messages
first, batches bounded, a full queue holds the network thread back. Over a real pipe."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from connectors.mqtt import receiver
from connectors.mqtt.receiver import SEND_BATCH, ChildOutbox


def item(n: int, payload: bytes = b"{}") -> tuple[object, ...]:
    return ("e1", n, "hazard/v1/e1/telemetry", payload, 0, False, 1, False)


def test_an_urgent_message_goes_first_in_a_bounded_batch() -> None:
    ours, theirs = multiprocessing.Pipe(duplex=True)
    outbox = ChildOutbox(theirs)
    for n in range(1, 201):
        outbox.put(item(n), 2, urgent=False)
    outbox.put(item(999), 2, urgent=True)
    sender = threading.Thread(target=outbox.run, daemon=True)
    sender.start()
    try:
        got: list[int] = []
        sizes = []
        while len(got) < 201:
            assert ours.poll(5), f"only {len(got)} of 201 messages sent"
            kind, batch = ours.recv()
            assert kind == "msgs"
            sizes.append(len(batch))
            got += [entry[1] for entry in batch]
        assert got[0] == 999, "the urgent message was not sent first"
        assert got[1:] == list(range(1, 201)), "the others lost their order"
        assert max(sizes) <= SEND_BATCH
    finally:
        outbox.stop()
        sender.join(5)


def test_a_full_queue_makes_the_network_thread_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiver, "QUEUE_MAX_MESSAGES", 3)
    ours, theirs = multiprocessing.Pipe(duplex=True)
    outbox = ChildOutbox(theirs)
    for n in range(3):
        outbox.put(item(n), 2, urgent=False)
    fourth = threading.Thread(target=outbox.put, args=(item(3), 2, False), daemon=True)
    fourth.start()
    time.sleep(0.2)
    assert fourth.is_alive(), "a fourth message was queued past the bound"
    sender = threading.Thread(target=outbox.run, daemon=True)
    sender.start()
    try:
        fourth.join(5)
        assert not fourth.is_alive(), "the network thread stayed held after the queue drained"
        got: list[int] = []
        while len(got) < 4 and ours.poll(5):
            got += [entry[1] for entry in ours.recv()[1]]
        assert got == [0, 1, 2, 3]
    finally:
        outbox.stop()
        sender.join(5)
