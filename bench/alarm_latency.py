"""Alarm latency under load: a gas detector's reading published over MQTT -> its alarm event.

Probes as an operator would meet it: ``--probes`` different gas detectors (toxic and combustible,
the first 100 of the sample park by default), each driven past its level-2 setpoint once, ``--gap``
s apart on average (each shifted within its gap, so that the probes meet the load's second at every
phase, a burst's first milliseconds included), published with paho over TCP_NODELAY at QoS 1; each
probe is timed from its publish until the ``raise`` event of its
``ToxicGasLevel2``/``CombustibleGasLevel2`` alarm arrives on ``hazard/v1/{enterprise}/alarms``.
Meanwhile a load process publishes the park's process tags (every in-service tag that is neither a
gas detector nor SIS) in messages of 100 readings at QoS 1, at each ``--rates`` value, in each
``--shapes``: ``burst`` (a second's messages all at the start of the second, as interval-reporting
gateways send) or ``spread`` (evenly over the second). Every case runs its own hub (``safety-hub
run``: sample park, shipped rule packs) against one private Mosquitto and, with ``--storage influx``
(the default, the production storage), one private InfluxDB 1.x; ``--storage embedded`` is the local
SQLite store ``make demo`` uses. ``--sink`` runs the hub's sink (spool -> storage) as a ``thread``
of the hub, as a ``process`` of its own (``SAFETY_HUB_SINK_PROCESS``; InfluxDB only) or ``both``,
one case each; by default the hub's own default. ``--mqtt`` likewise runs the hub's receiving MQTT
sessions as ``thread``s of the hub or in child ``process``es (``SAFETY_HUB_MQTT_PROCESS``).
``--broker acl`` (the default) runs Mosquitto as docker-compose deploys it: the passwd and ACL of
``safety-hub broker`` (each enterprise's load published with its own credentials, the hub's
catch-all session as its own user, fenced off the registered enterprises' topics); ``open`` an
anonymous broker with no ACL; ``both`` one case each. ``--topic critical`` (the default) publishes
the probes on their enterprise's ``critical`` topic, as contract v1.1 asks gateways to send gas
and SIS readings (the hub reads it on sessions of their own); ``telemetry`` beside the process
data, as a v1.0 gateway sends them; ``both`` one case each. Everything shares the machine.

Printed per case: the probes' p50/p99/max, the load offered and what the hub ingested meanwhile,
the readings still queued in the hub at the end, and, as baselines in the same run: the same
probes answered by bench/naive_alarm.py (a bare relay beside the hub: decode, compare with the
level-2 setpoint, publish an event; no rules; ``--naive journal`` has it commit each event to a
synced SQLite journal first, as the hub does; ``--naive engine`` also decides with the hub's
rule engine, fed the process data too; ``--naive off`` leaves it out), and a
plain MQTT round trip through the same broker under the same load. ``--json`` writes the report.
``--quick`` is one rate (20,000/s), both shapes, 30 probes. ``measure`` (one Cl2 detector probed
again and again, acknowledged and reset over the API) is what bench/fairness.py uses.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import naive_alarm
from bench.ingest_e2e import BrokerAccess, acl_broker, clear_hub_sessions
from bench.naive_baseline import set_nodelay
from tests.fixtures.processes import InfluxDB1Process, MosquittoProcess
from tests.integration.hubproc import HubProcess, metric_sum, wait_for

ENT = "e01-chloralkali"
PROBE_TAGS = ["GT-1101", "GT-1104", "GT-1107"]


def _client(port: int, topic: str) -> tuple[mqtt.Client, queue.Queue[tuple[float, bytes]]]:
    got: queue.Queue[tuple[float, bytes]] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: got.put((time.perf_counter(), bytes(m.payload)))
    c.on_subscribe = lambda *a: ready.put(1)
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.on_socket_open = set_nodelay
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.get(timeout=10)
    return c, got


def pct(values: Sequence[float], p: float) -> float:
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

        def cleared(aid: str = str(alarm_id)) -> bool:
            return not api.get(f"/api/v1/alarms/{aid}").json()["active"]

        try:
            wait_for(cleared, 30, "clear")
        except AssertionError:
            print(f"    probe {i}: the return to normal was not processed within 30 s")
            break
        api.post(f"/api/v1/alarms/{alarm_id}/reset", json={}).raise_for_status()
    for c in (raw_client, alarm_client):
        c.loop_stop()
        c.disconnect()
    return baseline, latency


GAS_LEVEL2 = {"toxic_gas": "ToxicGasLevel2", "combustible_gas": "CombustibleGasLevel2"}
CRITICAL_PREFIXES = ("toxic_gas", "combustible_gas", "open_path_gas", "oxygen", "sis_")


@dataclass(frozen=True)
class Probe:
    enterprise: str
    tag: str
    alert: str
    value: float


@dataclass
class CaseResult:
    rate: float
    shape: str
    storage: str
    sink: str
    mqtt: str
    broker: str
    probes: int
    answered: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    offered_per_s: float
    ingested_per_s: float
    queued_at_end: float
    baseline_p50_ms: float | None
    baseline_p99_ms: float | None
    latencies_ms: list[float]
    round: int = 1
    # the plain QoS 1 round trips through the broker measured between the probes
    baseline_ms: list[float] = field(default_factory=list)
    # the hub's own figure for its way out (safety_hub_alarm_event_delay_seconds: from an
    # event's outbox commit to the broker's PUBACK), every alarm event of the case: how many,
    # and the share within 5 and 10 ms
    way_out_events: int = 0
    way_out_within_5ms: float | None = None
    way_out_within_10ms: float | None = None
    # where the probes were published: the enterprise's ``critical`` topic (contract v1.1, read
    # on sessions of their own) or its ``telemetry`` topic, beside the process data
    topic: str = "critical"
    # the same probes' latencies through bench/naive_alarm.py, a bare relay beside the hub
    # (empty when it did not run): the floor, "the speed of the broker" for an alarm
    naive_ms: list[float] = field(default_factory=list)
    # which relay that was: ``plain`` (nothing durable), ``journal`` (each event committed to a
    # synced SQLite journal before it is published), ``engine`` (the journal, and the hub's
    # rule engine deciding, fed the telemetry topic too), ``off`` (none ran)
    naive: str = "plain"
    # each hub answer split at the hub's decision (the transition's ts_ms, wall clock, whole
    # ms): from the probe's publish to it (broker, receiving child, pipe, queue, decode and
    # rules) and from it to the event's arrival (journal, outbox, broker): where the time went
    to_decision_ms: list[int] = field(default_factory=list)
    after_decision_ms: list[float] = field(default_factory=list)


def _enterprises() -> list[str]:
    from safety_hub.registry import default_plant_path, load_plant

    return sorted(load_plant(default_plant_path()).enterprises)


def probe_detectors(count: int) -> list[Probe]:
    """``count`` gas detectors of the sample park, alternating enterprises, with a value
    between each one's level-2 setpoint and its range top."""
    from safety_hub.registry import default_plant_path, load_plant

    plant = load_plant(default_plant_path())
    by_ent: dict[str, list[Probe]] = {}
    for t in sorted(plant.tags.values(), key=lambda t: (t.enterprise, t.tag)):
        if t.kind in GAS_LEVEL2 and t.in_service:
            l2 = dict(t.setpoints)["l2"]
            value = round(l2 + (t.range_hi - l2) * 0.5, 3)
            by_ent.setdefault(t.enterprise, []).append(
                Probe(t.enterprise, t.tag, GAS_LEVEL2[t.kind], value)
            )
    out: list[Probe] = []
    while len(out) < count and any(by_ent.values()):
        for probes in by_ent.values():
            if probes and len(out) < count:
                out.append(probes.pop(0))
    if len(out) < count:
        raise SystemExit(f"the sample park has only {len(out)} gas detectors with a level 2")
    return out


def _process_load(
    port: int,
    rate: float,
    shape: str,
    stop: Any,
    sent: Any,
    batch: int = 100,
    auth: dict[str, tuple[str, str]] | None = None,
) -> None:
    """Publish the park's process tags at ``rate`` readings/s until ``stop`` is set."""
    import random

    import msgspec

    from safety_hub.registry import default_plant_path, load_plant
    from simulators.gateway import normal_value
    from simulators.park import sim_tags

    tags = {
        code: [t for t in ts if not t.kind.startswith(CRITICAL_PREFIXES)]
        for code, ts in sim_tags(load_plant(default_plant_path())).items()
    }
    tags = {code: ts for code, ts in tags.items() if ts}
    clients = {}
    for code in tags:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-load-{code}", protocol=mqtt.MQTTv5
        )
        c.on_socket_open = set_nodelay
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        if auth and code in auth:
            c.username_pw_set(*auth[code])  # the enterprise's own credentials
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients[code] = c
    rng = random.Random(16)
    codes = list(tags)
    last_ts = dict.fromkeys(codes, 0)
    encode = msgspec.json.encode
    per_second = max(1, round(rate / batch))
    slot = 1.0 / per_second
    wall_minus_mono = time.time() - time.monotonic()
    i = 0

    def build(planned_ms: int) -> tuple[str, bytes]:
        nonlocal i
        code = codes[i % len(codes)]
        i += 1
        ts_tags = tags[code]
        base = max(planned_ms, last_ts[code] + 1)
        readings = []
        for k in range(batch):
            t = ts_tags[k % len(ts_tags)]
            ts = base + k // len(ts_tags)  # a tag twice in one message: 1 ms later
            readings.append({"tag": t.tag, "v": normal_value(t, ts / 1000, rng), "ts": ts})
        last_ts[code] = base + (batch - 1) // len(ts_tags)
        return code, encode({"readings": readings})

    def plan(second: float) -> list[tuple[str, bytes]]:
        # A second's messages are built before it starts, stamped with the time they are due:
        # the park's gateways are other machines, and building 20,000 readings here takes tens
        # of ms of CPU that would otherwise fall inside the burst the hub is measured in.
        start_ms = int((second + wall_minus_mono) * 1000)
        if shape == "burst":
            return [build(start_ms) for _ in range(per_second)]
        return [build(start_ms + int(n * slot * 1000)) for n in range(per_second)]

    def send(code: str, payload: bytes) -> None:
        clients[code].publish(f"hazard/v1/{code}/telemetry", payload, qos=1)
        sent.value += batch

    next_second = time.monotonic()
    planned = plan(next_second)
    while not stop.is_set():
        if shape == "burst":
            pause = next_second - time.monotonic()
            if pause > 0 and stop.wait(pause):
                break
            for code, payload in planned:
                send(code, payload)
        else:
            for n, (code, payload) in enumerate(planned):
                pause = next_second + n * slot - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                send(code, payload)
        next_second += 1.0
        planned = plan(next_second)
        pause = next_second - time.monotonic()
        if shape != "burst" and pause > 0:
            stop.wait(pause)
    for c in clients.values():
        c.loop_stop()
        c.disconnect()


def _probe_client(
    port: int, auth: tuple[str, str] | None = None
) -> tuple[mqtt.Client, queue.Queue[tuple[float, str, bytes]]]:
    got: queue.Queue[tuple[float, str, bytes]] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if auth is not None:
        c.username_pw_set(*auth)
    c.on_message = lambda cl, u, m: got.put((time.perf_counter(), m.topic, bytes(m.payload)))
    c.on_subscribe = lambda *a: ready.put(1)
    c.on_connect = lambda cl, *a: cl.subscribe(
        [("hazard/v1/+/alarms", 1), ("bench/echo", 1), (naive_alarm.TOPIC_PREFIX + "+", 1)]
    )
    c.on_socket_open = set_nodelay
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.get(timeout=10)
    return c, got


PHI_FRACTION = 0.6180339887498949  # the golden ratio's fractional part


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """This process's garbage collector off while it times probes (collected once before).
    A full collection here took 30-50 ms (a ``gc.callbacks`` probe, 2026-12-01): it stalls
    the thread that stamps each event's arrival, so it lengthened the hub's latencies and the
    relay's alike. The probe window allocates little; the collector is on again after it."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def operator_probes(
    port: int,
    probes: list[Probe],
    gap_s: float,
    auth: tuple[str, str] | None = None,
    topic: str = "critical",
    relay: bool = False,
) -> tuple[list[float], list[float], list[float], list[tuple[int, float]]]:
    """Each detector past level 2 once, ``gap_s`` apart on average, at phases spread over the
    load's second, published on its enterprise's ``topic`` (``critical`` or ``telemetry``);
    (the hub's alarm latencies, echo round trips, the naive relay's alarm latencies) ms (the
    last empty unless ``relay``: bench/naive_alarm.py runs beside the hub), and for each of the
    hub's answers the ms from the probe's publish to the hub's decision (the transition's
    ``ts_ms``; whole ms, wall clock) and from the decision to the event's arrival."""
    client, got = _probe_client(port, auth)
    sent_at: dict[tuple[str, int], float] = {}
    naive_sent_at: dict[tuple[str, int], float] = {}
    echo_sent: dict[bytes, float] = {}
    latency: list[float] = []
    echo: list[float] = []
    naive: list[float] = []
    split: list[tuple[int, float]] = []  # per hub answer: (to its decision, after it) ms
    wanted = {(p.tag, p.alert) for p in probes}
    wall_minus_perf = time.time() - time.perf_counter()

    def drain(timeout: float) -> None:
        try:
            received, where, payload = got.get(timeout=timeout)
        except queue.Empty:
            return
        if payload in echo_sent:
            echo.append((received - echo_sent.pop(payload)) * 1000)
            return
        event = json.loads(payload)
        alarm = event.get("alarm", {})
        key = (alarm.get("tag"), alarm.get("event_ts_ms"))
        if event.get("action") == "raise" and (alarm.get("tag"), alarm.get("alert")) in wanted:
            is_naive = where.startswith(naive_alarm.TOPIC_PREFIX)
            started = (naive_sent_at if is_naive else sent_at).pop(key, None)
            if started is not None:
                (naive if is_naive else latency).append((received - started) * 1000)
                if not is_naive:  # the transition's time is the hub's decision, in wall ms
                    decided = event["ts_ms"]
                    after = (received + wall_minus_perf) * 1000 - decided
                    split.append((decided - alarm["event_ts_ms"], after))

    start = time.monotonic()
    for n, p in enumerate(probes):
        # ``gap_s`` apart on average, each shifted by a fraction of the gap that the golden
        # ratio spreads evenly: probes at a fixed ``gap_s`` would all meet the once-a-second
        # burst at the same phase, so a run's p99 would depend on the phase it happened to
        # start at. This way every run probes the whole second, the burst's start included.
        when = start + (n + (n * PHI_FRACTION) % 1.0) * gap_s
        while (pause := when - time.monotonic()) > 0:
            drain(pause)
        ts = time.time_ns() // 1_000_000
        body = json.dumps({"readings": [{"tag": p.tag, "v": p.value, "ts": ts}]}).encode()
        sent_at[(p.tag, ts)] = time.perf_counter()
        if relay:
            naive_sent_at[(p.tag, ts)] = sent_at[(p.tag, ts)]
        client.publish(f"hazard/v1/{p.enterprise}/{topic}", body, qos=1)
        if n % 2:  # the baseline: a plain round trip through the broker, between probes
            token = f"echo-{n}".encode()
            echo_sent[token] = time.perf_counter()
            client.publish("bench/echo", token, qos=1)
    deadline = time.monotonic() + 30
    while (sent_at or naive_sent_at) and time.monotonic() < deadline:
        drain(0.2)
    for tag, _ in sent_at:
        print(f"    no level-2 alarm for {tag} within 30 s")
    for tag, _ in naive_sent_at:
        print(f"    no event of the naive relay for {tag} within 30 s")
    client.loop_stop()
    client.disconnect()
    return latency, echo, naive, split


def run_case(
    tmp: Path,
    broker: MosquittoProcess,
    rate: float,
    shape: str,
    probes: list[Probe],
    gap_s: float,
    influx: InfluxDB1Process | None = None,
    sink: str = "default",
    mqtt: str = "default",
    access: BrokerAccess | None = None,
    broker_name: str = "open",
    topic: str = "critical",
    relay: str = "plain",
) -> CaseResult:
    name = f"{int(rate)}-{shape}-{sink}-{mqtt}-{broker_name}-{topic}-{uuid.uuid4().hex[:6]}"
    client_id = f"bench-hub-{name}"
    access = access or BrokerAccess()
    env = {
        **access.hub_env(broker),
        "SAFETY_HUB_MQTT_CLIENT_ID": client_id,
        "SAFETY_HUB_LOG_LEVEL": "warning",
    }
    if influx is not None:
        db = "bench_" + name.replace("-", "_")
        influx.create_database(db)
        env.update(
            SAFETY_HUB_INFLUX_URL=influx.url,
            SAFETY_HUB_INFLUX_API="v1",
            SAFETY_HUB_INFLUX_BUCKET=db,
        )
    if sink != "default":
        env["SAFETY_HUB_SINK_PROCESS"] = "on" if sink == "process" else "off"
    if mqtt != "default":
        env["SAFETY_HUB_MQTT_PROCESS"] = "on" if mqtt == "process" else "off"
    hub = HubProcess(tmp / f"hub-{name}", env)
    hub.start()
    stop = multiprocessing.Event()
    sent = multiprocessing.Value("q", 0)
    load = multiprocessing.Process(
        target=_process_load,
        args=(broker.port, rate, shape, stop, sent, 100, access.enterprises),
        daemon=True,
    )
    journal = tmp / f"naive-journal-{name}.db" if relay in ("journal", "engine") else None
    naive = (
        None
        if relay == "off"
        else naive_alarm.start(broker.port, topic, access.bench, journal, engine=relay == "engine")
    )
    try:
        load.start()
        time.sleep(3)  # let the load settle
        before, sent0, started = (
            hub.metric("safety_hub_readings_accepted_total"),
            sent.value,
            time.monotonic(),
        )
        with collector_paused():
            latency, echo, naive_ms, split = operator_probes(
                broker.port, probes, gap_s, access.bench, topic, naive is not None
            )
        elapsed = time.monotonic() - started
        ingested = (
            hub.metric("safety_hub_readings_accepted_total") - before - len(latency)
        ) / elapsed
        offered = (sent.value - sent0) / elapsed
        queued = hub.metric("safety_hub_ingest_queued_messages")
        way_out = _way_out(hub.metrics_text())
    finally:
        stop.set()
        load.join(10)
        if naive is not None:
            naive_alarm.stop(naive)
        hub.stop()
        # A stopped hub's persistent sessions would go on queueing the next cases' load.
        clear_hub_sessions(broker, client_id, _enterprises(), access.hub)
    return CaseResult(
        rate,
        shape,
        "embedded" if influx is None else "influx",
        sink,
        mqtt,
        broker_name,
        len(probes),
        len(latency),
        pct(latency, 50) if latency else None,
        pct(latency, 99) if latency else None,
        max(latency) if latency else None,
        offered,
        ingested,
        queued,
        pct(echo, 50) if echo else None,
        pct(echo, 99) if echo else None,
        [round(v, 2) for v in latency],
        baseline_ms=[round(v, 2) for v in echo],
        way_out_events=way_out[0],
        way_out_within_5ms=way_out[1],
        way_out_within_10ms=way_out[2],
        topic=topic,
        naive_ms=[round(v, 2) for v in naive_ms],
        naive=relay,
        to_decision_ms=[d for d, _ in split],
        after_decision_ms=[round(a, 2) for _, a in split],
    )


def _way_out(exposition: str) -> tuple[int, float | None, float | None]:
    """(events, share within 5 ms, share within 10 ms) of the hub's alarm-event delay
    histogram (the whole case, the load's settling included)."""
    name = "safety_hub_alarm_event_delay_seconds"
    total = metric_sum(exposition, f"{name}_count")
    if not total:
        return 0, None, None
    within = [metric_sum(exposition, f'{name}_bucket{{le="{le}"}}') for le in ("0.005", "0.01")]
    return int(total), within[0] / total, within[1] / total


def _relay_name(relay: str) -> str:
    extra = {"journal": " with journal", "engine": " with engine and journal"}
    return "naive relay" + extra.get(relay, "")


def _naive(latencies: list[float], relay: str) -> str:
    """The naive relay's figures for the same probes, as the case line shows them."""
    if relay == "off":
        return ""
    if not latencies:
        return f"{_relay_name(relay)}: no event | "
    return (
        f"{_relay_name(relay)} p50 {_ms(pct(latencies, 50))} ms p99 "
        f"{_ms(pct(latencies, 99))} ms "
        f"({len(latencies)}) | "
    )


def _split(r: CaseResult) -> str:
    """The hub's answers split at its decision, as the case line shows them."""
    if not r.to_decision_ms:
        return ""
    return (
        f"hub to its decision p99 {pct(r.to_decision_ms, 99):.0f} ms, decision to the probe "
        f"p99 {pct(r.after_decision_ms, 99):.1f} ms | "
    )


def _share(share: float | None, events: int) -> str:
    return "-" if share is None else f"{share:.1%} of {events} events"


def _ms(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.1f}"


def run(
    rates: tuple[float, ...] = (1_000, 20_000, 100_000),
    shapes: tuple[str, ...] = ("burst", "spread"),
    probes: int = 100,
    gap_s: float = 0.1,
    storage: str = "influx",
    sinks: tuple[str, ...] = ("default",),
    mqtts: tuple[str, ...] = ("default",),
    brokers: tuple[str, ...] = ("acl",),
    rounds: int = 1,
    topics: tuple[str, ...] = ("critical",),
    relay: str = "plain",
) -> list[CaseResult]:
    """Every case (rate x shape x sink x mqtt x broker x probe topic) ``rounds`` times, the cases taking turns
    within each round; with more than one round a summary per case follows: the median of its
    rounds' p50 and p99, and the p99 of all its probes pooled."""
    chosen = probe_detectors(probes)
    results: list[CaseResult] = []
    print(
        f"alarm latency: {probes} gas detectors past level 2, {gap_s} s apart, under process-tag "
        f"load (messages of 100, QoS 1), {storage} storage; load average "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="alarm-latency-")))
        access: dict[str, tuple[MosquittoProcess, BrokerAccess]] = {}
        for kind in brokers:
            if kind == "acl":
                made, creds = acl_broker(tmp, name="broker-acl")
            else:
                made, creds = MosquittoProcess(tmp / "broker-open"), BrokerAccess()
            access[kind] = (stack.enter_context(made), creds)
        influx = None
        if storage == "influx":
            influx = stack.enter_context(InfluxDB1Process(tmp / "influx"))
        cases = list(itertools.product(rates, shapes, sinks, mqtts, brokers, topics))
        for rnd, case in itertools.product(range(1, rounds + 1), cases):
            rate, shape, sink, mqtt, kind, topic = case
            broker, creds = access[kind]
            r = run_case(
                tmp,
                broker,
                rate,
                shape,
                chosen,
                gap_s,
                influx,
                sink,
                mqtt,
                creds,
                kind,
                topic,
                relay,
            )
            r.round = rnd
            results.append(r)
            label = _label(r, len(brokers) > 1, len(topics) > 1)
            label += "" if rounds == 1 else f" #{rnd}"
            print(
                f"  load {rate:>9,.0f}/s {shape:<6}{label} (offered {r.offered_per_s:>9,.0f}/s, "
                f"hub ingested {r.ingested_per_s:>9,.0f}/s, queued at end "
                f"{r.queued_at_end:,.0f} msgs): {r.answered}/{r.probes} alarms, p50 "
                f"{_ms(r.p50_ms)} ms p99 {_ms(r.p99_ms)} ms max {_ms(r.max_ms)} ms | "
                + _naive(r.naive_ms, relay)
                + _split(r)
                + f"MQTT round trip p50 {_ms(r.baseline_p50_ms)} ms p99 "
                f"{_ms(r.baseline_p99_ms)} ms | hub's way out (commit to PUBACK) within 10 ms: "
                + _share(r.way_out_within_10ms, r.way_out_events),
                flush=True,
            )
    if rounds > 1:
        print_summary(results, len(brokers) > 1, len(topics) > 1)
    return results


def _label(r: CaseResult, brokers: bool, topics: bool = False) -> str:
    label = "" if r.sink == "default" else f" sink {r.sink:<7}"
    label += "" if r.mqtt == "default" else f" mqtt {r.mqtt:<7}"
    label += f" broker {r.broker:<4}" if brokers else ""
    return label + (f" probes on {r.topic:<9}" if topics else "")


def print_summary(results: list[CaseResult], brokers: bool, topics: bool = False) -> None:
    """Per case over its rounds: the median of the rounds' p50 and p99 (and their range), the
    p99 of all its probes pooled, steadier than any one round's, and beside it the p99 of the
    plain broker round trips pooled the same way (what "at the speed of the broker" is)."""
    print(
        "  over the rounds (median of the rounds' p50 / p99 [their range]; pooled p99; "
        "the broker's own round trip, pooled p99):"
    )
    by_case: dict[tuple[Any, ...], list[CaseResult]] = {}
    for r in results:
        by_case.setdefault((r.rate, r.shape, r.sink, r.mqtt, r.broker, r.topic), []).append(r)
    for runs in by_case.values():
        # a round's p50 and p99 are both set, or both None when no probe was answered
        p50s = [r.p50_ms for r in runs if r.p50_ms is not None]
        p99s = [r.p99_ms for r in runs if r.p99_ms is not None]
        pooled = [v for r in runs for v in r.latencies_ms]
        trips = [v for r in runs for v in r.baseline_ms]
        naive = [v for r in runs for v in r.naive_ms]
        head = f"  load {runs[0].rate:>9,.0f}/s {runs[0].shape:<6}"
        head += _label(runs[0], brokers, topics)
        if not p99s:
            print(f"{head}: no alarm answered in any round")
            continue
        print(
            f"{head}: p50 {statistics.median(p50s):6.1f} ms, p99 "
            f"{statistics.median(p99s):6.1f} ms [{min(p99s):.1f}-{max(p99s):.1f}] over "
            f"{len(p99s)} rounds; pooled p99 {pct(pooled, 99):6.1f} ms "
            f"({len(pooled)} probes); {_relay_name(runs[0].naive)} pooled p50 / p99 "
            + (f"{pct(naive, 50):.1f} / {pct(naive, 99):.1f} ms; " if naive else "-; ")
            + "broker round trip p99 "
            + (f"{pct(trips, 99):.1f} ms ({len(trips)})" if trips else "-"),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.alarm_latency",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rates", default="1000,20000,100000", help="background readings/s, comma-separated"
    )
    parser.add_argument(
        "--shapes", default="burst,spread", help="burst, spread, both, or a comma list"
    )
    parser.add_argument("--probes", type=int, default=100, help="gas detectors probed per case")
    parser.add_argument(
        "--gap",
        type=float,
        default=0.1,
        help="mean seconds between probes (each is shifted within its gap)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="20,000 readings/s only, both shapes, 30 probes"
    )
    parser.add_argument(
        "--storage",
        choices=("influx", "embedded"),
        default="influx",
        help="where the hub stores readings: a private InfluxDB 1.x (default) or the embedded "
        "SQLite store of make demo",
    )
    parser.add_argument(
        "--sink",
        choices=("default", "thread", "process", "both"),
        default="default",
        help="the hub's sink in its own process or as a thread (both: one case each); "
        "default: the hub's default",
    )
    parser.add_argument(
        "--mqtt",
        choices=("default", "thread", "process", "both"),
        default="default",
        help="the hub's receiving MQTT sessions in child processes or as threads of the hub "
        "(SAFETY_HUB_MQTT_PROCESS; both: one case each); default: the hub's default",
    )
    parser.add_argument(
        "--broker",
        choices=("acl", "open", "both"),
        default="acl",
        help="acl (default): Mosquitto with the passwd and ACL of `safety-hub broker`, as "
        "docker-compose runs it (each enterprise's load with its own credentials, the hub's "
        "catch-all as its own fenced user); open: anonymous, no ACL; both: one case each",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every case this many times, the cases taking turns, then summarise each "
        "(median p99 over the rounds, pooled p99); one round's p99 moves by 10 ms and more",
    )
    parser.add_argument(
        "--topic",
        choices=("critical", "telemetry", "both"),
        default="critical",
        help="where the probes are published: critical (default), the enterprise's topic for "
        "gas and SIS readings (contract v1.1, read on sessions of their own); telemetry, "
        "beside the process data, as gateways of contract v1.0 send them; both: one case each",
    )
    parser.add_argument(
        "--naive",
        choices=("plain", "journal", "engine", "off"),
        default="plain",
        help="the relay (bench/naive_alarm.py) that answers the same probes beside the hub: "
        "plain (default; no journal, no rules: the floor for this broker and load), journal "
        "(each event committed to a synced SQLite journal before it is published, as the hub "
        "does: the floor for a light alarm process of its own), engine (the journal, and "
        "the hub's rule engine deciding, fed every reading of the telemetry topic too: the "
        "floor for an alarm process that runs the whole engine), off",
    )
    parser.add_argument("--no-naive", action="store_true", help="the same as --naive off")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    brokers = ("acl", "open") if args.broker == "both" else (args.broker,)
    mqtts = ("thread", "process") if args.mqtt == "both" else (args.mqtt,)
    sinks = ("thread", "process") if args.sink == "both" else (args.sink,)
    if args.storage == "embedded" and "process" in sinks:
        parser.error("--sink process needs --storage influx (the hub runs it only for InfluxDB)")
    rates = tuple(float(r) for r in args.rates.split(","))
    shapes = tuple(s.strip() for s in args.shapes.replace("both", "burst,spread").split(","))
    if any(s not in ("burst", "spread") for s in shapes):
        parser.error("--shapes takes burst, spread, both, or a comma list of them")
    probes = args.probes
    if args.quick:
        rates, probes = (20_000.0,), 30
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    topics = ("critical", "telemetry") if args.topic == "both" else (args.topic,)
    results = run(
        rates,
        shapes,
        probes,
        args.gap,
        args.storage,
        sinks,
        mqtts,
        brokers,
        args.rounds,
        topics,
        "off" if args.no_naive else args.naive,
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.answered == r.probes for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
