"""Cost grows with readings, not with the plant: the hub on parks of 336 to 50,000 tags.

For each size: the sample park (5 enterprises, 336 tags), a park of the seed document's size
(``safety-hub plant generate --preset seed``: 28 enterprises, 1,100 tags) and a province
(``--preset province``: 500 enterprises, 50,000 tags). Measured for each:

* start-up: loading and validating the registry and compiling the shipped rule packs (timed in
  this process), and the hub's own start (``safety-hub run`` as a process) until ``/readyz``
  answers 200; the hub's RSS once ready;
* ingest: ``--readings`` N (default 200,000) normal readings spread over all the park's tags
  in messages of 100 (MQTT contract v1), published at QoS 1 by one paho client in this
  process, enterprise after enterprise round-robin, into a private Mosquitto; the hub stores
  them in a private InfluxDB 1.6. CPU seconds of the hub per reading (utime+stime from /proc
  from the first publish until InfluxDB holds all N), readings/s, peak RSS (VmHWM). At the
  default N the province's tags get 4 readings each: the state each tag sets up at its first
  reading is in the figure (the engine alone: 5.4 µs per reading there, 4.1 at 336 tags).

The same N at every size: a cost that grows with the plant (per-batch work over all tags,
snapshots, statistics) shows as more CPU per reading on the larger parks. Exit code 1 when a
run stored fewer or more readings than were published.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest_e2e import (
    clear_hub_sessions,
    cpu_seconds,
    generate,
    influx_hub_env,
    peak_rss_mib,
)
from bench.overload import rss_mib
from tests.fixtures.processes import InfluxDB1Process, MosquittoProcess
from tests.integration.hubproc import HubProcess

SIZES = ("sample", "seed", "province")
STALL_S = 120.0


@dataclass
class SizeResult:
    size: str
    enterprises: int
    tags: int
    registry_load_s: float
    rules_compile_s: float
    hub_ready_s: float
    rss_ready_mib: float
    stored: int
    seconds: float
    rate: float
    cpu_us_per_reading: float
    peak_rss_mib: float


def plant_for(size: str, tmp: Path) -> Path:
    from safety_hub.registry import default_plant_path
    from simulators.plantgen import PRESETS, write

    if size == "sample":
        return default_plant_path()
    return write(PRESETS[size], tmp / f"plant-{size}")


def publish_all(broker: MosquittoProcess, files: dict[str, Path]) -> threading.Thread:
    """Publish every file's messages at QoS 1 from one paho client, round-robin over the
    enterprises, in a thread; the thread ends when the broker acknowledged them all."""

    def run() -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-size-pub-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        window = threading.BoundedSemaphore(1000)  # messages handed to paho, not yet acked
        client.on_publish = lambda *args: window.release()
        client.connect(broker.host, broker.port)
        client.loop_start()
        handles = {e: path.open("rb") for e, path in files.items()}
        last = None
        try:
            while handles:
                for enterprise, handle in list(handles.items()):
                    line = handle.readline()
                    if not line:
                        handle.close()
                        del handles[enterprise]
                        continue
                    topic = f"hazard/v1/{enterprise}/telemetry"
                    window.acquire()
                    last = client.publish(topic, line.rstrip(b"\n"), qos=1)
            if last is not None:
                last.wait_for_publish(120)
        finally:
            client.disconnect()
            client.loop_stop()

    thread = threading.Thread(target=run, name="publisher", daemon=True)
    thread.start()
    return thread


def one_size(
    size: str, tmp: Path, broker: MosquittoProcess, influx: InfluxDB1Process, readings: int
) -> SizeResult:
    from safety_hub.registry import load_plant
    from safety_hub.rules import default_rules_path, load_rules

    path = plant_for(size, tmp)
    t0 = time.monotonic()
    plant = load_plant(path)
    t1 = time.monotonic()
    load_rules(default_rules_path(), plant)
    t2 = time.monotonic()
    (tmp / f"msgs-{size}").mkdir()
    files = generate(readings, 100, tmp / f"msgs-{size}", plant=path)
    db = f"size_{size}"
    influx.create_database(db)
    client_id = f"bench-size-{size}-{uuid.uuid4().hex[:6]}"
    hub = HubProcess(
        tmp / f"hub-{size}",
        {
            "SAFETY_HUB_PLANT": str(path),
            **influx_hub_env(broker.url, client_id, influx.url, db),
        },
    )
    started = time.monotonic()
    hub.start(timeout=600)
    ready_s = time.monotonic() - started
    time.sleep(2.0)
    rss_ready = rss_mib(hub.pid)
    try:
        cpu0 = cpu_seconds(hub.pid)
        begin = time.monotonic()
        publisher = publish_all(broker, files)
        stored, moved, shown = 0, begin, begin
        while True:
            count = influx.count(db, "reading")
            now = time.monotonic()
            cpu1 = cpu_seconds(hub.pid)
            if count != stored:
                stored, moved = count, now
            if stored >= readings or now - moved > STALL_S:
                break
            if now - shown > 5:
                print(f"    {size}: {stored:,} / {readings:,} stored", file=sys.stderr, flush=True)
                shown = now
            time.sleep(0.2)
        seconds = now - begin
        publisher.join(60)
        peak = peak_rss_mib(hub.pid)
    finally:
        hub.stop()
        clear_hub_sessions(broker, client_id, sorted(plant.enterprises))
        influx.drop_database(db)
    return SizeResult(
        size=size,
        enterprises=len(plant.enterprises),
        tags=len(plant.tags),
        registry_load_s=round(t1 - t0, 3),
        rules_compile_s=round(t2 - t1, 3),
        hub_ready_s=round(ready_s, 2),
        rss_ready_mib=rss_ready,
        stored=stored,
        seconds=round(seconds, 2),
        rate=stored / seconds,
        cpu_us_per_reading=(cpu1 - cpu0) / max(stored, 1) * 1e6,
        peak_rss_mib=peak,
    )


def _line(r: SizeResult) -> str:
    return (
        f"  {r.size:<9} {r.enterprises:>4} enterprises {r.tags:>6,} tags: registry "
        f"{r.registry_load_s:6.2f} s, rules {r.rules_compile_s:5.2f} s, hub ready "
        f"{r.hub_ready_s:6.1f} s, RSS ready {r.rss_ready_mib:6.1f} MiB | {r.stored:,} readings "
        f"{r.rate:>8,.0f}/s, CPU {r.cpu_us_per_reading:5.1f} µs/reading, peak RSS "
        f"{r.peak_rss_mib:6.1f} MiB"
    )


def run(readings: int = 200_000, sizes: tuple[str, ...] = SIZES) -> dict[str, Any]:
    """Run the bench, print the figures, return the report (see ``--json``)."""
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="plant-size-") as tmpdir:
        tmp = Path(tmpdir)
        print(
            f"plant size: {readings:,} readings per size, QoS 1, one paho publisher -> Mosquitto "
            f"-> hub -> InfluxDB 1.6; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        with MosquittoProcess(tmp / "broker") as broker, InfluxDB1Process(tmp / "influx") as influx:
            for size in sizes:
                result = one_size(size, tmp, broker, influx, readings)
                results.append(result)
                print(_line(result), flush=True)
    return {
        "readings": readings,
        "load_avg_1m": os.getloadavg()[0],
        "sizes": [asdict(r) for r in results],
        "complete": all(r.stored == readings for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.plant_size", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--readings", type=int, default=200_000, help="readings per size")
    parser.add_argument(
        "--size", action="append", choices=SIZES, help="run only this size (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    report = run(args.readings, tuple(args.size or SIZES))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
