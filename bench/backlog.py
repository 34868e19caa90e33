"""A gas reading behind a gateway's backlog: its level-2 alarm after the hub restarts.

A gateway back from an outage empties its buffer: a backlog of process data. A broker delivers
one session's queue first in, first out, so a gas reading published on the enterprise's
``telemetry`` topic (as a gateway of contract v1.0 sends it) waits behind the whole backlog,
while on its ``critical`` topic (contract v1.1, read on persistent sessions of their own in a
child process of their own) it should arrive at once. This bench measures both, end to end.

Each case, with a private Mosquitto (anonymous, the test fixture's configuration) and a
private InfluxDB 1.x shared by all cases:

1. start a hub (``safety-hub run``: sample park, shipped rule packs, InfluxDB v1 sink into a
   fresh database, its own MQTT client id and data dir); publish a normal gas reading on both
   of e01-chloralkali's topics until ``safety_hub_readings_accepted_total`` moves (its
   sessions are subscribed); stop it. Its persistent broker sessions stay and queue;
2. while it is down, publish ``--readings`` readings of e01-chloralkali's process tags (the
   in-service tags that are neither gas detectors nor SIS), each stamped in the past, unique
   per tag (so InfluxDB stores exactly that many points and no rule fires), in messages of 100
   readings at QoS 1 on ``hazard/v1/e01-chloralkali/telemetry``; then one chlorine reading of
   GT-1101 at 4.8 ppm (8x its level-2 setpoint), stamped now, on the case's topic;
3. subscribe to ``hazard/v1/+/alarms`` and start the hub again on the same data dir and client
   id. Timed from the hub's process start: (a) the ToxicGasLevel2 ``raise`` event of GT-1101
   arriving, (b) the backlog accepted (``safety_hub_readings_accepted_total`` at backlog + 1,
   /metrics polled every 50 ms), (c) InfluxDB holding every backlog point (a count query).
   Also: the readings the hub had accepted when the alarm arrived (by the first /metrics
   sample asked for at or after its arrival: an upper bound, at most 50 ms late);
4. stop the hub and end its broker sessions (those of the critical topics too), so nothing
   leaks into the next case.

The cases take turns, ``--rounds`` times (every other round the other one first). Printed per
case: the alarm and the drain after the start, the readings accepted before the alarm, the
ratio alarm/drain, and the alarm after the first /metrics sample that counted a reading (the
hub's start-up taken out); at the end, per topic, the medians, and the ratio of the critical
case's alarm time to the telemetry case's (the baseline, measured in the same run). Exit code 1 when an alarm did not arrive within 60 s of
the start or not every backlog reading was stored.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.alarm_latency import CRITICAL_PREFIXES
from bench.ingest_e2e import clear_hub_sessions, influx_hub_env
from tests.fixtures.processes import InfluxDB1Process, MosquittoProcess
from tests.integration.hostile import Publisher, flood_qos1, now_ms, reading
from tests.integration.hubproc import HubProcess, metric_sum, wait_for

ENT = "e01-chloralkali"
TOPICS = ("critical", "telemetry")
PROBE_TAG = "GT-1101"  # Cl2, 0-10 ppm, level 2 at 0.6 ppm
PROBE_VALUE = 4.8
PROBE_ALERT = "ToxicGasLevel2"
WARMUP_TAG = "GT-1115"  # another Cl2 detector of e01, read at 0 ppm before the outage
BATCH = 100
STEP_MS = 1000  # a tag's readings one second apart in the backlog, as a gateway buffers them
ALARM_DEADLINE_S = 60.0
POLL_S = 0.05
STALL_S = 30.0
ACCEPTED = "safety_hub_readings_accepted_total"


def topic_of(kind: str) -> str:
    return f"hazard/v1/{ENT}/{kind}"


@dataclass
class CaseResult:
    topic: str
    round: int
    backlog: int
    publish_s: float
    """the flood of the backlog and the probe into the broker, until the last PUBACK"""
    ready_s: float
    """hub start to /readyz 200"""
    api_s: float | None
    """hub start to the first /metrics answer"""
    ingesting_s: float | None
    """hub start to the first /metrics sample with a reading accepted"""
    alarm_s: float | None
    """hub start to GT-1101's ToxicGasLevel2 raise event; None: none within 60 s"""
    drained_s: float | None
    """hub start to the answer of the first /metrics sample with
    safety_hub_readings_accepted_total >= backlog + 1"""
    stored_s: float | None
    """hub start to InfluxDB holding every backlog point"""
    accepted_at_alarm: float | None
    """readings accepted by the first /metrics sample asked for at or after the alarm's
    arrival: at least as many as the hub had accepted when the alarm arrived"""
    accepted_sample_lag_s: float | None
    """how long after the alarm's arrival that sample's answer came"""
    accepted: float
    stored: int
    alarm_over_drain: float | None
    alarm_after_ingest_s: float | None
    """alarm_s - ingesting_s: the alarm with the hub's start-up taken out (< 0: before the
    first sample that counted a reading)"""


# -- the backlog ---------------------------------------------------------------------------------


def process_tags() -> list[Any]:
    """e01-chloralkali's in-service tags that are neither gas detectors nor SIS (SimTags)."""
    from safety_hub.registry import default_plant_path, load_plant
    from simulators.park import sim_tags

    tags = sim_tags(load_plant(default_plant_path()))[ENT]
    return [t for t in tags if not t.kind.startswith(CRITICAL_PREFIXES)]


def backlog_payloads(readings: int, tags: list[Any]) -> list[bytes]:
    """``readings`` normal readings of ``tags`` in messages of :data:`BATCH`, every tag's
    readings :data:`STEP_MS` apart and all at least 10 minutes in the past: unique per tag,
    never late against one another, and the last well before any reading stamped now."""
    import random

    from simulators.gateway import normal_value

    rng = random.Random(16)
    cycles = -(-readings // len(tags))
    t0 = now_ms() - 600_000 - cycles * STEP_MS
    encode = msgspec.json.Encoder().encode
    payloads: list[bytes] = []
    pending: list[dict[str, Any]] = []
    for n in range(readings):
        tag = tags[n % len(tags)]
        ts = t0 + (n // len(tags)) * STEP_MS
        pending.append({"tag": tag.tag, "v": normal_value(tag, ts / 1000, rng), "ts": ts})
        if len(pending) == BATCH:
            payloads.append(encode({"readings": pending}))
            pending = []
    if pending:
        payloads.append(encode({"readings": pending}))
    return payloads


def outage_messages(payloads: list[bytes], probe_topic: str) -> Iterator[tuple[str, bytes]]:
    """The backlog on the telemetry topic, then the level-2 probe (stamped as it is sent)."""
    for payload in payloads:
        yield topic_of("telemetry"), payload
    yield probe_topic, reading(PROBE_TAG, PROBE_VALUE, now_ms())


# -- what the bench watches while the hub restarts -------------------------------------------------


class AlarmClock:
    """Subscribed to every enterprise's alarm events: when GT-1101's level-2 raise arrived."""

    def __init__(self, port: int) -> None:
        self.arrived: float | None = None
        self.event: dict[str, Any] | None = None
        self.seen = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self.on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda c, *args: c.subscribe("hazard/v1/+/alarms", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("could not subscribe to hazard/v1/+/alarms")

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = time.monotonic()
        event = json.loads(message.payload)
        alarm = event.get("alarm") or {}
        if (
            self.arrived is None
            and event.get("action") == "raise"
            and not event.get("recovered")
            and alarm.get("tag") == PROBE_TAG
            and alarm.get("alert") == PROBE_ALERT
        ):
            self.arrived, self.event = received, event
            self.seen.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Sample:
    asked: float
    """monotonic time the request was sent"""
    answered: float
    """monotonic time the answer was read"""
    accepted: float


class AcceptedPoller(threading.Thread):
    """``safety_hub_readings_accepted_total`` from the hub's /metrics every :data:`POLL_S`
    (nothing while the API is not up yet)."""

    def __init__(self, url: str) -> None:
        super().__init__(name="accepted-poller", daemon=True)
        self.url = url
        self.samples: list[Sample] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            due = time.monotonic()
            while not self.stop.is_set():
                asked = time.monotonic()
                try:
                    text = http.get(f"{self.url}/metrics").text
                except httpx.HTTPError:
                    text = None
                if text is not None:
                    value = metric_sum(text, ACCEPTED)
                    self.samples.append(Sample(asked, time.monotonic(), value))
                due = max(due + POLL_S, time.monotonic())
                self.stop.wait(due - time.monotonic())

    def latest(self) -> float:
        return self.samples[-1].accepted if self.samples else 0.0

    def first(self, at_least: float) -> Sample | None:
        """The first sample that counted ``at_least`` readings."""
        return next((s for s in self.samples if s.accepted >= at_least), None)

    def asked_after(self, when: float) -> Sample | None:
        """The first sample asked for at or after ``when``: it counts at least what the hub
        had accepted at ``when``."""
        return next((s for s in self.samples if s.asked >= when), None)


# -- one case ----------------------------------------------------------------------------------


def wait_ingesting(hub: HubProcess, pub: Publisher, kind: str) -> None:
    """Publish a normal gas reading on ``kind`` until the hub's accepted counter moves."""
    start = hub.metric(ACCEPTED)

    def moved() -> bool:
        pub.publish(topic_of(kind), reading(WARMUP_TAG, 0.0, now_ms()))
        return hub.metric(ACCEPTED) > start

    wait_for(moved, 30, f"the hub to ingest from {kind}\n{hub.log_tail(15)}", 0.5)


def backlog_where(tags: list[Any]) -> str:
    names = "|".join(re.escape(t.tag) for t in tags)
    return f'"enterprise" = \'{ENT}\' AND "tag" =~ /^({names})$/'


def progress(label: str, started: float, accepted: float, expected: int, stored: int) -> None:
    print(
        f"    {label}: {time.monotonic() - started:5.1f} s after start: accepted "
        f"{accepted:>9,.0f} / {expected:,}, stored {stored:>9,} / {expected - 1:,}",
        file=sys.stderr,
        flush=True,
    )


def watch_restart(
    hub: HubProcess,
    influx: InfluxDB1Process,
    db: str,
    where: str,
    backlog: int,
    alarms: AlarmClock,
    label: str,
) -> tuple[float, float, float | None, int, AcceptedPoller]:
    """Start the stopped hub and follow it until the alarm (or 60 s), the whole backlog
    accepted and stored (or no progress for 30 s). InfluxDB is asked for its count only once
    the hub has accepted the backlog (no point is stored before it is accepted), so that the
    count queries do not take CPU from the drain. Returns (start, ready, stored at, stored,
    the poller)."""
    poller = AcceptedPoller(hub.url)
    poller.start()
    started = time.monotonic()
    hub.start()
    ready = time.monotonic() - started
    stored, stored_at = 0, None
    moved = shown = time.monotonic()
    last = (0.0, 0)
    while True:
        now = time.monotonic()
        accepted = poller.latest()
        if stored < backlog <= accepted:
            stored = influx.count(db, "reading", where=where)
            if stored >= backlog:
                stored_at = time.monotonic()
        if (accepted, stored) != last:
            last, moved = (accepted, stored), now
        alarm_done = alarms.seen.is_set() or now - started > ALARM_DEADLINE_S
        drained = accepted >= backlog + 1 and stored >= backlog
        stalled = now - moved > STALL_S
        if now - shown >= 2.0 or (drained and alarm_done):
            progress(label, started, accepted, backlog + 1, stored)
            shown = now
        if alarm_done and (drained or stalled):
            break
        time.sleep(POLL_S)
    if stored < backlog:  # stalled: what InfluxDB holds after all
        stored = influx.count(db, "reading", where=where)
    poller.stop.set()
    poller.join(5)
    return started, ready, stored_at, stored, poller


def run_case(
    tmp: Path,
    broker: MosquittoProcess,
    influx: InfluxDB1Process,
    payloads: list[bytes],
    backlog: int,
    where: str,
    topic: str,
    rnd: int,
) -> CaseResult:
    name = f"{topic}-{rnd}-{uuid.uuid4().hex[:6]}"
    client_id = f"bench-backlog-{name}"
    db = "backlog_" + name.replace("-", "_")
    influx.create_database(db)
    env = influx_hub_env(broker.url, client_id, influx.url, db)
    hub = HubProcess(tmp / f"hub-{name}", env)
    label = f"{topic} #{rnd}"
    alarms: AlarmClock | None = None
    try:
        hub.start()
        pub = Publisher(broker.port)
        try:
            for kind in TOPICS:  # both sessions subscribed, whichever the case probes
                wait_ingesting(hub, pub, kind)
        finally:
            pub.close()
        time.sleep(1.0)  # the warm-up readings' acks reach the broker: none is delivered again
        hub.stop()
        print(f"    {label}: hub stopped; publishing the backlog", file=sys.stderr, flush=True)
        flooded = time.monotonic()
        flood_qos1(broker.port, outage_messages(payloads, topic_of(topic)))
        publish_s = time.monotonic() - flooded
        print(
            f"    {label}: {backlog:,} readings and the probe in the broker in {publish_s:.1f} s; "
            "restarting the hub",
            file=sys.stderr,
            flush=True,
        )
        alarms = AlarmClock(broker.port)
        started, ready, stored_at, stored, poller = watch_restart(
            hub, influx, db, where, backlog, alarms, label
        )
    finally:
        if alarms is not None:
            alarms.close()
        hub.stop()
        # the stopped hub's sessions (critical ones too) would queue the next case's backlog
        clear_hub_sessions(broker, client_id, enterprises())
        influx.drop_database(db)
    assert alarms is not None  # the try above ran to its end
    return case_result(
        topic, rnd, backlog, publish_s, ready, started, alarms, poller, stored_at, stored
    )


def case_result(
    topic: str,
    rnd: int,
    backlog: int,
    publish_s: float,
    ready: float,
    started: float,
    alarms: AlarmClock,
    poller: AcceptedPoller,
    stored_at: float | None,
    stored: int,
) -> CaseResult:
    alarm_s = None
    if alarms.arrived is not None and alarms.arrived - started <= ALARM_DEADLINE_S:
        alarm_s = alarms.arrived - started
    drained = poller.first(backlog + 1)
    drained_s = None if drained is None else drained.answered - started
    answered = poller.samples[0].answered if poller.samples else None
    ingesting = poller.first(1)
    ingesting_s = None if ingesting is None else ingesting.answered - started
    sample = None if alarms.arrived is None else poller.asked_after(alarms.arrived)
    return CaseResult(
        topic=topic,
        round=rnd,
        backlog=backlog,
        publish_s=round(publish_s, 3),
        ready_s=round(ready, 3),
        api_s=None if answered is None else round(answered - started, 3),
        ingesting_s=None if ingesting_s is None else round(ingesting_s, 3),
        alarm_s=None if alarm_s is None else round(alarm_s, 3),
        drained_s=None if drained_s is None else round(drained_s, 3),
        stored_s=None if stored_at is None else round(stored_at - started, 3),
        accepted_at_alarm=None if sample is None else sample.accepted,
        accepted_sample_lag_s=(
            None
            if sample is None or alarms.arrived is None
            else round(sample.answered - alarms.arrived, 3)
        ),
        accepted=poller.latest(),
        stored=stored,
        alarm_over_drain=(
            None if alarm_s is None or not drained_s else round(alarm_s / drained_s, 3)
        ),
        alarm_after_ingest_s=(
            None if alarm_s is None or ingesting_s is None else round(alarm_s - ingesting_s, 3)
        ),
    )


def enterprises() -> list[str]:
    from safety_hub.registry import default_plant_path, load_plant

    return sorted(load_plant(default_plant_path()).enterprises)


# -- the whole bench -------------------------------------------------------------------------------


def _s(v: float | None) -> str:
    return "    -  " if v is None else f"{v:6.2f} s"


def case_line(r: CaseResult) -> str:
    at_alarm = "-" if r.accepted_at_alarm is None else f"{r.accepted_at_alarm:,.0f}"
    ratio = "-" if r.alarm_over_drain is None else f"{r.alarm_over_drain:.2f}"
    return (
        f"  {r.topic:<9} #{r.round}: alarm {_s(r.alarm_s)}, backlog drained {_s(r.drained_s)}, "
        f"stored {_s(r.stored_s)} after start; accepted before the alarm {at_alarm} of "
        f"{r.backlog + 1:,}; alarm/drain {ratio} | ready {r.ready_s:.2f} s, ingesting "
        f"{_s(r.ingesting_s)}, alarm {_s(r.alarm_after_ingest_s)} after that"
    )


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarise(results: list[CaseResult]) -> dict[str, Any]:
    """Per topic the medians over its rounds; the critical case's alarm time over the
    telemetry case's (medians), when both ran."""
    per_topic: dict[str, dict[str, Any]] = {}
    for topic in TOPICS:
        runs = [r for r in results if r.topic == topic]
        if not runs:
            continue
        per_topic[topic] = {
            "rounds": len(runs),
            "alarm_s": _median([r.alarm_s for r in runs]),
            "drained_s": _median([r.drained_s for r in runs]),
            "stored_s": _median([r.stored_s for r in runs]),
            "accepted_at_alarm": _median([r.accepted_at_alarm for r in runs]),
            "alarm_over_drain": _median([r.alarm_over_drain for r in runs]),
            "alarm_after_ingest_s": _median([r.alarm_after_ingest_s for r in runs]),
        }
    ratio = None
    if {"critical", "telemetry"} <= per_topic.keys():
        crit, tele = per_topic["critical"]["alarm_s"], per_topic["telemetry"]["alarm_s"]
        ratio = None if crit is None or not tele else crit / tele
    return {"per_topic": per_topic, "critical_over_telemetry": ratio}


def print_summary(summary: dict[str, Any]) -> None:
    print("  median per topic:")
    for topic, m in summary["per_topic"].items():
        at_alarm = m["accepted_at_alarm"]
        ratio = m["alarm_over_drain"]
        print(
            f"  {topic:<9}: alarm {_s(m['alarm_s'])}, drained {_s(m['drained_s'])}, stored "
            f"{_s(m['stored_s'])} after start; accepted before the alarm "
            + ("-" if at_alarm is None else f"{at_alarm:,.0f}")
            + "; alarm/drain "
            + ("-" if ratio is None else f"{ratio:.2f}")
            + f"; alarm {_s(m['alarm_after_ingest_s'])} after the hub began to ingest"
            + f" ({m['rounds']} rounds)"
        )
    if summary["critical_over_telemetry"] is not None:
        print(
            "  alarm on critical / alarm on telemetry (the baseline): "
            f"{summary['critical_over_telemetry']:.2f}",
            flush=True,
        )


def run(
    readings: int = 300_000, rounds: int = 2, topics: tuple[str, ...] = TOPICS
) -> dict[str, Any]:
    """Every topic's case ``rounds`` times, taking turns; print the figures, return the report
    (see ``--json``)."""
    tags = process_tags()
    payloads = backlog_payloads(readings, tags)
    print(
        f"backlog: {readings:,} readings of {len(tags)} process tags of {ENT} ({len(payloads):,} "
        f"messages of up to {BATCH}, QoS 1) queued for a stopped hub, then a level-2 Cl2 reading "
        f"of {PROBE_TAG} on {' / '.join(topics)}; Mosquitto -> hub -> InfluxDB 1.x; "
        f"{rounds} round(s); load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-backlog-") as tmpdir:
        tmp = Path(tmpdir)
        with (
            MosquittoProcess(tmp / "broker") as broker,
            InfluxDB1Process(tmp / "influx") as influx,
        ):
            where = backlog_where(tags)
            for rnd in range(1, rounds + 1):
                # every other round the other case first: neither always runs first
                for topic in topics if rnd % 2 else topics[::-1]:
                    r = run_case(tmp, broker, influx, payloads, readings, where, topic, rnd)
                    results.append(r)
                    print(case_line(r), flush=True)
    summary = summarise(results)
    print_summary(summary)
    failures = [f"{r.topic} #{r.round}: no alarm within 60 s" for r in results if r.alarm_s is None]
    failures += [
        f"{r.topic} #{r.round}: stored {r.stored:,} of {readings:,} backlog readings"
        for r in results
        if r.stored != readings
    ]
    for failure in failures:
        print(f"  ERROR: {failure}", flush=True)
    return {
        "readings": readings,
        "batch": BATCH,
        "rounds": rounds,
        "topics": list(topics),
        "load_avg_1m": os.getloadavg()[0],
        "cases": [asdict(r) for r in results],
        **summary,
        "complete": not failures,
    }


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m bench.backlog",
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--readings",
        type=int,
        default=300_000,
        help="readings in the backlog (messages of 100; default 300,000)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each case, taking turns (default 2)"
    )
    parser.add_argument(
        "--topic",
        choices=("critical", "telemetry", "both"),
        default="both",
        help="where the level-2 reading is published: critical (contract v1.1, sessions of "
        "their own), telemetry (behind the backlog, as a v1.0 gateway sends it) or both, one "
        "case each (default)",
    )
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.readings < 1 or args.rounds < 1:
        parser.error("--readings and --rounds must be at least 1")
    topics = TOPICS if args.topic == "both" else (args.topic,)
    report = run(args.readings, args.rounds, topics)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
