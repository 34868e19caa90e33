"""The naive pipeline bench/ingest_e2e.py measures the hub against: MQTT in, InfluxDB out.

What a user could write in an afternoon instead of running the hub: a bare paho subscriber
to ``hazard/v1/+/telemetry`` (QoS 1, clean session) that decodes each message with msgspec,
turns every reading into one line of line protocol (``reading,enterprise=<e>,tag=<t>
value=<v> <ts>``) and posts them to InfluxDB 1.x ``/write`` in batches from a second thread.
Nothing durable (a message is acknowledged as soon as it is decoded), no registry, no rules.

Run as its own process: ``python -m bench.naive_baseline --mqtt-port P --influx-url U --db D``.
It prints ``ready`` once subscribed and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

BATCH_LINES = 5000
ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})  # tag values, line protocol
FLUSH_S = 0.05


class Reading(msgspec.Struct):
    tag: str
    v: float
    ts: int | None = None


class Message(msgspec.Struct):
    readings: list[Reading]
    ts: int | None = None


def _writer(url: str, db: str, lines: queue.SimpleQueue[bytes | None]) -> None:
    """Post what arrives in batches of up to BATCH_LINES lines (or every FLUSH_S seconds)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        params = {"db": db, "precision": "ms"}
        done = False
        while not done:
            batch: list[bytes] = []
            count = 0
            deadline = time.monotonic() + FLUSH_S
            while count < BATCH_LINES:
                try:
                    chunk = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if chunk is None:
                    done = True
                    break
                batch.append(chunk)
                count += chunk.count(b"\n")
            if not batch:
                continue
            body = b"".join(batch)
            while True:  # a naive retry: try again until InfluxDB takes it
                try:
                    response = http.post("/write", params=params, content=body)
                    if response.status_code == 204:
                        break
                    print(f"write: {response.status_code} {response.text[:300]}", file=sys.stderr)
                    if response.status_code < 500:
                        break  # InfluxDB refused (part of) it: retrying would not help
                except httpx.HTTPError as exc:
                    print(f"write: {exc!r}", file=sys.stderr)
                time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.naive_baseline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument("--influx-url", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument(
        "--mqtt-user", help="broker user (its password in NAIVE_MQTT_PASSWORD); default: none"
    )
    args = parser.parse_args(argv)

    decoder = msgspec.json.Decoder(Message)
    lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    writer = threading.Thread(target=_writer, args=(args.influx_url, args.db, lines), daemon=True)
    writer.start()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        enterprise = msg.topic.split("/")[2]
        try:
            message = decoder.decode(msg.payload)
        except msgspec.DecodeError:
            return
        now = int(time.time() * 1000)
        prefix = f"reading,enterprise={enterprise.translate(ESCAPES)},tag="
        default_ts = message.ts if message.ts is not None else now
        out = [
            f"{prefix}{r.tag.translate(ESCAPES)} value={float(r.v)!r} {r.ts if r.ts is not None else default_ts}\n"
            for r in message.readings
        ]
        lines.put("".join(out).encode())

    status = serve(
        "naive-baseline", on_message, args.mqtt_port, "hazard/v1/+/telemetry", args.mqtt_user
    )
    lines.put(None)
    writer.join(30)
    return status


def set_nodelay(_client: mqtt.Client, _userdata: object, sock: object) -> None:
    """paho's ``on_socket_open``: TCP_NODELAY on the client's socket (paho never sets it, and
    Nagle's algorithm holds small packets back for tens of ms)."""
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def subscriber(
    name: str,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None],
    port: int,
    topic: str,
    user: str | None,
    *,
    nodelay: bool = False,
    subscribed: threading.Event | None = None,
) -> mqtt.Client:
    """A naive program's MQTT 5 session (clean, a client id of its own) subscribing to ``topic``
    at QoS 1 once connected (``subscribed`` set when the broker granted it), its network thread
    started; OSError when no broker answers."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{name}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    if subscribed is not None:
        client.on_subscribe = lambda *a: subscribed.set()
    if nodelay:
        client.on_socket_open = set_nodelay
        client.max_inflight_messages_set(1000)
    if user:
        client.username_pw_set(user, os.environ.get("NAIVE_MQTT_PASSWORD", ""))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def serve(
    name: str,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None],
    port: int,
    topic: str,
    user: str | None,
    *,
    nodelay: bool = False,
) -> int:
    """Run a naive program's subscriber: MQTT 5, clean session, ``topic`` at QoS 1 (the user's
    password in ``NAIVE_MQTT_PASSWORD``); print ``ready`` once subscribed and return at SIGTERM
    or SIGINT (0), or 1 (a line on stderr) when no broker answers or it is not subscribed
    within 10 s."""
    subscribed = threading.Event()
    try:
        client = subscriber(
            name, on_message, port, topic, user, nodelay=nodelay, subscribed=subscribed
        )
    except OSError as exc:
        print(f"{name}: no broker on 127.0.0.1:{port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    if not subscribed.wait(10):
        print("not subscribed after 10 s", file=sys.stderr)
        return 1
    print("ready", flush=True)
    stop.wait()
    client.loop_stop()
    client.disconnect()
    return 0


def start(module: str, args: list[str], auth: tuple[str, str] | None) -> subprocess.Popen[str]:
    """A naive program (``python -m <module> <args>``) as a process of its own, as ``auth``'s
    user if given; subscribed (its ``ready`` read) when this returns."""
    cmd = [sys.executable, "-m", module, *args]
    env = dict(os.environ)
    if auth is not None:
        cmd += ["--mqtt-user", auth[0]]
        env["NAIVE_MQTT_PASSWORD"] = auth[1]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{module} did not start (exit {proc.wait(10)})")
    return proc


def stop(proc: subprocess.Popen[str], timeout: float = 30) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
