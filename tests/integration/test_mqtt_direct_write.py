"""The hub's publisher writes its packets on the publishing thread (connectors/mqtt/direct_write.py):
an alarm event reaches the broker while the client's network thread is busy, and nothing is
lost or reordered across a broker restart. Real Mosquitto throughout."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from connectors.mqtt import MqttConfig, MqttIngest
from connectors.mqtt.direct_write import DirectWriteClient
from safety_hub.ports import InboundMessage
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import wait_for


@contextmanager
def _subscriber(
    broker: MosquittoProcess, topic: str, client_id: str = "watcher"
) -> Iterator[queue.Queue[bytes]]:
    """A persistent QoS 1 subscriber to ``topic``; yields the queue of payloads it receives."""
    got: queue.Queue[bytes] = queue.Queue()
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_message = lambda cl, u, m: got.put(m.payload)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    assert subscribed.wait(10), "the watcher could not subscribe"
    try:
        yield got
    finally:
        c.loop_stop()
        c.disconnect()


def _blocked_network_thread(
    broker: MosquittoProcess, client: mqtt.Client, release: threading.Event
) -> None:
    """Subscribe ``client`` to t/block and park its network thread in on_message until
    ``release`` is set (as a busy interpreter would keep it from running)."""
    parked = threading.Event()

    def on_message(cl: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        parked.set()
        release.wait(30)

    client.on_message = on_message
    client.subscribe("t/block", qos=0)
    time.sleep(0.3)  # the SUBACK
    other = mqtt.Client(CallbackAPIVersion.VERSION2)
    other.connect("127.0.0.1", broker.port)
    other.publish("t/block", b"x", qos=0)
    other.loop(0.5)
    other.disconnect()
    assert parked.wait(10), "the network thread never took the blocking message"


def test_a_publish_reaches_the_broker_while_the_network_thread_is_stuck(
    mosquitto: MosquittoProcess,
) -> None:
    """With the network thread parked, the publishing thread's own write still delivers the
    message (its PUBACK waits for the network thread); the same client with ``direct=False``
    (paho's own behaviour, as over TLS) delivers nothing until the thread is free again."""
    for direct in (True, False):
        release = threading.Event()
        client = DirectWriteClient(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{direct}", direct=direct
        )
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        try:
            wait_for(client.is_connected, 10, "the publisher to connect")
            with _subscriber(mosquitto, "t/out", client_id=f"watch-{direct}") as got:
                _blocked_network_thread(mosquitto, client, release)
                client.publish("t/out", b"alarm", qos=1)
                client.write_queued()
                try:
                    payload: bytes | None = got.get(timeout=2)
                except queue.Empty:
                    payload = None
                if direct:
                    assert payload == b"alarm" and client.direct_writes == 1
                else:
                    assert payload is None and client.direct_writes == 0
                release.set()
                if not direct:  # the network thread, free again, writes it itself
                    assert got.get(timeout=10) == b"alarm"
        finally:
            release.set()
            client.loop_stop()
            client.disconnect()


def test_publishes_from_threads_across_a_broker_restart_arrive_complete_and_in_order(
    mosquitto: MosquittoProcess,
) -> None:
    """Two threads publish confirmed batches, retrying what was not acknowledged, while the
    broker restarts: every message arrives, each thread's in order (repeats of a retried
    batch allowed, as QoS 1 allows), and the session is connected again at the end."""
    ingest = MqttIngest(
        MqttConfig(host="127.0.0.1", port=mosquitto.port, client_id="pub", max_reconnect_s=1)
    )

    def ignore(message: InboundMessage) -> None:
        pass

    ingest.start(ignore)
    assert ingest.wait_connected(10)
    per_thread = 3000
    shortfalls = 0  # batches not wholly acknowledged: the restart came mid-stream
    third = threading.Barrier(3)
    with _subscriber(mosquitto, "t/seq/#") as got:

        def publisher(name: str) -> None:
            nonlocal shortfalls
            sent = 0
            while sent < per_thread:
                batch = [(f"t/seq/{name}", f"{name}:{n}".encode()) for n in range(sent, sent + 20)]
                done = ingest.publish_confirmed_many(batch, timeout_s=2.0)
                shortfalls += done < len(batch)
                if sent < per_thread // 3 <= sent + done:
                    third.wait(30)  # the broker restarts now
                sent += done
                time.sleep(0.002)

        threads = [threading.Thread(target=publisher, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        third.wait(30)
        mosquitto.restart()
        for t in threads:
            t.join(120)
            assert not t.is_alive(), "a publisher never got its messages acknowledged"
        received: dict[str, list[int]] = {"a": [], "b": []}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
            len(set(v)) < per_thread for v in received.values()
        ):
            try:
                name, n = got.get(timeout=0.5).decode().split(":")
            except queue.Empty:
                continue
            received[name].append(int(n))
    ingest.stop()
    assert shortfalls > 0, "the restart did not interrupt the publishers"
    for name, seq in received.items():
        assert set(seq) == set(range(per_thread)), f"{name}: {per_thread - len(set(seq))} lost"
        firsts = sorted(set(seq), key=seq.index)  # order of first arrival
        assert firsts == list(range(per_thread)), f"{name}: reordered"
    assert ingest._client.direct_writes > 0
