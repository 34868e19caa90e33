"""The MQTT bridge transport (federation) against a real Mosquitto: records arrive as JSON on
``province/v1/<park>/records`` at QoS 1, a stopped broker is an outage (nothing done), and
after its restart the same records go through with the same ``dataId``."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from connectors.uplink import MqttBridgeTransport, build_transport
from safety_hub.errors import ConfigError, UplinkConfigError
from safety_hub.uplink import OutRecord, parse_uplink
from safety_hub.uplink.schema import MqttBridgeModel
from tests.fixtures.processes import MosquittoProcess, wait_until

pytestmark = pytest.mark.integration


class Listener:
    """A subscriber on the province's broker, collecting payloads."""

    def __init__(self, port: int, topic: str) -> None:
        self.got: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"listen-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with self._lock:
            self.got.append({"topic": message.topic, **json.loads(message.payload)})

    def ids(self) -> list[str]:
        with self._lock:
            return [g["dataId"] for g in self.got]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def records(n: int, start: int = 0) -> list[OutRecord]:
    return [
        OutRecord("reading", f"id-{i}", "e1/GT-1", {"tag": "GT-1", "value": i})
        for i in range(start, start + n)
    ]


def test_records_arrive_as_json_on_the_park_topic(
    mosquitto_factory: Callable[..., MosquittoProcess],
) -> None:
    broker = mosquitto_factory()
    listener = Listener(broker.port, "province/v1/+/records")
    transport = MqttBridgeTransport(
        MqttBridgeModel(host="127.0.0.1", port=broker.port, ack_timeout_s=5), "park-a", "prov"
    )
    try:
        outcome = wait_until(
            lambda: (o := transport.send(records(3))).error is None and o, 10, 0.2, "delivery"
        )
        assert outcome.done == 3
        wait_until(lambda: len(listener.ids()) >= 3, 10, message="3 messages")
    finally:
        transport.close()
        listener.close()
    first = listener.got[0]
    assert first["topic"] == "province/v1/park-a/records"
    assert first == {
        "topic": "province/v1/park-a/records",
        "park": "park-a",
        "dataId": "id-0",
        "kind": "reading",
        "key": "e1/GT-1",
        "data": {"tag": "GT-1", "value": 0},
    }
    assert listener.ids()[:3] == ["id-0", "id-1", "id-2"]


def test_a_stopped_broker_is_an_outage_then_the_batch_goes_through(
    mosquitto_factory: Callable[..., MosquittoProcess],
) -> None:
    broker = mosquitto_factory()
    transport = MqttBridgeTransport(
        MqttBridgeModel(host="127.0.0.1", port=broker.port, ack_timeout_s=2), "park-a", "prov"
    )
    try:
        wait_until(lambda: transport.send(records(1)).error is None, 10, 0.2, "first delivery")
        broker.stop()
        outcome = transport.send(records(2, 1))
        assert outcome.done == 0 and outcome.error is not None
        broker.start()
        listener = Listener(broker.port, "province/v1/park-a/records")
        again = wait_until(
            lambda: (o := transport.send(records(2, 1))).error is None and o, 30, 0.5, "resend"
        )
        assert again.done == 2
        wait_until(lambda: {"id-1", "id-2"} <= set(listener.ids()), 10, message="resent ids")
        listener.close()
    finally:
        transport.close()


def test_two_nodes_transports_under_one_client_id_take_turns(
    mosquitto_factory: Callable[..., MosquittoProcess],
) -> None:
    """The two nodes of a pair build the same destination (one client id): the one that sends
    connects, a closed one holds no connection, and a closed transport connects again on its
    next send (a node that acts again after standing by)."""
    broker = mosquitto_factory()
    listener = Listener(broker.port, "province/v1/park-a/records")
    model = MqttBridgeModel(host="127.0.0.1", port=broker.port, ack_timeout_s=5)
    node_a = MqttBridgeTransport(model, "park-a", "prov")
    node_b = MqttBridgeTransport(model, "park-a", "prov")
    try:
        wait_until(lambda: node_a.send(records(1)).error is None, 10, 0.2, "a delivers")
        node_a.close()
        wait_until(lambda: node_b.send(records(1, 1)).error is None, 10, 0.2, "b delivers")
        node_b.close()
        wait_until(lambda: node_a.send(records(1, 2)).error is None, 10, 0.2, "a again")
        wait_until(lambda: len(set(listener.ids())) >= 3, 10, message="3 messages")
    finally:
        node_a.close()
        node_b.close()
        listener.close()
    assert sorted(set(listener.ids())) == ["id-0", "id-1", "id-2"]


CONFIG = """
version: 1
destinations:
  - name: prov
    transport: mqtt_bridge
    mqtt: {host: 127.0.0.1, port: 1883, username_env: PROV_USER, password_env: PROV_PASS}
"""


def test_config_sends_source_fields_and_names_missing_credentials() -> None:
    config = parse_uplink(CONFIG)
    (destination,) = config.destinations
    assert destination.mapping["warning"]["tier"] == "tier"  # source fields under their names
    with pytest.raises(ConfigError, match="PROV_USER"):
        build_transport(destination, "park-a", env={})


def test_config_refuses_a_mapping() -> None:
    with pytest.raises(UplinkConfigError, match="a mapping does not apply"):
        parse_uplink(CONFIG + "    mapping: {reading: {V: value}}\n")


def test_config_refuses_a_wildcard_prefix() -> None:
    bad = CONFIG.replace("password_env: PROV_PASS}", "password_env: PROV_PASS, topic_prefix: a/+}")
    with pytest.raises(UplinkConfigError, match="topic levels"):
        parse_uplink(bad)
