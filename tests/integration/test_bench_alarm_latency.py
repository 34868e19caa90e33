"""Smoke test of bench/alarm_latency.py: every probed gas detector's level-2 alarm is matched
(and so is the naive relay's event for it, bench/naive_alarm.py), under both load shapes, with InfluxDB (the sink as a thread and as a process, the MQTT sessions
as threads, the broker with the ACL of `safety-hub broker`) and with the embedded store (the
MQTT sessions in child processes, an anonymous broker); the report is whole. Its figures are
not asserted (no timing assertions); its counts are."""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.processes import MosquittoProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
PROBES = 6


def _bench(tmp_path: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.alarm_latency", "--rates", "1000", *args),
            *("--probes", str(PROBES), "--gap", "0.05", "--json", str(report_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cases: list[dict[str, Any]] = json.loads(report_path.read_text())
    return cases, done.stdout


def _module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # InfluxDB storage, the sink as a thread and in its own process, the MQTT sessions as
        # threads of the hub; the broker with the ACL of `safety-hub broker` (the default)
        (
            ("--shapes", "burst", "--sink", "both", "--mqtt", "thread", "--naive", "journal"),
            [
                (1000, "burst", "influx", "thread", "thread", "acl", 1),
                (1000, "burst", "influx", "process", "thread", "acl", 1),
            ],
        ),
        # the embedded store of make demo, the hub's defaults (MQTT sessions in child
        # processes), an anonymous broker; two rounds
        (
            (
                *("--shapes", "spread", "--storage", "embedded", "--broker", "open"),
                *("--rounds", "2", "--no-naive"),
            ),
            [
                (1000, "spread", "embedded", "default", "default", "open", 1),
                (1000, "spread", "embedded", "default", "default", "open", 2),
            ],
        ),
    ],
)
def test_every_probe_gets_its_level_2_alarm(
    tmp_path: Path, args: tuple[str, ...], expected: list[tuple[Any, ...]]
) -> None:
    cases, out = _bench(tmp_path, *args)
    if "--rounds" in args:  # the summary over the rounds pools every probe
        assert "pooled p99" in out and f"({2 * PROBES} probes)" in out, out
        # beside it the broker's own round trips of both rounds, pooled (one every 2nd probe)
        trips = sum(len(c["baseline_ms"]) for c in cases)
        assert "broker round trip p99 " in out and f"({trips})" in out, out
    # the naive relay (bench/naive_alarm.py) answers every probe too, unless left out; with
    # --naive journal it is the relay that commits each event to its journal first
    relay = "off" if "--no-naive" in args else "journal" if "journal" in args else "plain"
    naive = 0 if relay == "off" else PROBES
    assert [(len(c["naive_ms"]), c["naive"]) for c in cases] == [(naive, relay)] * len(cases)
    assert ("naive relay p50" in out) is (relay == "plain"), out
    assert ("naive relay with journal p50" in out) is (relay == "journal"), out
    keys = ("rate", "shape", "storage", "sink", "mqtt", "broker", "round")
    assert [tuple(c[k] for k in keys) for c in cases] == expected
    for case in cases:
        assert case["probes"] == case["answered"] == PROBES
        assert case["p50_ms"] is not None and case["p50_ms"] <= case["p99_ms"] <= case["max_ms"]
        assert case["offered_per_s"] > 0 and case["ingested_per_s"] > 0
        assert case["baseline_p50_ms"] is not None
        assert len(case["baseline_ms"]) == PROBES // 2  # a round trip between two probes
        # each hub answer split at the hub's decision: both parts of every probe, neither
        # negative beyond the whole-ms rounding of the hub's timestamp
        assert len(case["to_decision_ms"]) == len(case["after_decision_ms"]) == PROBES
        assert all(v >= -1 for v in case["to_decision_ms"] + case["after_decision_ms"])
        assert all(
            d + a <= total + 2
            for d, a, total in zip(
                case["to_decision_ms"], case["after_decision_ms"], case["latencies_ms"], strict=True
            )
        )
        # the hub's own histogram of its way out counted at least the probes' level-2 events
        assert case["way_out_events"] >= PROBES
        assert 0 <= case["way_out_within_5ms"] <= case["way_out_within_10ms"] <= 1


def test_help_describes_the_probes_and_runs_nothing() -> None:
    done = _module("bench.alarm_latency", "--help")
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "gas detectors" in done.stdout
    assert "--storage" in done.stdout and "--sink" in done.stdout
    assert "--no-naive" in done.stdout and "naive_alarm" in done.stdout
    assert "--naive {plain,journal,engine,off}" in done.stdout


@pytest.mark.parametrize("engine", [False, True], ids=["setpoint", "engine"])
def test_the_relay_journals_each_event_before_it_publishes_it(
    tmp_path: Path, mosquitto: MosquittoProcess, engine: bool
) -> None:
    """bench/naive_alarm.py --journal against a real broker: a detector past level 2 gets its
    event, and the event is in the relay's SQLite journal (synced WAL) by then; with --engine
    the hub's rule engine decides (level 2 only: its level-1 raise is not published)."""
    from bench import naive_alarm

    (enterprise, tag), (alert, level2) = next(iter(naive_alarm.level2_setpoints().items()))
    journal = tmp_path / "relay.db"
    relay = naive_alarm.start(mosquitto.port, "critical", None, journal, engine=engine)
    got: queue.Queue[bytes] = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.put(bytes(m.payload))
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe(naive_alarm.TOPIC_PREFIX + "+", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        now = time.time_ns() // 1_000_000
        below = {"readings": [{"tag": tag, "v": 0.0, "ts": now - 1}]}
        past = {"readings": [{"tag": tag, "v": level2 * 1.1, "ts": now}]}
        for body in (below, past):
            client.publish(f"hazard/v1/{enterprise}/critical", json.dumps(body), qos=1)
        event = json.loads(got.get(timeout=10))
        assert event["alarm"] == {"tag": tag, "alert": alert, "event_ts_ms": now}
        rows = sqlite3.connect(journal).execute("SELECT event FROM journal").fetchall()
        assert [json.loads(r[0]) for r in rows] == [event]
        assert sqlite3.connect(journal).execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with pytest.raises(queue.Empty):  # one event only: no level 1, nothing for "below"
            got.get(timeout=0.5)
    finally:
        client.loop_stop()
        client.disconnect()
        naive_alarm.stop(relay)


def test_the_relay_without_a_broker_says_so_in_a_line() -> None:
    done = _module("bench.naive_alarm", "--mqtt-port", str(free_port()))
    assert done.returncode == 1
    assert done.stderr.startswith("naive-alarm: no broker on 127.0.0.1:"), done.stderr
    assert "Traceback" not in done.stderr


def test_a_sink_process_without_influxdb_is_refused() -> None:
    done = _module("bench.alarm_latency", "--storage", "embedded", "--sink", "both")
    assert done.returncode == 2
    assert "--sink process needs --storage influx" in done.stderr
