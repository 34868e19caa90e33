"""The ingest cost of the hub's state in PostgreSQL against SQLite files, in the same run.

The setting of bench/ingest_e2e.py (its readings, publishers and timing, imported from it): a
private Mosquitto, a private InfluxDB 1.6 and a private PostgreSQL on free ports; the same
readings published at QoS 1 with ``mosquitto_pub -l``, timed until InfluxDB holds them all.
Contenders, alternating, ``--rounds`` runs each, best run reported:

* ``sqlite``: ``safety-hub run`` as shipped, the state in SQLite files in its data dir;
* ``postgresql``: the same with ``SAFETY_HUB_STATE_URL`` naming a fresh database of the
  private PostgreSQL (spool, journal, snapshot and outboxes there; every intake batch is one
  fenced-capable transaction with one COPY, committed before the messages are acknowledged).

Printed: readings/s, CPU µs per reading of the hub process tree, peak RSS, and the ratio
postgresql/sqlite. Exit code 0 whatever the figures; 1 when a run stored a wrong count.

With ``--alarm-probes N`` (0: skipped) it also measures the alarm latency of each state backend
as bench/alarm_latency.py does (publish a reading -> its alarm event over MQTT, N probes, the
park's other tags publishing ``--alarm-load`` readings/s), each probe also journaled, put in the
outbox and acknowledged and reset over the API; a plain MQTT round trip is the baseline.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.alarm_latency import ENT, PROBE_TAGS, measure, pct
from bench.ingest_e2e import (
    RunResult,
    clear_hub_sessions,
    cpu_seconds,
    generate,
    influx_hub_env,
    peak_rss_mib,
    publish_and_wait,
)
from tests.fixtures.postgres import PostgresProcess
from tests.fixtures.processes import InfluxDB1Process, MosquittoProcess
from tests.integration.hubproc import HubProcess

CONTENDERS = ("sqlite", "postgresql")
DB_CPU: dict[tuple[str, int], float] = {}  # (state, round) -> PostgreSQL CPU s per reading
SPOOL_BATCHES: dict[tuple[str, int], int] = {}  # (state, round) -> batches spooled in PostgreSQL


def spool_batches(url: str) -> int:
    """How many batches the hub ever appended to its spool in PostgreSQL (the id sequence:
    the sink deletes the rows it wrote). Exact, where the server's CPU, counted in clock ticks,
    can round a short run's share to 0."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT last_value, is_called FROM spool_batch_id_seq").fetchone()
    return int(row[0]) if row is not None and row[1] else 0


def run_hub(
    tmp: Path,
    broker: MosquittoProcess,
    influx: InfluxDB1Process,
    postgres: PostgresProcess,
    files: dict[str, Path],
    expected: int,
    state: str,
    rnd: int,
) -> RunResult:
    db = f"{state}_{rnd}"
    influx.create_database(db)
    client_id = f"bench-state-{rnd}-{uuid.uuid4().hex[:6]}"
    env = influx_hub_env(broker.url, client_id, influx.url, db)
    if state == "postgresql":
        env["SAFETY_HUB_STATE_URL"] = postgres.create_database()
    hub = HubProcess(tmp / f"hub-{state}-{rnd}", env)
    hub.start()
    assert postgres.pid is not None
    pg0 = cpu_seconds(postgres.pid)
    try:
        stored, seconds, cpu = publish_and_wait(
            broker, influx, db, files, expected, hub.pid, f"{state} #{rnd}"
        )
        rss = peak_rss_mib(hub.pid)
        # The database server's own CPU (its backends are alive until the hub stops): the
        # part of the cost the hub's process tree does not show. ~0 for the SQLite runs.
        DB_CPU[(state, rnd)] = (cpu_seconds(postgres.pid) - pg0) / max(stored, 1)
        url = env.get("SAFETY_HUB_STATE_URL")
        SPOOL_BATCHES[(state, rnd)] = spool_batches(url) if url else 0
    finally:
        hub.stop()
        clear_hub_sessions(broker, client_id, sorted(files))
        influx.drop_database(db)
    return RunResult(state, rnd, stored, seconds, stored / seconds, cpu / max(stored, 1), rss)


def park_load(port: int, rate: float, stop: Any) -> None:
    """The sample park's other tags at ``rate`` readings/s until ``stop`` is set (a process)."""
    from safety_hub.registry import default_plant_path, load_plant
    from simulators.park import ParkSimulator

    sim = ParkSimulator(load_plant(default_plant_path()), "127.0.0.1", port, rate=rate)
    sim.tags[ENT] = [t for t in sim.tags[ENT] if t.tag not in PROBE_TAGS]

    def stop_when_told() -> None:
        stop.wait()
        sim.stop()

    threading.Thread(target=stop_when_told, daemon=True).start()
    sim.run()


def alarm_latency(
    tmp: Path,
    broker: MosquittoProcess,
    postgres: PostgresProcess,
    state: str,
    probes: int,
    rate: float,
    settle_s: float = 3.0,
) -> dict[str, float] | None:
    """p50/p99 of the hub's alarm latency and of the plain MQTT round trip, in ms."""
    env = {
        "SAFETY_HUB_MQTT_URL": broker.url,
        "SAFETY_HUB_MQTT_CLIENT_ID": f"bench-latency-{uuid.uuid4().hex[:6]}",
        "SAFETY_HUB_LOG_LEVEL": "warning",
        "SAFETY_HUB_ACTION_RATE_PER_MIN": "60000",  # two operator actions per probe
        "SAFETY_HUB_ACTION_BURST": "1000",
    }
    if state == "postgresql":
        env["SAFETY_HUB_STATE_URL"] = postgres.create_database()
    hub = HubProcess(tmp / f"latency-{state}", env)
    hub.start()
    stop = multiprocessing.Event()
    load = multiprocessing.Process(target=park_load, args=(broker.port, rate, stop), daemon=True)
    load.start()
    try:
        time.sleep(settle_s)  # let the load settle
        baseline, latency = measure(broker.port, hub, probes)
    finally:
        stop.set()
        load.join(10)
        hub.stop()
    if len(latency) < probes:
        return None
    return {
        "p50_ms": pct(latency, 50),
        "p99_ms": pct(latency, 99),
        "baseline_p50_ms": pct(baseline, 50),
        "baseline_p99_ms": pct(baseline, 99),
    }


def _line(r: RunResult) -> str:
    return (
        f"  {r.contender:<10} #{r.round}: {r.stored:>9,} readings in {r.seconds:6.2f} s = "
        f"{r.rate:>9,.0f} readings/s  CPU hub {r.cpu_s_per_reading * 1e6:5.2f} + PostgreSQL "
        f"{DB_CPU[(r.contender, r.round)] * 1e6:5.2f} µs/reading  "
        f"peak RSS {r.peak_rss_mib:6.1f} MiB"
    )


def _total_cpu(r: RunResult) -> float:
    return r.cpu_s_per_reading + DB_CPU[(r.contender, r.round)]


def run(
    readings: int,
    batch: int,
    rounds: int,
    probes: int = 0,
    load: float = 1_000,
    settle_s: float = 3.0,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="state-ingest-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "msgs").mkdir()
        files = generate(readings, batch, tmp / "msgs")
        print(
            f"ingest with the state in SQLite vs PostgreSQL: {readings:,} readings in messages "
            f"of {batch}, QoS 1, best of {rounds}; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        results: list[RunResult] = []
        with (
            MosquittoProcess(tmp / "broker") as broker,
            InfluxDB1Process(tmp / "influx") as influx,
            PostgresProcess(tmp / "pg") as postgres,
        ):
            for rnd in range(1, rounds + 1):
                for state in CONTENDERS:
                    result = run_hub(tmp, broker, influx, postgres, files, readings, state, rnd)
                    results.append(result)
                    print(_line(result), flush=True)
            latencies: dict[str, dict[str, float] | None] = {}
            for state in CONTENDERS if probes else ():
                got = latencies[state] = alarm_latency(
                    tmp, broker, postgres, state, probes, load, settle_s
                )
                print(
                    f"  alarm latency {state:<10} ({probes} probes, load {load:,.0f}/s): "
                    + (
                        "incomplete: the hub fell behind"
                        if got is None
                        else f"p50 {got['p50_ms']:6.2f} ms p99 {got['p99_ms']:6.2f} ms | MQTT "
                        f"round trip p50 {got['baseline_p50_ms']:5.2f} ms "
                        f"p99 {got['baseline_p99_ms']:5.2f} ms"
                    ),
                    flush=True,
                )
    best = {
        name: max((r for r in results if r.contender == name), key=lambda r: r.rate)
        for name in CONTENDERS
    }
    ratio = best["postgresql"].rate / best["sqlite"].rate
    cpu_ratio = _total_cpu(best["postgresql"]) / _total_cpu(best["sqlite"])
    print(
        f"  best: sqlite {best['sqlite'].rate:,.0f} readings/s, postgresql "
        f"{best['postgresql'].rate:,.0f} readings/s, ratio postgresql/sqlite {ratio:.2f} "
        f"(CPU per reading, hub + PostgreSQL, x{cpu_ratio:.2f})",
        flush=True,
    )
    wrong = [r for r in results if r.stored != readings]
    for r in wrong:
        print(f"  ERROR: {r.contender} #{r.round} stored {r.stored:,} of {readings:,}", flush=True)
    return {
        "readings": readings,
        "batch": batch,
        "rounds": rounds,
        "runs": [
            {
                **asdict(r),
                "postgres_cpu_s_per_reading": DB_CPU[(r.contender, r.round)],
                "postgres_spool_batches": SPOOL_BATCHES[(r.contender, r.round)],
            }
            for r in results
        ],
        "best": {name: asdict(r) for name, r in best.items()},
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "alarm_latency": latencies,
        "complete": not wrong and None not in latencies.values(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.state_ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--readings", type=int, default=200_000, help="readings per run")
    parser.add_argument("--batch", type=int, default=100, help="readings per message")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each contender")
    parser.add_argument(
        "--alarm-probes", type=int, default=0, help="alarm latency probes per backend (0: skip)"
    )
    parser.add_argument(
        "--alarm-load", type=float, default=1_000, help="readings/s of load while probing"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds of load before the alarm latency probes (default 3)",
    )
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    report = run(
        args.readings,
        args.batch,
        args.rounds,
        args.alarm_probes,
        args.alarm_load,
        args.settle,
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
