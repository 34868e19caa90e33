"""The naive alarm relay bench/alarm_latency.py measures the hub's alarm latency against.

What the speed of the broker means for an alarm: a bare paho subscriber (MQTT 5, QoS 1, clean
session, TCP_NODELAY) to the probes' topic (``hazard/v1/+/critical`` by default) that decodes
each message with msgspec, compares every reading with its gas detector's level-2 setpoint from
the sample park, and for each one past it publishes a ``raise`` event at QoS 1 on
``bench/naive-alarms/{enterprise}``, in the shape of the hub's (``action``, ``alarm.tag``,
``alarm.alert``, ``alarm.event_ts_ms``). Nothing durable, no journal, no rule engine, no on-delay,
no acknowledgement: the least any alarm path through this broker has to do. Its latency, taken
on the same probes as the hub's and at the same time, is the floor the hub is measured against.

With ``--journal PATH`` the relay first commits the message's events to a SQLite journal in WAL
mode with ``synchronous=FULL`` (as the hub's alarm journal, whose synced commit comes before any
output sees a transition), one transaction per message, and publishes after the commit: the
floor of a separate, light alarm process that keeps the hub's durability contract.

With ``--engine`` the decision is the hub's own rule engine's (the sample park, the shipped rule
packs, the hub's decoder), and the engine also gets every process reading: a second session
reads ``hazard/v1/+/telemetry`` and hands its readings to the engine in chunks of 500 on its own
thread, taking turns with the probes' thread on the engine's lock and the GIL. A ``raise`` is
published for every level-2 gas condition the engine raises: the floor of an alarm process that
runs the whole rule engine, the bulk data's included.

Run as its own process, as a relay beside the hub would be:
``python -m bench.naive_alarm --mqtt-port P [--topic critical] [--mqtt-user U] [--journal F]
[--engine]`` (the password in ``NAIVE_MQTT_PASSWORD``). It prints ``ready`` once subscribed and
runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt

from bench import naive_baseline
from bench.naive_baseline import Message, serve, subscriber

TOPIC_PREFIX = "bench/naive-alarms/"
GAS_LEVEL2 = {"toxic_gas": "ToxicGasLevel2", "combustible_gas": "CombustibleGasLevel2"}


def level2_setpoints() -> dict[tuple[str, str], tuple[str, float]]:
    """(enterprise, tag) -> (alert, level-2 setpoint) of every in-service gas detector of the
    sample park that has a level 2."""
    from safety_hub.registry import default_plant_path, load_plant

    plant = load_plant(default_plant_path())
    return {
        (t.enterprise, t.tag): (GAS_LEVEL2[t.kind], dict(t.setpoints)["l2"])
        for t in plant.tags.values()
        if t.kind in GAS_LEVEL2 and t.in_service
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.naive_alarm", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument(
        "--topic", default="critical", help="the enterprises' topic to read (default critical)"
    )
    parser.add_argument(
        "--mqtt-user", help="broker user (its password in NAIVE_MQTT_PASSWORD); default: none"
    )
    parser.add_argument(
        "--journal",
        type=Path,
        help="commit each message's events to this SQLite file (WAL, synchronous=FULL) before "
        "publishing them; default: nothing durable",
    )
    parser.add_argument(
        "--engine",
        action="store_true",
        help="decide with the hub's rule engine, which also gets every reading of the "
        "enterprises' telemetry topic (a second session); default: compare with the setpoint",
    )
    args = parser.parse_args(argv)

    journal = None if args.journal is None else open_journal(args.journal)
    topic = f"hazard/v1/+/{args.topic}"
    if args.engine:
        return _serve_engine(args.mqtt_port, topic, args.mqtt_user, journal)
    setpoints = level2_setpoints()
    decode = msgspec.json.Decoder(Message).decode
    encode = msgspec.json.encode

    def on_message(client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        enterprise = msg.topic.split("/")[2]
        try:
            message = decode(msg.payload)
        except msgspec.DecodeError:
            return
        events = []
        for r in message.readings:
            found = setpoints.get((enterprise, r.tag))
            if found is not None and r.v >= found[1]:
                alarm = {"tag": r.tag, "alert": found[0], "event_ts_ms": r.ts or message.ts}
                events.append(encode({"action": "raise", "alarm": alarm}))
        _journal_and_publish(client, enterprise, events, journal)

    return serve("naive-alarm", on_message, args.mqtt_port, topic, args.mqtt_user, nodelay=True)


def _journal_and_publish(
    client: mqtt.Client, enterprise: str, events: list[bytes], journal: sqlite3.Connection | None
) -> None:
    if journal is not None and events:
        with journal:  # one synced transaction for the message's events
            journal.executemany(
                "INSERT INTO journal (ts_ms, event) VALUES (?, ?)",
                [(time.time_ns() // 1_000_000, e) for e in events],
            )
    for event in events:
        client.publish(TOPIC_PREFIX + enterprise, event, qos=1)


ENGINE_CHUNK = 500  # readings per engine call from the bulk session, as the hub's worker


def _serve_engine(
    port: int, topic: str, user: str | None, journal: sqlite3.Connection | None
) -> int:
    """``--engine``: the probes' topic and the telemetry topic through the hub's rule engine."""
    from safety_hub.clock import WallClock
    from safety_hub.ingest.decoder import TelemetryDecoder
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.rules.engine import RuleEngine
    from safety_hub.rules.loader import load_rules
    from safety_hub.rules.paths import default_rules_path

    plant = load_plant(default_plant_path())
    clock = WallClock()
    engine = RuleEngine(load_rules(default_rules_path(), plant), plant, clock)
    decoder = TelemetryDecoder(plant.tags, set(plant.enterprises), clock.now_ms)
    lock = threading.Lock()
    encode = msgspec.json.encode

    def on_probe(client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        readings = decoder.decode(msg.topic, bytes(msg.payload)).readings
        with lock:
            conditions = engine.on_readings(readings, clock.now_ms())
        events = [
            encode(
                {
                    "action": "raise",
                    "alarm": {"tag": c.tag, "alert": c.alert, "event_ts_ms": c.ts_ms},
                }
            )
            for c in conditions
            if c.active and c.level == 2
        ]
        _journal_and_publish(client, msg.topic.split("/")[2], events, journal)

    def on_bulk(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        readings = decoder.decode(msg.topic, bytes(msg.payload)).readings
        for start in range(0, len(readings), ENGINE_CHUNK):
            with lock:
                engine.on_readings(readings[start : start + ENGINE_CHUNK], clock.now_ms())

    try:
        bulk = subscriber(
            "naive-alarm-bulk", on_bulk, port, "hazard/v1/+/telemetry", user, nodelay=True
        )
    except OSError as exc:
        print(f"naive-alarm: no broker on 127.0.0.1:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        return serve("naive-alarm", on_probe, port, topic, user, nodelay=True)
    finally:
        bulk.loop_stop()
        bulk.disconnect()


def open_journal(path: Path) -> sqlite3.Connection:
    """The relay's journal: SQLite in WAL mode, every commit synced (``synchronous=FULL``)."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS journal "
        "(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, event BLOB NOT NULL)"
    )
    conn.isolation_level = "DEFERRED"  # ``with conn``: one transaction, committed at its end
    return conn


def start(
    port: int,
    topic: str,
    auth: tuple[str, str] | None,
    journal: Path | None = None,
    *,
    engine: bool = False,
) -> subprocess.Popen[str]:
    """The relay as a process of its own, subscribed (``ready`` read) when this returns; with
    ``journal``, committing its events there (synced) before publishing them; with ``engine``,
    deciding with the hub's rule engine, fed the telemetry topic too."""
    args = ["--mqtt-port", str(port), "--topic", topic]
    if journal is not None:
        args += ["--journal", str(journal)]
    if engine:
        args.append("--engine")
    return naive_baseline.start("bench.naive_alarm", args, auth)


def stop(proc: subprocess.Popen[str]) -> None:
    naive_baseline.stop(proc, 10)


if __name__ == "__main__":
    sys.exit(main())
