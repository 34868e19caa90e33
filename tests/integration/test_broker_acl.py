"""Broker access control from the plant registry, loaded into a real Mosquitto: enterprises are
fenced into their own topics, the hub reads everything, bad credentials are refused."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from connectors.mqtt import MqttConfig, RoundTripProbe
from connectors.mqtt.acl import generate, hash_password, verify_password
from safety_hub.cli import main
from safety_hub.registry import Plant, default_plant_path, load_plant
from tests.fixtures.processes import MosquittoProcess, find_binary, wait_until

pytestmark = pytest.mark.integration

A, B = "e01-chloralkali", "e02-sodium"


class Client:
    """A paho MQTT v5 client that records what it receives and its SUBACK codes."""

    def __init__(self, broker: MosquittoProcess, user: str, password: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.suback: dict[int, list[int]] = {}
        self.connack: list[int] = []
        self.lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=mqtt.MQTTv5)
        c.username_pw_set(user, password)
        c.on_connect = lambda _c, _u, _f, rc, _p: self.connack.append(rc.value)
        c.on_message = self._on_message
        c.on_subscribe = lambda _c, _u, mid, codes, _p: self.suback.__setitem__(
            mid, [code.value for code in codes]
        )
        self.client = c
        c.connect(broker.host, broker.port)
        c.loop_start()
        wait_until(lambda: self.connack, 10, message=f"CONNACK for {user}")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    @property
    def connected(self) -> bool:
        return self.connack == [0]

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; return the SUBACK reason code (>= 128: refused)."""
        _, mid = self.client.subscribe(topic, qos=1)
        wait_until(lambda: mid in self.suback, 10, message=f"SUBACK for {topic}")
        return self.suback[mid][0]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def got(self, payload: bytes) -> bool:
        with self.lock:
            return any(p == payload for _, p in self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def plant() -> Plant:
    return load_plant(default_plant_path())


@pytest.fixture
def broker_files(tmp_path: Path, plant: Plant) -> tuple[Path, dict[str, str]]:
    out = tmp_path / "broker"
    env = {"MQTT_HUB_PASSWORD": "hub-secret-from-env"}
    generate(plant, out, simulator_user="simulator", env=env)
    creds = dict(
        line.split(":", 1)
        for line in (out / "credentials").read_text().splitlines()
        if line and not line.startswith("#")
    )
    return out, creds


@pytest.fixture
def broker(
    mosquitto_factory: Callable[..., MosquittoProcess], broker_files: tuple[Path, dict[str, str]]
) -> MosquittoProcess:
    out, creds = broker_files
    return mosquitto_factory(
        users={"hub": creds["hub"]},
        password_file_text=(out / "passwd").read_text(),
        acl_text=(out / "acl").read_text(),
    )


@pytest.fixture
def clients(
    broker: MosquittoProcess, broker_files: tuple[Path, dict[str, str]]
) -> Iterator[Callable[[str, str | None], Client]]:
    _, creds = broker_files
    made: list[Client] = []

    def make(user: str, password: str | None = None) -> Client:
        client = Client(broker, user, creds[user] if password is None else password)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_enterprises_are_fenced_and_the_hub_reads_all(
    clients: Callable[[str, str | None], Client],
) -> None:
    """A cannot publish under B nor read B's telemetry or alarms; the hub gets A's and B's data."""
    hub, a, b = clients("hub", None), clients(A, None), clients(B, None)
    assert hub.connected and a.connected and b.connected  # Python-computed $7$ hashes accepted
    assert hub.subscribe("hazard/v1/+/telemetry/#") < 128
    assert hub.subscribe("hazard/v1/+/critical/#") < 128
    assert hub.subscribe("hazard/v1/+/status") < 128
    assert a.subscribe(f"hazard/v1/{A}/rejected") < 128
    assert a.subscribe(f"hazard/v1/{A}/alarms") < 128
    assert b.subscribe(f"hazard/v1/{B}/alarms") < 128
    # Mosquitto 2.0 grants these subscriptions but checks the read ACL on every message it
    # would deliver: nothing of B's may arrive through them (asserted below).
    a.subscribe(f"hazard/v1/{B}/telemetry/#")
    a.subscribe(f"hazard/v1/{B}/alarms")
    a.subscribe("hazard/v1/+/telemetry/#")
    a.subscribe("hazard/v1/+/critical/#")

    a.publish(f"hazard/v1/{B}/telemetry", b"forged-by-A")
    a.publish(f"hazard/v1/{B}/critical", b"forged-critical-by-A")
    a.publish(f"hazard/v1/{A}/critical", b"A-critical")
    a.publish(f"hazard/v1/{B}/status", b"forged-status-by-A")
    a.publish(f"hazard/v1/{A}/telemetry/unit-1", b"A-own")
    a.publish(f"hazard/v1/{A}/status", b"A-online")
    b.publish(f"hazard/v1/{B}/telemetry", b"B-own")
    wait_until(
        lambda: all(hub.got(p) for p in (b"A-own", b"B-own", b"A-online", b"A-critical")),
        10,
        message="the hub to get A's and B's telemetry",
    )
    hub.publish(f"hazard/v1/{B}/alarms", b"alarm-for-B")
    hub.publish(f"hazard/v1/{A}/rejected", b"sync-A")
    wait_until(lambda: a.got(b"sync-A") and b.got(b"alarm-for-B"), 10, message="sync messages")
    assert not hub.got(b"forged-by-A") and not hub.got(b"forged-status-by-A")
    assert not hub.got(b"forged-critical-by-A")
    assert not a.got(b"B-own") and not a.got(b"alarm-for-B")


def test_the_catch_all_user_reads_only_what_no_registered_enterprise_sends(
    clients: Callable[[str, str | None], Client], broker_files: tuple[Path, dict[str, str]]
) -> None:
    """The hub's catch-all user (the hub's password) gets an unregistered enterprise's
    telemetry and status, and none of a registered one's, which the hub user gets."""
    _, creds = broker_files
    assert creds["hub-unregistered"] == creds["hub"]
    hub, catch_all = clients("hub", None), clients("hub-unregistered", None)
    simulator = clients("simulator", None)
    for client in (hub, catch_all):
        assert client.subscribe("hazard/v1/+/telemetry/#") < 128
        assert client.subscribe("hazard/v1/+/critical/#") < 128
        assert client.subscribe("hazard/v1/+/status") < 128
    stranger = "x9-not-registered"
    simulator.publish(f"hazard/v1/{A}/telemetry", b"A-telemetry")
    simulator.publish(f"hazard/v1/{A}/critical", b"A-critical")
    simulator.publish(f"hazard/v1/{stranger}/critical", b"stranger-critical")
    simulator.publish(f"hazard/v1/{A}/telemetry/unit-1", b"A-unit")
    simulator.publish(f"hazard/v1/{B}/status", b"B-status")
    simulator.publish(f"hazard/v1/{stranger}/telemetry", b"stranger-telemetry")
    simulator.publish(f"hazard/v1/{stranger}/status", b"stranger-status")
    wait_until(
        lambda: (
            all(
                hub.got(p)
                for p in (b"A-telemetry", b"A-unit", b"A-critical", b"B-status", b"stranger-status")
            )
            and catch_all.got(b"stranger-telemetry")
            and catch_all.got(b"stranger-critical")
            and catch_all.got(b"stranger-status")
        ),
        10,
        message="the hub's and the catch-all's messages",
    )
    assert not any(
        catch_all.got(p) for p in (b"A-telemetry", b"A-unit", b"A-critical", b"B-status")
    )


def test_the_hub_may_probe_its_round_trip_and_an_enterprise_may_not(
    broker: MosquittoProcess, broker_files: tuple[Path, dict[str, str]]
) -> None:
    _, creds = broker_files

    def probe(user: str) -> list[tuple[float, float]]:
        config = MqttConfig(
            host=broker.host,
            port=broker.port,
            client_id="hub-ingest",
            username=user,
            password=creds[user],
        )
        return RoundTripProbe(config, timeout_s=1.0).measure(samples=3, gap_s=0.05)

    assert len(probe("hub")) == 3
    assert probe(A) == []


def test_enterprise_cannot_impersonate_the_hub(
    clients: Callable[[str, str | None], Client],
) -> None:
    """An enterprise cannot publish alarms or rejections, not even its own."""
    a, b = clients(A, None), clients(B, None)
    assert b.subscribe(f"hazard/v1/{B}/rejected") < 128
    assert a.subscribe(f"hazard/v1/{A}/alarms") < 128
    a.publish(f"hazard/v1/{B}/rejected", b"fake-rejection")
    a.publish(f"hazard/v1/{A}/alarms", b"fake-alarm")
    hub = clients("hub", None)
    hub.publish(f"hazard/v1/{B}/rejected", b"real-rejection")
    wait_until(lambda: b.got(b"real-rejection"), 10, message="the hub's rejection report")
    assert not b.got(b"fake-rejection") and not a.got(b"fake-alarm")


def test_wrong_password_unknown_user_and_anonymous_are_refused(
    clients: Callable[[str, str | None], Client],
) -> None:
    """CONNACK refuses a wrong password, a user not in the file and a client without any."""
    assert not clients(A, "not-the-password").connected
    assert not clients("intruder", "whatever").connected
    assert not clients("hub", "").connected


def test_rerun_keeps_passwords_and_rotate_replaces_them(
    tmp_path: Path, plant: Plant, broker_files: tuple[Path, dict[str, str]]
) -> None:
    """Idempotent: a rerun changes no byte; --rotate renews generated passwords, not env ones."""
    out, creds = broker_files
    before = {name: (out / name).read_bytes() for name in ("passwd", "acl", "credentials")}
    env = {"MQTT_HUB_PASSWORD": "hub-secret-from-env"}
    again = generate(plant, out, simulator_user="simulator", env=env)
    assert again.changed == []
    assert {name: (out / name).read_bytes() for name in before} == before
    assert (out / "credentials").stat().st_mode & 0o777 == 0o600
    assert (out / "passwd").stat().st_mode & 0o777 == 0o600
    assert creds["hub"] == "hub-secret-from-env"

    rotated = generate(plant, out, simulator_user="simulator", env=env, rotate=True)
    assert rotated.source["hub"] == "env" and rotated.source[A] == "rotated"
    new = dict(
        line.split(":", 1)
        for line in (out / "credentials").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert new["hub"] == creds["hub"] and new[A] != creds[A]
    hashes = dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())
    assert verify_password(new[A], hashes[A]) and not verify_password(creds[A], hashes[A])


def test_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    """Our $7$ verifier accepts mosquitto_passwd's hash, and our hash has its exact shape."""
    path = tmp_path / "pw"
    tool = find_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    subprocess.run([tool, "-c", "-b", str(path), "alice", "s3cret"], check=True)
    theirs = path.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", theirs) and not verify_password("wrong", theirs)
    subprocess.run([tool, "-H", "sha512", "-b", str(path), "bob", "0ld"], check=True)
    old_style = dict(line.split(":", 1) for line in path.read_text().split())["bob"]
    assert old_style.startswith("$6$") and verify_password("0ld", old_style)
    assert not verify_password("new", old_style)
    ours = hash_password("s3cret")
    assert ours.split("$")[1:3] == theirs.split("$")[1:3] == ["7", "101"]
    assert len(ours) == len(theirs)


def test_cli_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`safety-hub broker --out DIR` writes passwd, acl and credentials and says where."""
    assert main(["broker", "--out", str(tmp_path / "b")]) == 0
    assert {p.name for p in (tmp_path / "b").iterdir()} == {"passwd", "acl", "credentials"}
    acl = (tmp_path / "b" / "acl").read_text()
    assert f"user {A}\n" in acl and f"topic write hazard/v1/{A}/telemetry/#" in acl
    assert "credentials (mode 0600)" in capsys.readouterr().err


def test_users_leave_with_their_enterprise(tmp_path: Path, plant: Plant) -> None:
    """Regenerated for a plant without an enterprise, its user, password and ACL entry go."""
    out = tmp_path / "broker"
    generate(plant, out, env={})
    other = load_plant(Path(__file__).resolve().parents[1] / "data" / "special_plant.yaml")
    result = generate(other, out, env={})
    assert set(result.removed) == set(plant.enterprises) - set(other.enterprises)
    assert result.source["hub"] == "kept"
    users = {line.split(":", 1)[0] for line in (out / "passwd").read_text().splitlines()}
    assert users == {"hub", "hub-unregistered", *other.enterprises}
    assert f"topic deny hazard/v1/{A}/telemetry/#" not in (out / "acl").read_text()
    assert f"user {A}\n" not in (out / "acl").read_text()
