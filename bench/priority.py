"""Priority of safety-critical telemetry, in process: a gas reading behind a backlog of process
data, with the hub's triage on and off.

No broker and no other process: the hub is built as ``safety-hub run`` builds it (sample park,
shipped rule packs, spool, alarm journal and outbox, embedded SQLite storage, the interpreter
settings of safety_hub/runtime/interpreter.py), with a transport
stand-in that hands messages to it as the MQTT sessions do and takes its publishes. Each probe
hands over ``--backlog`` messages of 100 process-tag readings at once (a second's burst at
100 x backlog readings/s), then one reading of a gas detector past its level-2 setpoint, and
times from handing that over until the hub publishes the detector's level-2 ``raise`` event;
then waits until the backlog is drained. The hubs take turns, ``--rounds`` times, so both see
the same machine. What it isolates is the queueing inside the hub (bench/alarm_latency.py
measures the whole way, through a broker). Exit code 1 when a probe got no alarm.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from bench.alarm_latency import Probe, pct, probe_detectors
from safety_hub.ports import InboundMessage


class Transport:
    """The hub's MessageSource, in memory: records when each level-2 raise is published."""

    def __init__(self) -> None:
        self.handler: Callable[[InboundMessage], None] | None = None
        self.raised: dict[str, float] = {}
        self.changed = threading.Condition()

    @property
    def connected(self) -> bool:
        return True

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        self.handler = handler

    def ack(self, message: InboundMessage) -> None:
        pass

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        pass

    def publish_confirmed(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        event = json.loads(payload)
        alarm = event.get("alarm") or {}
        if event.get("action") == "raise" and str(alarm.get("alert", "")).endswith("Level2"):
            with self.changed:
                self.raised[str(alarm.get("tag"))] = time.perf_counter()
                self.changed.notify_all()
        return True

    def stop(self) -> None:
        pass


def _bulk(backlog: int) -> Callable[[], list[InboundMessage]]:
    from safety_hub.registry import default_plant_path, load_plant
    from simulators.park import sim_tags

    critical = ("toxic_gas", "combustible_gas", "open_path_gas", "oxygen", "sis_")
    tags = {
        code: [t.tag for t in ts if not t.kind.startswith(critical)]
        for code, ts in sim_tags(load_plant(default_plant_path())).items()
    }
    codes = [c for c in tags if tags[c]]
    state = {"ts": 0}

    def make() -> list[InboundMessage]:
        base = max(time.time_ns() // 1_000_000, state["ts"] + 1)
        out = []
        for i in range(backlog):
            code = codes[i % len(codes)]
            own = tags[code]
            ts = base + i // len(codes)
            readings = [
                {"tag": own[k % len(own)], "v": 1.0, "ts": ts + k // len(own)} for k in range(100)
            ]
            body = msgspec.json.encode({"readings": readings})
            out.append(InboundMessage(f"hazard/v1/{code}/telemetry", body, base))
        state["ts"] = base + backlog
        return out

    return make


def _probe_hub(
    hub: object, transport: Transport, probe: Probe, bulk: list[InboundMessage]
) -> float | None:
    from safety_hub.runtime.hub import Hub

    assert isinstance(hub, Hub) and transport.handler is not None
    for message in bulk:
        transport.handler(message)
    ts = time.time_ns() // 1_000_000
    body = msgspec.json.encode({"readings": [{"tag": probe.tag, "v": probe.value, "ts": ts}]})
    sent = time.perf_counter()
    transport.handler(InboundMessage(f"hazard/v1/{probe.enterprise}/telemetry", body, ts))
    with transport.changed:
        got = transport.changed.wait_for(lambda: probe.tag in transport.raised, 30)
    deadline = time.monotonic() + 60
    while (hub.ingest.queued() or hub.ingest.held_messages) and time.monotonic() < deadline:
        time.sleep(0.01)
    return (transport.raised[probe.tag] - sent) * 1000 if got else None


def run(
    backlogs: tuple[int, ...] = (200, 1000), probes: int = 20, rounds: int = 2
) -> dict[str, object]:
    from safety_hub.runtime.hub import Hub
    from safety_hub.runtime.interpreter import tune_for_ingest
    from safety_hub.settings import Settings

    tune_for_ingest()  # as safety-hub run does: garbage collector and GIL hand-off
    chosen = probe_detectors(probes)  # each hub is new: every one probes the same detectors
    report: dict[str, object] = {}
    print(
        f"priority in process: {probes} probes x {rounds} rounds per backlog and mode", flush=True
    )
    with tempfile.TemporaryDirectory(prefix="priority-") as tmpdir:
        for backlog in backlogs:
            make = _bulk(backlog)
            latencies: dict[str, list[float]] = {"on": [], "off": []}
            missed = 0
            for rnd in range(rounds):
                for mode in ("on", "off"):
                    transport = Transport()
                    data = Path(tmpdir) / f"{backlog}-{rnd}-{mode}"
                    hub = Hub(
                        Settings(data_dir=data, notify=False),
                        source=transport,
                        prioritise=mode == "on",
                    )
                    hub.start()
                    try:
                        for probe in chosen:
                            latency = _probe_hub(hub, transport, probe, make())
                            if latency is None:
                                missed += 1
                            else:
                                latencies[mode].append(latency)
                    finally:
                        hub.stop()
            report[str(backlog)] = {"missed": missed, **{m: v for m, v in latencies.items()}}
            for mode, values in latencies.items():
                if values:
                    print(
                        f"  backlog {backlog:>5} messages ({backlog * 100:>7,} readings), triage "
                        f"{mode:<3}: p50 {pct(values, 50):7.1f} ms p99 {pct(values, 99):7.1f} ms "
                        f"max {max(values):7.1f} ms ({len(values)} probes)",
                        flush=True,
                    )
            if missed:
                print(
                    f"  backlog {backlog}: {missed} probe(s) got no alarm within 30 s", flush=True
                )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.priority",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backlogs",
        default="200,1000",
        help="messages of 100 readings ahead of each probe, comma-separated",
    )
    parser.add_argument("--probes", type=int, default=20, help="probes per backlog, mode and round")
    parser.add_argument("--rounds", type=int, default=2, help="turns of each mode")
    parser.add_argument("--quick", action="store_true", help="backlog 200 only, 10 probes, 1 round")
    parser.add_argument("--json", type=Path, help="also write the latencies to this file")
    args = parser.parse_args(argv)
    backlogs = tuple(int(b) for b in args.backlogs.split(","))
    probes, rounds = args.probes, args.rounds
    if args.quick:
        backlogs, probes, rounds = (200,), 10, 1
    report = run(backlogs, probes, rounds)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if any(r["missed"] for r in report.values() if isinstance(r, dict)) else 0


if __name__ == "__main__":
    sys.exit(main())
