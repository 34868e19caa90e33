"""Fair ingest: one enterprise floods at full speed, another enterprise's alarm must not wait.

A private Mosquitto and the hub as its own process (sample park, shipped rule packs). One
enterprise's gateway (``FLOODER``) publishes one-reading messages as fast as a client can, at
QoS 0 and then at QoS 1, while probes put a Cl2 detector of another enterprise over its
level-1 setpoint and time the raise event on ``hazard/v1/{enterprise}/alarms`` (the same probe
as bench/alarm_latency.py). Baseline, in the same run: the same probes with no flood.

Printed per case: the probes' p50/p99 and the ratio to the baseline, the flood's rate, the
hub's broker reconnects during the case (must be 0), and for QoS 0 how every flood message is
accounted for: accepted by the hub or counted as dropped (nothing silent).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.sharedctypes
import multiprocessing.synchronize
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.alarm_latency import measure, pct
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess

FLOODER = "e02-sodium"


def _flood(
    port: int,
    qos: int,
    stop: multiprocessing.synchronize.Event,
    sent: multiprocessing.sharedctypes.Synchronized[int],
) -> None:
    from safety_hub.registry import default_plant_path, load_plant

    plant = load_plant(default_plant_path())
    tags = [t.tag for (e, _), t in plant.tags.items() if e == FLOODER]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = f"hazard/v1/{FLOODER}/telemetry"
    n = 0
    while not stop.is_set():
        info = None
        for _ in range(500):
            tag = tags[n % len(tags)]
            body = {"readings": [{"tag": tag, "v": 0.0, "ts": int(time.time() * 1000)}]}
            info = client.publish(topic, json.dumps(body), qos=qos)
            n += 1
        # Full speed, but counted honestly: a message counts as sent once the client wrote it
        # (QoS 0) or the broker acknowledged it (QoS 1), not when it was queued in the client.
        assert info is not None
        info.wait_for_publish(30)
        with sent.get_lock():
            sent.value = n
    client.loop_stop()
    client.disconnect()


def run(probes: int = 20) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoProcess(Path(tmp) / "broker")
        broker.start()
        hub = HubProcess(
            Path(tmp) / "hub",
            {
                "SAFETY_HUB_MQTT_URL": broker.url,
                "SAFETY_HUB_LOG_LEVEL": "warning",
                "SAFETY_HUB_ACTION_RATE_PER_MIN": "60000",
                "SAFETY_HUB_ACTION_BURST": "1000",
            },
        )
        hub.start()
        try:
            print(f"fair ingest: {FLOODER} floods, probes of another enterprise ({probes} each)")
            _, quiet = measure(broker.port, hub, probes)
            q50, q99 = pct(quiet, 50), pct(quiet, 99)
            print(f"  no flood (baseline):  p50 {q50:7.2f} ms  p99 {q99:7.2f} ms")
            for qos in (0, 1):
                stop = multiprocessing.Event()
                sent = multiprocessing.Value("q", 0)
                flood = multiprocessing.Process(
                    target=_flood, args=(broker.port, qos, stop, sent), daemon=True
                )
                connects = hub.metric("safety_hub_mqtt_connects_total")
                accepted = hub.metric("safety_hub_readings_accepted_total")
                dropped = hub.metric("safety_hub_qos0_dropped_total")
                flood.start()
                time.sleep(3)
                started = time.monotonic()
                _, latency = measure(broker.port, hub, probes)
                elapsed = time.monotonic() - started
                stop.set()
                flood.join(15)
                time.sleep(3)  # let the hub finish what it has
                total = sent.value
                took = hub.metric("safety_hub_readings_accepted_total") - accepted
                lost = hub.metric("safety_hub_qos0_dropped_total") - dropped
                reconnects = hub.metric("safety_hub_mqtt_connects_total") - connects
                if not latency:
                    print(f"  QoS {qos} flood: no probe answered")
                    continue
                l50, l99 = pct(latency, 50), pct(latency, 99)
                print(
                    f"  QoS {qos} flood {total / (elapsed + 3):>8,.0f} msg/s: p50 {l50:7.2f} ms  "
                    f"p99 {l99:7.2f} ms  (x{l50 / q50:.1f} / x{l99 / q99:.1f} the baseline)  "
                    f"hub reconnects {reconnects:.0f}  flood sent {total:,} = hub took "
                    f"{took:,.0f} + dropped (counted) {lost:,.0f}"
                    + (f" + {total - took - lost:,.0f} unaccounted" if qos == 0 else "")
                )
        finally:
            hub.stop()
            broker.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fairness",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--probes", type=int, default=20, help="probes per case (default 20)")
    args = parser.parse_args(argv)
    run(args.probes)


if __name__ == "__main__":
    main()
