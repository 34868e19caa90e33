"""Run every benchmark: ``python -m bench`` (``make bench``); ``--quick`` for a short pass."""

from __future__ import annotations

import argparse

from bench import (
    alarm_latency,
    backlog,
    decode,
    failover,
    fairness,
    ingest_e2e,
    overload,
    pipeline,
    plant_size,
    priority,
    state_ingest,
    uplink_drain,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run every benchmark in bench/ (docs/benchmarks.md says what each measures).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short pass: priority with one backlog, alarm latency at 20,000 readings/s only "
        "(30 probes per load shape), end-to-end ingest with 200,000 readings, the gas reading behind "
        "a backlog in one round; the others as always",
    )
    args = parser.parse_args(argv)
    decode.run()
    print()
    pipeline.run()
    print()
    pipeline.hub_cpu(readings=200_000 if args.quick else 300_000)
    print()
    if args.quick:
        priority.run(backlogs=(200,), probes=10, rounds=1)
        print()
        alarm_latency.run(rates=(20_000,), probes=30)
    else:
        priority.run()
        print()
        alarm_latency.run()
    print()
    fairness.run()
    print()
    ingest_e2e.run(readings=200_000 if args.quick else 600_000)
    print()
    backlog.run(readings=300_000, rounds=1 if args.quick else 2)
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


if __name__ == "__main__":
    main()
