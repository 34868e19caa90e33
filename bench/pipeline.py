"""Ingest pipeline throughput in process: decode, line protocol, spool commit, live table;
then the whole hub in process, with its CPU time per reading.

Baseline in the same run: the bare decode step alone, so the ratio shows what the rest of
the pipeline (spool fsyncs included) costs on this machine.

The hub case (``hub_cpu``, also ``python -m bench.pipeline --hub``) builds the hub as
``safety-hub run`` does (sample park, shipped rule packs, spool, rules, alarms, hub
statistics, the interpreter settings) with an in-memory transport and a sink that only counts
the readings it is given (no broker, no InfluxDB), hands it the messages of
``bench/ingest_e2e.py`` (100 readings each, every in-service tag, normal values) while keeping
at most ``IN_FLIGHT`` messages waiting (as the MQTT receive maximum does), and reports the
process CPU time (``time.process_time``) and the ingest and sink threads' own CPU time per
reading from the first message handed over until the sink has been given every reading.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from safety_hub.clock import WallClock
from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.spool import Spool
from safety_hub.ingest.worker import IngestWorker, build_prefixes
from safety_hub.metrics import HubMetrics
from safety_hub.ports import InboundMessage
from safety_hub.registry import default_plant_path, load_plant
from safety_hub.system_alarms import SystemAlarms


def run(messages: int = 2000, per_message: int = 100) -> dict[str, float]:
    plant = load_plant(default_plant_path())
    clock = WallClock()
    tags = list(plant.tags.values())
    now = clock.now_ms()
    payloads: list[InboundMessage] = []
    for m in range(messages):
        ent = tags[m % len(tags)].enterprise
        own = [t for t in tags if t.enterprise == ent]
        body = {
            "seq": m,
            "readings": [
                {"tag": own[i % len(own)].tag, "v": 1.0 + i, "ts": now - 1000 + m}
                for i in range(per_message)
            ],
        }
        payloads.append(
            InboundMessage(f"hazard/v1/{ent}/telemetry", json.dumps(body).encode(), now)
        )
    decoder = TelemetryDecoder(plant.tags, set(plant.enterprises), clock.now_ms)
    total = messages * per_message

    start = time.perf_counter()
    for p in payloads:
        decoder.decode(p.topic, p.payload)
    decode_rate = total / (time.perf_counter() - start)

    results = {"decode only (baseline)": decode_rate}
    for sync in ("normal", "full"):
        with tempfile.TemporaryDirectory() as tmp:
            metrics = HubMetrics()
            worker = IngestWorker(
                decoder=decoder,
                prefixes=build_prefixes(plant.tags),
                spool=Spool(Path(tmp) / "spool.sqlite", sync=sync),
                live=LiveTable(),
                metrics=metrics,
                system_alarms=SystemAlarms(clock, metrics),
                clock=clock,
            )
            start = time.perf_counter()
            # The ingest worker takes what is waiting, up to 2000 messages per commit; 200 is
            # a conservative group size for a hub that is not saturated.
            for i in range(0, len(payloads), 200):
                worker.process(payloads[i : i + 200])
            results[f"pipeline, spool sync={sync}"] = total / (time.perf_counter() - start)
    print(f"ingest pipeline, {messages} messages x {per_message} readings")
    for name, value in results.items():
        print(f"  {name:<28} {value:>12,.0f} readings/s   x{value / decode_rate:5.2f}")
    return results


IN_FLIGHT = 1_000
"""messages handed to the hub and not yet taken by its ingest worker, at most"""


class _CountingSink:
    """A line sink that counts the ``reading`` lines it is given and drops them."""

    name = "count"

    def __init__(self) -> None:
        self.readings = 0

    def write(self, lines: str) -> None:
        self.readings += lines.count("\nreading,") + lines.startswith("reading,")

    def close(self) -> None:
        pass


class _NoHistory:
    def close(self) -> None:
        pass


def _thread_cpu(thread: threading.Thread | None) -> Callable[[], float]:
    """CPU seconds of ``thread`` so far (Linux: its own clock), or 0 without one."""
    if thread is None or thread.ident is None:
        return lambda: 0.0
    clock = time.pthread_getcpuclockid(thread.ident)
    return lambda: time.clock_gettime(clock)


def hub_cpu(readings: int = 300_000) -> dict[str, float]:
    """The whole hub in process: readings/s and CPU µs per reading (module docstring)."""
    from bench.ingest_e2e import generate
    from bench.priority import Transport
    from safety_hub.runtime.hub import Hub
    from safety_hub.runtime.interpreter import tune_for_ingest
    from safety_hub.runtime.storage import Storage
    from safety_hub.settings import Settings

    with tempfile.TemporaryDirectory(prefix="pipeline-hub-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "msgs").mkdir()
        now = int(time.time() * 1000)
        lanes = [
            [
                InboundMessage(f"hazard/v1/{code}/telemetry", line, now)
                for line in path.read_bytes().splitlines()
            ]
            for code, path in generate(readings, 100, tmp / "msgs").items()
        ]
        messages = [lane[i] for i in range(max(map(len, lanes))) for lane in lanes if i < len(lane)]
        sink = _CountingSink()
        transport = Transport()
        storage = Storage(sink, _NoHistory(), "counting sink")  # type: ignore[arg-type]
        hub = Hub(Settings(data_dir=tmp / "data", notify=False), source=transport, storage=storage)
        hub.start()
        try:
            tune_for_ingest()  # as safety-hub run does, once the hub is built
            assert transport.handler is not None
            ingest_cpu = _thread_cpu(hub.ingest._thread)
            sink_cpu = _thread_cpu(getattr(hub.sink_worker, "_thread", None))
            start = (time.perf_counter(), time.process_time(), ingest_cpu(), sink_cpu())
            for message in messages:
                while sum(hub.ingest.queued().values()) >= IN_FLIGHT:
                    time.sleep(0.001)
                transport.handler(message)
            deadline = time.monotonic() + 300
            while sink.readings < readings and time.monotonic() < deadline:
                time.sleep(0.005)
            end = (time.perf_counter(), time.process_time(), ingest_cpu(), sink_cpu())
        finally:
            hub.stop()
    if sink.readings != readings:
        raise RuntimeError(f"the hub stored {sink.readings:,} of {readings:,} readings")
    took = end[0] - start[0]
    result = {
        "readings_per_s": readings / took,
        "cpu_us_per_reading": (end[1] - start[1]) / readings * 1e6,
        "ingest_thread_us_per_reading": (end[2] - start[2]) / readings * 1e6,
        "sink_thread_us_per_reading": (end[3] - start[3]) / readings * 1e6,
    }
    print(
        f"hub in process, {readings:,} readings: {result['readings_per_s']:,.0f} readings/s, "
        f"CPU {result['cpu_us_per_reading']:.2f} µs/reading (ingest thread "
        f"{result['ingest_thread_us_per_reading']:.2f}, sink thread "
        f"{result['sink_thread_us_per_reading']:.2f})",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--hub", action="store_true", help="only the whole hub in process")
    parser.add_argument("--readings", type=int, default=300_000, help="for the hub case")
    parser.add_argument("--rounds", type=int, default=1, help="hub case runs, one after another")
    parser.add_argument("--json", type=Path, help="also write the hub case's figures here")
    args = parser.parse_args(argv)
    if not args.hub:
        run()
        print()
    results = [hub_cpu(args.readings) for _ in range(args.rounds)]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
