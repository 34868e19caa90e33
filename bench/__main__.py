"""Run every benchmark: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

from bench import (
    alarm_latency,
    decode,
    failover,
    fairness,
    ingest_e2e,
    overload,
    pipeline,
    plant_size,
    state_ingest,
    uplink_drain,
)

if __name__ == "__main__":
    decode.run()
    print()
    pipeline.run()
    print()
    alarm_latency.run()
    print()
    fairness.run()
    print()
    ingest_e2e.run()
    print()
    uplink_drain.run()
    print()
    overload.run()
    print()
    plant_size.run()
    print()
    state_ingest.run(200_000, 100, 2, probes=30)
    print()
    failover.run()
