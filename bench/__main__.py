"""Run every benchmark: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

from bench import alarm_latency, decode, failover, fairness, ingest_e2e, pipeline

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
    failover.run()
