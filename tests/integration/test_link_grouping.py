"""Root-cause grouping live: a real Mosquitto, the hub as a process, two gateways as MQTT
clients. One gateway is killed with -9 (the broker publishes its last-will), the other simply
goes quiet while staying connected; the hub is killed with -9 mid-outage and restarted. Counted
from the MQTT alarm events: each outage annunciates its link-down alarm and nothing else, its
consequences arrive as suppressed children, the restart raises nothing again, and the return
annunciates nothing."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from safety_hub.registry import Plant, TagInfo, default_plant_path, load_plant
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.integration

KILLED = "e02-sodium"  # kill -9: its last-will fires
QUIET = "e04-finechem"  # stays connected, stops publishing
BUDGET = 3
# Both gateways report every PERIOD_S; the hub trusts the interval it learns from the gaps
# between messages after 8 gaps (rules/slots.py LEARN_GAPS, gaps of 200 ms and more), and until
# then waits its rule's full 60 s of silence before the link is down. LEARNED messages of each
# enterprise give it more gaps than it needs.
PERIOD_S = 0.3
LEARNED = 12

GATEWAY = textwrap.dedent(
    """\
    import json, sys, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    port, ent, values = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    status = f"hazard/v1/{ent}/status"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{ent}")
    client.will_set(status, '{"state":"offline"}', qos=1, retain=True)
    client.connect("127.0.0.1", port, keepalive=5)
    client.loop_start()
    client.publish(status, '{"state":"online"}', qos=1, retain=True)
    while True:
        ts = int(time.time() * 1000)
        readings = [{"tag": tag, "v": v, "ts": ts} for tag, v in values]
        client.publish(f"hazard/v1/{ent}/telemetry", json.dumps({"readings": readings}), qos=1)
        time.sleep(float(sys.argv[4]))
    """
)


def normal_value(tag: TagInfo) -> float:
    """A value that raises nothing: no gas, air, midway between the process setpoints."""
    if tag.kind == "oxygen":
        return 20.9
    if tag.kind.endswith("_gas") or tag.kind.startswith("sis") or tag.kind == "status":
        return tag.range_lo
    sp = tag.setpoints
    lo = sp.get("l", sp.get("ll", tag.range_lo))
    hi = sp.get("h", sp.get("hh", tag.range_hi))
    return (lo + hi) / 2


def values_of(plant: Plant, enterprise: str) -> list[tuple[str, float]]:
    return [(t.tag, normal_value(t)) for (e, _), t in plant.tags.items() if e == enterprise]


def consequences(plant: Plant, enterprise: str) -> int:
    """One stale alarm per tag, one degraded vote per voting zone."""
    return len(values_of(plant, enterprise)) + sum(
        1 for (e, _), z in plant.zones.items() if e == enterprise and z.voting
    )


class Watcher:
    """Every alarm event of the two enterprises, as the MQTT topics carry them."""

    def __init__(self, port: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        ready: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: ready.put(1)
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(f"hazard/v1/{KILLED}/alarms", 1), (f"hazard/v1/{QUIET}/alarms", 1)]
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.get(timeout=10)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.events.append(json.loads(message.payload))

    def seen(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    def link(self, enterprise: str, action: str) -> dict[str, Any] | None:
        key = f"EnterpriseLinkDown|{enterprise}|{enterprise}"
        return next(
            (e for e in self.seen() if e["alarm"]["key"] == key and e["action"] == action), None
        )

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_killable(port: int, enterprise: str, values: list[tuple[str, float]]) -> Any:
    return subprocess.Popen(
        [sys.executable, "-c", GATEWAY, str(port), enterprise, json.dumps(values), str(PERIOD_S)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class QuietGateway:
    """A gateway in this process that can stop publishing while staying connected."""

    def __init__(self, port: int, enterprise: str, values: list[tuple[str, float]]) -> None:
        self.enterprise = enterprise
        self.values = values
        self.publishing = threading.Event()
        self.publishing.set()
        self.stopped = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{enterprise}")
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        status = f"hazard/v1/{enterprise}/status"
        self.client.publish(status, '{"state":"online"}', qos=1, retain=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            if self.publishing.is_set():
                ts = int(time.time() * 1000)
                readings = [{"tag": t, "v": v, "ts": ts} for t, v in self.values]
                topic = f"hazard/v1/{self.enterprise}/telemetry"
                self.client.publish(topic, json.dumps({"readings": readings}), qos=1)
            self.stopped.wait(PERIOD_S)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()


def children(hub: HubProcess, enterprise: str) -> list[dict[str, Any]]:
    key = f"EnterpriseLinkDown|{enterprise}|{enterprise}"
    found = hub.get(f"/api/v1/alarms?enterprise={enterprise}&include_normal=true&limit=1000")
    link = next((a for a in found.json() if a["key"] == key), None)
    if link is None:
        return []
    listed: list[dict[str, Any]] = hub.get(f"/api/v1/alarms/{link['id']}/children").json()
    return listed


def child_raises(watcher: Watcher, ent: str) -> list[dict[str, Any]]:
    """The raise events (each once, by seq) of the alarms grouped under ``ent``'s link alarm."""
    key = f"EnterpriseLinkDown|{ent}|{ent}"
    unique = {e["seq"]: e for e in watcher.seen()}.values()
    return [
        e for e in unique if e["action"] == "raise" and e["alarm"]["labels"].get("parent") == key
    ]


def ours_raised(watcher: Watcher) -> set[int]:
    """The seqs of the raise events of the two gateways' enterprises."""
    return {
        e["seq"]
        for e in watcher.seen()
        if e["action"] == "raise" and e["alarm"]["enterprise"] in (KILLED, QUIET)
    }


def wait_learned(hub: HubProcess, plant: Plant) -> None:
    """Until the hub has received ``LEARNED`` messages of each gateway (a message carries every
    tag of its enterprise)."""
    for ent in (KILLED, QUIET):
        metric = f'safety_hub_readings_received_total{{enterprise="{ent}"}}'
        wanted = LEARNED * len(values_of(plant, ent))
        wait_for(lambda m=metric, n=wanted: hub.metric(m) >= n, 60, f"{LEARNED} messages of {ent}")


def test_killed_and_quiet_gateways_annunciate_only_their_link_alarms(
    mosquitto: Any, tmp_path: Path
) -> None:
    plant = load_plant(default_plant_path())
    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    watcher = Watcher(mosquitto.port)
    killable = start_killable(mosquitto.port, KILLED, values_of(plant, KILLED))
    quiet = QuietGateway(mosquitto.port, QUIET, values_of(plant, QUIET))
    try:
        wait_learned(hub, plant)
        t_out = int(time.time() * 1000)
        killable.kill()  # SIGKILL: no DISCONNECT, the broker publishes the last-will
        killable.wait(10)
        quiet.publishing.clear()
        wait_for(lambda: watcher.link(KILLED, "raise") is not None, 60, "killed link down")
        wait_for(lambda: watcher.link(QUIET, "raise") is not None, 60, "quiet link down")
        killed_down = watcher.link(KILLED, "raise")
        quiet_down = watcher.link(QUIET, "raise")
        assert killed_down is not None and quiet_down is not None
        assert killed_down["alarm"]["labels"]["cause"] == "offline"
        assert quiet_down["alarm"]["labels"]["cause"] == "silence"
        for ent in (KILLED, QUIET):
            expected = consequences(plant, ent)
            wait_for(lambda e=ent, n=expected: len(children(hub, e)) == n, 90, f"{ent} children")
            assert {c["state"] for c in children(hub, ent)} == {"suppressed"}
        # Every child's raise event has reached MQTT (the journal, which the API reads, commits
        # before the outbox publishes): the count below is complete before the kill.
        wait_for(
            lambda: all(
                len(child_raises(watcher, ent)) == consequences(plant, ent)
                for ent in (KILLED, QUIET)
            ),
            30,
            "the children's raise events on MQTT",
        )
        # The hub dies mid-outage and comes back: nothing is raised or annunciated again.
        raises_before = len(ours_raised(watcher))
        hub.kill9()
        hub.start()
        for ent in (KILLED, QUIET):
            assert len(children(hub, ent)) == consequences(plant, ent)

        killable = start_killable(mosquitto.port, KILLED, values_of(plant, KILLED))
        quiet.publishing.set()
        wait_for(lambda: watcher.link(KILLED, "clear") is not None, 60, "killed link back")
        wait_for(lambda: watcher.link(QUIET, "clear") is not None, 60, "quiet link back")
        for ent in (KILLED, QUIET):
            wait_for(
                lambda e=ent: {c["state"] for c in children(hub, e)} == {"normal"},
                90,
                f"{ent} children back to normal",
            )
        unique = {e["seq"]: e for e in watcher.seen()}.values()  # a re-sent event counts once
        assert len(ours_raised(watcher)) == raises_before
        loud = [e for e in unique if e["annunciated"] and e["ts_ms"] >= t_out]
        assert sorted((e["alarm"]["alert"], e["alarm"]["enterprise"]) for e in loud) == [
            ("EnterpriseLinkDown", KILLED),
            ("EnterpriseLinkDown", QUIET),
        ]
        for ent in (KILLED, QUIET):
            assert len([e for e in loud if e["alarm"]["enterprise"] == ent]) <= BUDGET
            raised = child_raises(watcher, ent)
            assert len(raised) == consequences(plant, ent)
            assert {e["to_state"] for e in raised} == {"suppressed"}
            key = f"EnterpriseLinkDown|{ent}|{ent}"
            assert all(key in e["alarm"]["suppressed_by"] for e in raised)
    finally:
        killable.kill()
        killable.wait(10)
        quiet.close()
        watcher.stop()
        hub.stop()
