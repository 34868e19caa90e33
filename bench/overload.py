"""Overload: publishers offer twice what the hub sustains; memory stays bounded, nothing is lost.

A private Mosquitto (the test fixture's configuration, ``sys_interval 1``) and a private
InfluxDB 1.6, as in bench/ingest_e2e.py. First the hub's sustained rate is measured: a fresh
hub takes ``--measure`` readings published as fast as ``mosquitto_pub -l`` sends them (the
ingest_e2e method), readings/s until InfluxDB holds them all (or ``--sustained`` gives it).
Then a fresh hub gets ``--factor`` (2) times that rate for ``--seconds`` (60): one
``mosquitto_pub -l`` per enterprise, fed its messages on a schedule by this process.

Sampled once a second: the hub's RSS (VmRSS of its process tree), its in-flight QoS 1
messages and their bound (``safety_hub_mqtt_in_flight_messages`` / ``_limit``), its intake
lanes (``safety_hub_ingest_queued_messages``) and held messages, its spool, the readings
written, and the broker's stored messages (``$SYS/broker/store/messages/count``): the
backlog the Receive Maximum leaves with the broker. Printed: the peak RSS over the first and
the second half of the overload and over the drain after it (bounded: the second half is not
higher than the first by more than the noise), the peaks of the rest, how far the publishers
fell behind their schedule, and the time until InfluxDB holds exactly every reading.

Two cases (``--case``): the hub's spool as configured by default, where the backlog the sink
has not written yet waits in the spool on disk; and a spool of 200,000 readings, which fills,
so that the hub holds messages unacknowledged and the backlog waits in the broker.

Exit code 0 when every reading is stored exactly once and the hub never had more messages in
flight than its bound; 1 otherwise. The figures themselves decide nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest_e2e import (
    clear_hub_sessions,
    generate,
    influx_hub_env,
    process_tree,
    publish_and_wait,
)
from tests.fixtures.processes import InfluxDB1Process, MosquittoProcess, find_binary
from tests.integration.hubproc import HubProcess, metric_sum

SAMPLE_S = 1.0
DRAIN_STALL_S = 120.0  # give up when InfluxDB's count has not moved for this long


@dataclass
class Sample:
    t: float  # seconds since the publishers started
    rss_mib: float
    in_flight: float
    in_flight_limit: float
    lanes: float
    held: float
    spool_readings: float
    written: float
    broker_stored: int | None


@dataclass
class Schedule:
    """How far the publishers fell behind their schedule (a blocked pipe to mosquitto_pub)."""

    max_lag_s: float = 0.0
    lines: int = 0
    errors: list[str] = field(default_factory=list)


def rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` and its descendants, in MiB."""
    kib = 0
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        kib += sum(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:"))
    return kib / 1024


class BrokerStore:
    """The broker's ``$SYS/broker/store/messages/count`` (needs ``sys_interval``)."""

    def __init__(self, broker: MosquittoProcess) -> None:
        self.count: int | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-sys-{uuid.uuid4().hex[:6]}"
        )
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe("$SYS/broker/store/messages/count")
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.payload.isdigit():
            self.count = int(msg.payload)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _feed(stdin: IO[bytes], path: Path, rate: float, t0: float, sched: Schedule) -> None:
    """Write ``path``'s lines to ``stdin`` at ``rate`` lines/s from ``t0``; note the lag."""
    try:
        with path.open("rb") as lines:
            for k, line in enumerate(lines):
                due = t0 + k / rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                else:
                    sched.max_lag_s = max(sched.max_lag_s, now - due)
                stdin.write(line)
                stdin.flush()
                sched.lines += 1
    except OSError as exc:
        sched.errors.append(f"{path.name}: {exc}")
    finally:
        stdin.close()


def start_paced(
    broker: MosquittoProcess, files: dict[str, Path], seconds: float
) -> tuple[list[subprocess.Popen[bytes]], list[threading.Thread], Schedule]:
    """One ``mosquitto_pub -l`` per enterprise, each fed its file evenly over ``seconds``."""
    pub = find_binary("mosquitto_pub", "/usr/bin/mosquitto_pub")
    sched = Schedule()
    procs, threads = [], []
    t0 = time.monotonic() + 0.5
    for enterprise, path in files.items():
        lines = sum(1 for _ in path.open("rb"))
        cmd = [pub, "-h", broker.host, "-p", str(broker.port), "-V", "5", "-q", "1"]
        cmd += ["-t", f"hazard/v1/{enterprise}/telemetry", "-l"]
        cmd += ["-i", f"bench-over-{enterprise}-{uuid.uuid4().hex[:6]}"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        assert proc.stdin is not None
        thread = threading.Thread(
            target=_feed, args=(proc.stdin, path, lines / seconds, t0, sched), daemon=True
        )
        procs.append(proc)
        threads.append(thread)
    for thread in threads:
        thread.start()
    return procs, threads, sched


def sample(hub: HubProcess, store: BrokerStore, t: float) -> Sample:
    text = hub.metrics_text()
    return Sample(
        t=round(t, 1),
        rss_mib=round(rss_mib(hub.pid), 1),
        in_flight=metric_sum(text, "safety_hub_mqtt_in_flight_messages"),
        in_flight_limit=metric_sum(text, "safety_hub_mqtt_in_flight_limit"),
        lanes=metric_sum(text, "safety_hub_ingest_queued_messages"),
        held=metric_sum(text, "safety_hub_ingest_held_messages"),
        spool_readings=metric_sum(text, "safety_hub_spool_readings"),
        written=metric_sum(text, "safety_hub_sink_readings_written_total"),
        broker_stored=store.count,
    )


def start_hub(
    tmp: Path, broker: MosquittoProcess, influx: InfluxDB1Process, db: str, env: Mapping[str, str]
) -> tuple[HubProcess, str]:
    influx.create_database(db)
    client_id = f"bench-over-{db}-{uuid.uuid4().hex[:6]}"
    hub = HubProcess(
        tmp / db,
        {
            **influx_hub_env(broker.url, client_id, influx.url, db),
            **env,
        },
    )
    hub.start()
    return hub, client_id


def measure_sustained(
    tmp: Path, broker: MosquittoProcess, influx: InfluxDB1Process, readings: int, batch: int
) -> float:
    """readings/s of a fresh hub taking ``readings`` as fast as they come (ingest_e2e's way)."""
    (tmp / "measure").mkdir()
    files = generate(readings, batch, tmp / "measure")
    hub, client_id = start_hub(tmp, broker, influx, "sustained", {})
    try:
        stored, seconds, _ = publish_and_wait(
            broker, influx, "sustained", files, readings, hub.pid, "sustained"
        )
    finally:
        hub.stop()
        clear_hub_sessions(broker, client_id, sorted(files))
        influx.drop_database("sustained")
    if stored != readings:
        raise RuntimeError(f"measuring the sustained rate: stored {stored:,} of {readings:,}")
    return stored / seconds


def overload_run(
    tmp: Path,
    broker: MosquittoProcess,
    influx: InfluxDB1Process,
    files: dict[str, Path],
    expected: int,
    seconds: float,
    env: Mapping[str, str],
    db: str = "overload",
) -> dict[str, Any]:
    """One overload run; returns its samples, schedule and final counts."""
    hub, client_id = start_hub(tmp, broker, influx, db, env)
    store = BrokerStore(broker)
    samples: list[Sample] = []
    try:
        procs, threads, sched = start_paced(broker, files, seconds)
        started = time.monotonic()
        fed_at: float | None = None
        last_written, moved = -1.0, started
        while True:
            now = time.monotonic()
            s = sample(hub, store, now - started)
            samples.append(s)
            if fed_at is None and not any(t.is_alive() for t in threads):
                fed_at = now - started
            if s.written != last_written:
                last_written, moved = s.written, now
            if int(s.t) % 5 == 0:
                print(
                    f"    {s.t:6.1f} s  rss {s.rss_mib:6.1f} MiB  in flight {s.in_flight:5.0f}"
                    f"/{s.in_flight_limit:.0f}  lanes {s.lanes:5.0f}  broker stored "
                    f"{s.broker_stored}  written {s.written:,.0f}",
                    file=sys.stderr,
                    flush=True,
                )
            if fed_at is not None and s.written >= expected:
                break
            if now - moved > DRAIN_STALL_S:
                break
            time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - now)))
        for proc in procs:
            proc.wait(60)
        # the sink's counter also counts the hub's own points: the exact count is InfluxDB's
        stored, moved = -1, time.monotonic()
        while True:
            count = influx.count(db, "reading")
            if count != stored:
                stored, moved = count, time.monotonic()
            if stored >= expected or time.monotonic() - moved > 30:
                break
            time.sleep(1.0)
        done_s = time.monotonic() - started
    finally:
        store.close()
        hub.stop()
        clear_hub_sessions(broker, client_id, sorted(files))
        influx.drop_database(db)
    return {
        "samples": [asdict(s) for s in samples],
        "fed_s": fed_at,
        "stored": stored,
        "done_s": done_s,
        "publisher_max_lag_s": sched.max_lag_s,
        "publisher_errors": sched.errors,
    }


def _peak(samples: list[dict[str, Any]], key: str, lo: float, hi: float) -> float:
    values = [s[key] for s in samples if lo <= s["t"] < hi and s[key] is not None]
    return max(values, default=0.0)


def summarise(run: dict[str, Any], seconds: float, expected: int) -> dict[str, Any]:
    samples = run["samples"]
    end = float("inf")
    out = {
        "rss_peak_first_half_mib": _peak(samples, "rss_mib", 0, seconds / 2),
        "rss_peak_second_half_mib": _peak(samples, "rss_mib", seconds / 2, seconds),
        "rss_peak_drain_mib": _peak(samples, "rss_mib", seconds, end),
        "in_flight_peak": _peak(samples, "in_flight", 0, end),
        "in_flight_limit": _peak(samples, "in_flight_limit", 0, end),
        "lanes_peak": _peak(samples, "lanes", 0, end),
        "held_peak": _peak(samples, "held", 0, end),
        "spool_peak_readings": _peak(samples, "spool_readings", 0, end),
        "broker_stored_peak": _peak(samples, "broker_stored", 0, end),
        "broker_stored_at_half": _peak(samples, "broker_stored", seconds / 2 - 1, seconds / 2 + 1),
        "stored": run["stored"],
        "expected": expected,
        "complete": run["stored"] == expected,
        "done_s": run["done_s"],
        "fed_s": run["fed_s"],
        "publisher_max_lag_s": run["publisher_max_lag_s"],
    }
    out["bounded_in_flight"] = out["in_flight_peak"] <= out["in_flight_limit"]
    return out


CASES = {
    "spool": {},
    "small-spool": {"SAFETY_HUB_SPOOL_MAX_READINGS": "200000"},
}
"""The backlog goes to the hub's spool on disk (its default bound, 20,000,000 readings), or,
with a spool of 200,000 readings that fills, stays with the broker: the hub holds what the
spool cannot take unacknowledged, and the Receive Maximum stops the broker sending more."""


def run(
    seconds: float = 60.0,
    factor: float = 2.0,
    measure: int = 300_000,
    sustained: float | None = None,
    batch: int = 100,
    cases: tuple[str, ...] = tuple(CASES),
) -> dict[str, Any]:
    """Run the bench, print the figures, return the report (see ``--json``)."""
    report: dict[str, Any] = {"seconds": seconds, "load_avg_1m": os.getloadavg()[0], "cases": {}}
    with tempfile.TemporaryDirectory(prefix="overload-") as tmpdir:
        tmp = Path(tmpdir)
        with (
            MosquittoProcess(tmp / "broker", extra_config="sys_interval 1") as broker,
            InfluxDB1Process(tmp / "influx") as influx,
        ):
            print(f"overload: load {os.getloadavg()[0]:.2f}", flush=True)
            if sustained is None:
                sustained = measure_sustained(tmp, broker, influx, measure, batch)
                print(f"  sustained: {sustained:,.0f} readings/s ({measure:,} readings)")
            offered = factor * sustained
            expected = int(offered * seconds)
            (tmp / "msgs").mkdir()
            files = generate(expected, batch, tmp / "msgs")
            print(
                f"  offering {offered:,.0f} readings/s ({factor:g} x sustained) for {seconds:g} s:"
                f" {expected:,} readings in messages of {batch}, QoS 1, {len(files)} publishers",
                flush=True,
            )
            for case in cases:
                print(f"  case {case}: {CASES[case] or 'default settings'}", flush=True)
                db = "overload_" + case.replace("-", "_")
                result = overload_run(
                    tmp, broker, influx, files, expected, seconds, CASES[case], db
                )
                summary = summarise(result, seconds, expected)
                _print(summary)
                report["cases"][case] = summary | {"samples": result["samples"]}
    report |= {"sustained": sustained, "offered": offered, "expected": expected}
    report["complete"] = all(c["complete"] for c in report["cases"].values())
    report["bounded_in_flight"] = all(c["bounded_in_flight"] for c in report["cases"].values())
    return report


def _print(r: dict[str, Any]) -> None:
    print(
        f"  hub peak RSS: first half {r['rss_peak_first_half_mib']:.1f} MiB, second half "
        f"{r['rss_peak_second_half_mib']:.1f} MiB, drain {r['rss_peak_drain_mib']:.1f} MiB\n"
        f"  in flight peak {r['in_flight_peak']:.0f} of limit {r['in_flight_limit']:.0f}; "
        f"intake lanes peak {r['lanes_peak']:.0f}, held peak {r['held_peak']:.0f}, spool peak "
        f"{r['spool_peak_readings']:,.0f} readings\n"
        f"  broker stored messages: {r['broker_stored_at_half']:,.0f} at half time, peak "
        f"{r['broker_stored_peak']:,.0f}; publishers at most {r['publisher_max_lag_s']:.2f} s "
        f"behind schedule, all fed after {r['fed_s'] or 0:.1f} s\n"
        f"  stored {r['stored']:,} of {r['expected']:,} "
        f"({'exact' if r['complete'] else 'MISSING'}) after {r['done_s']:.1f} s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.overload", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the overload")
    parser.add_argument("--factor", type=float, default=2.0, help="offered / sustained rate")
    parser.add_argument(
        "--measure", type=int, default=300_000, help="readings to measure the sustained rate on"
    )
    parser.add_argument("--sustained", type=float, help="take this as the sustained rate")
    parser.add_argument("--batch", type=int, default=100, help="readings per message")
    parser.add_argument(
        "--case", action="append", choices=sorted(CASES), help="run only this case (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    cases = tuple(args.case or CASES)
    report = run(args.seconds, args.factor, args.measure, args.sustained, args.batch, cases)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["complete"] and report["bounded_in_flight"] else 1


if __name__ == "__main__":
    sys.exit(main())
