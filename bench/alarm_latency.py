"""Alarm latency: publish a reading over MQTT -> receive its alarm event over MQTT.

Runs a private Mosquitto, the hub as its own process (sample park, shipped rule packs), and a
load generator publishing the rest of the park at 1,000 and 20,000 readings/s. Each probe
puts one Cl2 detector between its level-1 and level-2 setpoints and times the raise event on
``hazard/v1/{enterprise}/alarms``; the alarm is then acknowledged and reset over the API.
Baseline, measured in the same run under the same load: a plain MQTT round trip through the
same broker (publish -> a subscriber receives it).
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess, wait_for

ENT = "e01-chloralkali"
PROBE_TAGS = ["GT-1101", "GT-1104", "GT-1107"]


def _load(port: int, rate: float, stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    from safety_hub.registry import default_plant_path, load_plant
    from simulators.park import ParkSimulator

    sim = ParkSimulator(load_plant(default_plant_path()), "127.0.0.1", port, rate=rate)
    sim.tags[ENT] = [t for t in sim.tags[ENT] if t.tag not in PROBE_TAGS]
    threading.Thread(target=lambda: (stop.wait(), sim.stop()), daemon=True).start()
    sim.run()


def _client(port: int, topic: str) -> tuple[mqtt.Client, queue.Queue[tuple[float, bytes]]]:
    got: queue.Queue[tuple[float, bytes]] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: got.put((time.perf_counter(), m.payload))
    c.on_subscribe = lambda *a: ready.put(1)
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)  # TCP_NODELAY
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.get(timeout=10)
    return c, got


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(port: int, hub: HubProcess, probes: int) -> tuple[list[float], list[float]]:
    raw_client, raw = _client(port, "bench/echo")
    alarm_client, events = _client(port, f"hazard/v1/{ENT}/alarms")
    api = httpx.Client(base_url=hub.url, headers=hub.auth, timeout=10)
    baseline: list[float] = []
    latency: list[float] = []
    for i in range(probes):
        sent = time.perf_counter()
        raw_client.publish("bench/echo", b"x", qos=1)
        received, _ = raw.get(timeout=10)
        baseline.append((received - sent) * 1000)

        tag = PROBE_TAGS[i % len(PROBE_TAGS)]
        while not events.empty():
            events.get_nowait()
        ts = int(time.time() * 1000)
        body = {"readings": [{"tag": tag, "v": 0.45, "ts": ts}]}
        sent = time.perf_counter()
        alarm_client.publish(f"hazard/v1/{ENT}/telemetry", json.dumps(body), qos=1)
        alarm_id = None
        try:
            while alarm_id is None:
                received, payload = events.get(timeout=30)
                event = json.loads(payload)
                alarm = event["alarm"]
                # Only this probe's raise counts: same tag, alert and source timestamp.
                if (
                    event["action"] == "raise"
                    and alarm["tag"] == tag
                    and alarm["alert"] == "ToxicGasLevel1"
                    and alarm["event_ts_ms"] == ts
                ):
                    latency.append((received - sent) * 1000)
                    alarm_id = alarm["id"]
        except queue.Empty:
            print(f"    probe {i}: no alarm within 30 s: the hub fell behind this load")
            break
        back = {"readings": [{"tag": tag, "v": 0.0, "ts": int(time.time() * 1000) + 1}]}
        alarm_client.publish(f"hazard/v1/{ENT}/telemetry", json.dumps(back), qos=1)
        api.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={}).raise_for_status()
        try:
            wait_for(
                lambda aid=alarm_id: not api.get(f"/api/v1/alarms/{aid}").json()["active"],
                30,
                "clear",
            )
        except AssertionError:
            print(f"    probe {i}: the return to normal was not processed within 30 s")
            break
        api.post(f"/api/v1/alarms/{alarm_id}/reset", json={}).raise_for_status()
    for c in (raw_client, alarm_client):
        c.loop_stop()
        c.disconnect()
    return baseline, latency


def run(rates: tuple[float, ...] = (1_000, 20_000), probes: int = 30) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoProcess(Path(tmp) / "broker")
        broker.start()
        hub = HubProcess(
            Path(tmp) / "hub",
            {
                "SAFETY_HUB_MQTT_URL": broker.url,
                "SAFETY_HUB_LOG_LEVEL": "warning",
                # Two operator actions per probe: above the per-user limit meant for people.
                "SAFETY_HUB_ACTION_RATE_PER_MIN": "60000",
                "SAFETY_HUB_ACTION_BURST": "1000",
            },
        )
        hub.start()
        try:
            print(f"alarm latency, publish -> alarm event over MQTT, {probes} probes per load")
            for rate in rates:
                stop = multiprocessing.Event()
                load = multiprocessing.Process(
                    target=_load, args=(broker.port, rate, stop), daemon=True
                )
                load.start()
                time.sleep(3)  # let the load settle
                before = hub.metric("safety_hub_readings_accepted_total")
                started = time.monotonic()
                baseline, latency = measure(broker.port, hub, probes)
                achieved = (hub.metric("safety_hub_readings_accepted_total") - before) / (
                    time.monotonic() - started
                )
                stop.set()
                load.join(10)
                if not latency:
                    print(
                        f"  load {rate:>8,.0f}/s: no measurement (hub ingested {achieved:,.0f}/s)"
                    )
                    continue
                b50, b99 = pct(baseline, 50), pct(baseline, 99)
                l50, l99 = pct(latency, 50), pct(latency, 99)
                print(
                    f"  load {rate:>8,.0f}/s (hub ingested {achieved:>8,.0f}/s): "
                    f"hub p50 {l50:6.2f} ms p99 {l99:6.2f} ms | "
                    f"baseline MQTT round trip p50 {b50:5.2f} ms p99 {b99:5.2f} ms | "
                    f"ratio p50 x{l50 / b50:5.1f} p99 x{l99 / b99:5.1f} | mean {statistics.mean(latency):.2f} ms"
                )
        finally:
            hub.stop()
            broker.stop()


if __name__ == "__main__":
    run()
