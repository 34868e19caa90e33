"""Ingest pipeline throughput in process: decode, line protocol, spool commit, live table.

Baseline in the same run: the bare decode step alone, so the ratio shows what the rest of
the pipeline (spool fsyncs included) costs on this machine.
"""

from __future__ import annotations

import json
import tempfile
import time
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
                spool=Spool(Path(tmp) / "spool.sqlite", sync=sync),  # type: ignore[arg-type]
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


if __name__ == "__main__":
    run()
