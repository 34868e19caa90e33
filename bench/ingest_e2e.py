"""End to end ingest: MQTT into InfluxDB, the hub against a naive pipeline, in the same run.

A private Mosquitto and a private InfluxDB 1.6 (v1 API) on free ports. ``--broker acl`` (the
default) runs Mosquitto as docker-compose deploys it: the password file and ACL that
``safety-hub broker`` writes from the sample park, every enterprise publishing with its own
credentials, the hub and the baseline reading as the hub user, the hub's catch-all session as
its own user (``SAFETY_HUB_MQTT_CATCH_ALL_USER``), fenced off the registered enterprises' topics;
``--broker open`` an anonymous broker with no ACL, where the catch-all receives every message a
second time. ``--readings`` N
readings of the sample park's in-service tags (normal values, no alarm) are generated once,
in messages of up to ``--batch`` readings (MQTT contract v1, every reading with its own
timestamp, unique per tag, so InfluxDB stores exactly N points), one line file per enterprise.
Each run publishes them at QoS 1 with the real ``mosquitto_pub -l`` (one process per
enterprise, all at once) and times from starting the publishers until ``SELECT count(value)
FROM reading`` in the run's own, fresh database returns N.

Contenders, alternating, ``--rounds`` runs each, best run reported:

* the hub, exactly as ``safety-hub run`` (sample park, shipped rule packs, spool, rules,
  alarms, hub statistics, the InfluxDB sink), each run with its own data dir and MQTT client
  id; its broker sessions are removed after each run, so nothing is queued for a stopped hub;
* the naive baseline, bench/naive_baseline.py, as its own process.

Printed: readings/s of each, the ratio hub/baseline, CPU seconds per reading (utime+stime of
the process tree from /proc, counted from the first publish to the last reading stored) and
peak RSS (VmHWM). Exit code 0 whatever the figures; 1 when a run stored fewer (or more)
readings than it was sent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench import naive_baseline
from tests.fixtures.processes import InfluxDB1Process, MosquittoProcess, find_binary
from tests.integration.hubproc import HubProcess

STALL_S = 60.0  # give up on a run when InfluxDB's count has not moved for this long
POLL_S = 0.2
# Near the end the count is polled more often: at 200,000-400,000 readings/s a run lasts 1.5-3 s,
# and polling every 0.2 s to the end put up to 0.2 s (7-13 %) of noise on its time.
POLL_FINE_S = 0.02
FINE_FROM = 0.9  # of the expected count


@dataclass(frozen=True)
class BrokerAccess:
    """Who connects to the bench's broker as whom; all None/empty: an open broker."""

    hub: tuple[str, str] | None = None
    """(user, password) of the hub and the baseline"""
    catch_all_user: str | None = None
    enterprises: dict[str, tuple[str, str]] = field(default_factory=dict)
    bench: tuple[str, str] | None = None
    """(user, password) that may read and write everything: the benches' probes"""

    def hub_env(self, broker: MosquittoProcess) -> dict[str, str]:
        """The hub's broker settings."""
        if self.hub is None:
            return {"SAFETY_HUB_MQTT_URL": broker.url}
        env = {"SAFETY_HUB_MQTT_URL": broker.url_with_credentials(self.hub[0])}
        if self.catch_all_user:
            env["SAFETY_HUB_MQTT_CATCH_ALL_USER"] = self.catch_all_user
        return env


BENCH_USER = "bench"
"""the benches' own broker user on an ``acl_broker``: reads and writes everything (probes)"""


def acl_broker(
    tmp: Path, plant: Path | None = None, name: str = "broker"
) -> tuple[MosquittoProcess, BrokerAccess]:
    """A broker (not started) with the passwd and ACL ``safety-hub broker`` writes for the
    plant (default: the sample park), plus :data:`BENCH_USER`, and the credentials to use."""
    from connectors.mqtt.acl import catch_all_user_of, generate, hash_password, read_credentials
    from safety_hub.registry import default_plant_path, load_plant

    out = tmp / f"{name}-files"
    registry = load_plant(plant or default_plant_path())
    generate(registry, out, env={"MQTT_HUB_PASSWORD": uuid.uuid4().hex})
    creds = read_credentials(out)
    bench_password = uuid.uuid4().hex
    broker = MosquittoProcess(
        tmp / name,
        users={"hub": creds["hub"], BENCH_USER: bench_password},
        password_file_text=(out / "passwd").read_text()
        + f"{BENCH_USER}:{hash_password(bench_password)}\n",
        acl_text=(out / "acl").read_text() + f"\nuser {BENCH_USER}\ntopic readwrite #\n",
    )
    access = BrokerAccess(
        ("hub", creds["hub"]),
        catch_all_user_of("hub"),
        {code: (code, creds[code]) for code in registry.enterprises},
        (BENCH_USER, bench_password),
    )
    return broker, access


@dataclass
class RunResult:
    contender: str
    round: int
    stored: int
    seconds: float
    rate: float
    cpu_s_per_reading: float
    peak_rss_mib: float


# -- the readings -------------------------------------------------------------------------------


def generate(
    readings: int, batch: int, out_dir: Path, plant: Path | None = None
) -> dict[str, Path]:
    """Write one file per enterprise, one JSON message per line; return enterprise -> file.
    ``plant``: the registry whose in-service tags report (default: the sample park)."""
    import random

    from safety_hub.registry import default_plant_path, load_plant
    from simulators.gateway import normal_value
    from simulators.park import sim_tags

    tags = sim_tags(load_plant(plant or default_plant_path()))
    rng = random.Random(16)
    per_tag_step_ms = 100
    per_cycle = sum(len(t) for t in tags.values())
    cycles = -(-readings // per_cycle)
    t0 = int(time.time() * 1000) - 600_000 - cycles * per_tag_step_ms  # all in the recent past
    pending: dict[str, list[dict[str, Any]]] = {e: [] for e in tags}
    files = {e: (out_dir / f"{e}.jsonl").open("wb") for e in tags}
    encoder = msgspec.json.Encoder()
    seq = 0
    left = readings

    def flush(enterprise: str) -> None:
        nonlocal seq
        seq += 1
        body = {"ts": t0, "seq": seq, "readings": pending[enterprise]}
        files[enterprise].write(encoder.encode(body) + b"\n")
        pending[enterprise] = []

    for k in range(cycles):
        ts = t0 + k * per_tag_step_ms
        for enterprise, enterprise_tags in tags.items():
            for tag in enterprise_tags:
                if left == 0:
                    break
                v = normal_value(tag, ts / 1000, rng)
                pending[enterprise].append({"tag": tag.tag, "v": v, "ts": ts})
                left -= 1
                if len(pending[enterprise]) == batch:
                    flush(enterprise)
    for enterprise in tags:
        if pending[enterprise]:
            flush(enterprise)
        files[enterprise].close()
    return {e: out_dir / f"{e}.jsonl" for e in tags if (out_dir / f"{e}.jsonl").stat().st_size}


# -- processes as the kernel sees them ------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, in seconds."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """VmHWM of ``pid`` and its descendants, in MiB."""
    kib = 0
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        kib += sum(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:"))
    return kib / 1024


# -- one run ----------------------------------------------------------------------------------------


def publish_and_wait(
    broker: MosquittoProcess,
    influx: InfluxDB1Process,
    db: str,
    files: dict[str, Path],
    expected: int,
    pid: int,
    label: str,
    access: BrokerAccess | None = None,
) -> tuple[int, float, float]:
    """Start the publishers, wait until ``db`` holds ``expected`` readings (or stalls).

    Returns (stored, seconds, CPU seconds of ``pid``'s tree over the run)."""
    pub = find_binary("mosquitto_pub", "/usr/bin/mosquitto_pub")
    cpu0 = cpu_seconds(pid)
    started = time.monotonic()
    publishers = []
    for enterprise, path in files.items():
        with path.open("rb") as stdin:
            cmd = [pub, "-h", broker.host, "-p", str(broker.port), "-V", "5", "-q", "1"]
            cmd += ["-t", f"hazard/v1/{enterprise}/telemetry", "-l"]
            cmd += ["-i", f"bench-pub-{enterprise}-{uuid.uuid4().hex[:6]}"]
            if access is not None and enterprise in access.enterprises:
                user, password = access.enterprises[enterprise]
                cmd += ["-u", user, "-P", password]
            publishers.append(subprocess.Popen(cmd, stdin=stdin))
    stored, moved, shown = 0, started, started
    cpu1, done_at = cpu0, started
    while True:
        count = influx.count(db, "reading")
        now = time.monotonic()
        cpu1, done_at = cpu_seconds(pid), now
        if count != stored:
            stored, moved = count, now
        finished = stored >= expected or now - moved > STALL_S
        if finished or now - shown >= 2.0:
            print(
                f"    {label}: {stored:>10,} / {expected:,} stored, {now - started:5.1f} s",
                file=sys.stderr,
                flush=True,
            )
            shown = now
        if finished:
            break
        time.sleep(POLL_FINE_S if stored >= expected * FINE_FROM else POLL_S)
    for proc in publishers:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return stored, done_at - started, cpu1 - cpu0


def influx_hub_env(broker_url: str, client_id: str, influx_url: str, db: str) -> dict[str, str]:
    """The environment of a bench's hub: this broker and client id, InfluxDB 1.x database
    ``db``, warnings only in its log."""
    return {
        "SAFETY_HUB_MQTT_URL": broker_url,
        "SAFETY_HUB_MQTT_CLIENT_ID": client_id,
        "SAFETY_HUB_INFLUX_URL": influx_url,
        "SAFETY_HUB_INFLUX_API": "v1",
        "SAFETY_HUB_INFLUX_BUCKET": db,
        "SAFETY_HUB_LOG_LEVEL": "warning",
    }


def clear_hub_sessions(
    broker: MosquittoProcess,
    client_id: str,
    enterprises: list[str],
    hub: tuple[str, str] | None = None,
) -> None:
    """End the stopped hub's broker sessions: nothing queues for it during the next run.
    ``hub``: the hub's (user, password) on a broker with access control."""
    critical = [f"_critical-{e}" for e in enterprises]  # connectors/mqtt/sessions.py
    for suffix in [*enterprises, *critical, "_unregistered", "_publisher"]:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{client_id}/{suffix}", protocol=mqtt.MQTTv5
        )
        if hub is not None:
            client.username_pw_set(*hub)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        client.connect(broker.host, broker.port, clean_start=True, properties=props)
        client.loop_start()
        deadline = time.monotonic() + 5
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        client.disconnect()
        client.loop_stop()


def run_hub(
    tmp: Path,
    broker: MosquittoProcess,
    influx: InfluxDB1Process,
    files: dict[str, Path],
    expected: int,
    rnd: int,
    contender: str = "hub",
    extra_env: dict[str, str] | None = None,
    access: BrokerAccess | None = None,
) -> RunResult:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", contender).strip("_")
    db = f"{slug}_{rnd}"
    influx.create_database(db)
    client_id = f"bench-hub-{rnd}-{uuid.uuid4().hex[:6]}"
    access = access or BrokerAccess()
    hub = HubProcess(
        tmp / f"{slug}-{rnd}",  # its own: no contender may start on another's state
        {
            **access.hub_env(broker),
            "SAFETY_HUB_MQTT_CLIENT_ID": client_id,
            "SAFETY_HUB_INFLUX_URL": influx.url,
            "SAFETY_HUB_INFLUX_API": "v1",
            "SAFETY_HUB_INFLUX_BUCKET": db,
            "SAFETY_HUB_LOG_LEVEL": "warning",
            **(extra_env or {}),
        },
    )
    hub.start()
    try:
        stored, seconds, cpu = publish_and_wait(
            broker, influx, db, files, expected, hub.pid, f"{contender} #{rnd}", access
        )
        rss = peak_rss_mib(hub.pid)
    finally:
        hub.stop()
        clear_hub_sessions(broker, client_id, sorted(files), access.hub)
        influx.drop_database(db)
    return RunResult(contender, rnd, stored, seconds, stored / seconds, cpu / max(stored, 1), rss)


def run_baseline(
    broker: MosquittoProcess,
    influx: InfluxDB1Process,
    files: dict[str, Path],
    expected: int,
    rnd: int,
    access: BrokerAccess | None = None,
) -> RunResult:
    db = f"naive_{rnd}"
    influx.create_database(db)
    args = ["--mqtt-port", str(broker.port), "--influx-url", influx.url, "--db", db]
    proc = naive_baseline.start(
        "bench.naive_baseline", args, access.hub if access is not None else None
    )
    try:
        stored, seconds, cpu = publish_and_wait(
            broker, influx, db, files, expected, proc.pid, f"baseline #{rnd}", access
        )
        rss = peak_rss_mib(proc.pid)
    finally:
        naive_baseline.stop(proc)
        influx.drop_database(db)
    return RunResult("baseline", rnd, stored, seconds, stored / seconds, cpu / max(stored, 1), rss)


# -- the whole bench ----------------------------------------------------------------------------------


def _line(r: RunResult) -> str:
    return (
        f"  {r.contender:<8} #{r.round}: {r.stored:>9,} readings in {r.seconds:6.2f} s = "
        f"{r.rate:>9,.0f} readings/s  CPU {r.cpu_s_per_reading * 1e6:5.2f} µs/reading  "
        f"peak RSS {r.peak_rss_mib:6.1f} MiB"
    )


SINK_PROCESS = "hub-sinkproc"
"""the contender --sink-process adds: the hub with SAFETY_HUB_SINK_PROCESS=on"""


def parse_also(spec: str) -> dict[str, str]:
    """``ENV=VALUE[,ENV=VALUE...]`` -> the environment of an ``--also`` contender."""
    env = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name.strip()):
            raise ValueError(f"--also takes ENV=VALUE[,ENV=VALUE...], got {spec!r}")
        env[name.strip()] = value.strip()
    return env


def run(
    readings: int = 600_000,
    batch: int = 100,
    rounds: int = 2,
    sink_process: bool = False,
    also: tuple[str, ...] = (),
    broker_mode: str = "acl",
) -> dict[str, Any]:
    """Run the bench, print the figures, return the report (see ``--json``). With
    ``sink_process``, each round also runs the hub with its sink in a child process (and the
    plain hub with it explicitly off); each of ``also`` (``ENV=VALUE[,...]``) is one more hub
    contender, ``hub[<spec>]``, run with that environment in every round."""
    variants = {f"hub[{spec}]": parse_also(spec) for spec in also}
    hubs = ("hub", SINK_PROCESS) if sink_process else ("hub",)
    contenders = (*hubs, *variants, "baseline")
    with tempfile.TemporaryDirectory(prefix="ingest-e2e-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "msgs").mkdir()
        files = generate(readings, batch, tmp / "msgs")
        print(
            f"end to end ingest: {readings:,} readings in messages of {batch}, QoS 1, "
            f"mosquitto_pub -l x {len(files)} enterprises -> Mosquitto -> InfluxDB 1.6; "
            f"hub vs naive baseline, best of {rounds}; broker {broker_mode}; "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        results: list[RunResult] = []
        if broker_mode == "acl":
            broker_proc, access = acl_broker(tmp)
        else:
            broker_proc, access = MosquittoProcess(tmp / "broker"), BrokerAccess()
        with broker_proc as broker, InfluxDB1Process(tmp / "influx") as influx:
            for rnd in range(1, rounds + 1):
                for contender in contenders:
                    if contender != "baseline":
                        env = dict(variants.get(contender, {}))
                        if sink_process and contender in hubs:
                            on = contender == SINK_PROCESS
                            env["SAFETY_HUB_SINK_PROCESS"] = "on" if on else "off"
                        result = run_hub(
                            tmp, broker, influx, files, readings, rnd, contender, env, access
                        )
                    else:
                        result = run_baseline(broker, influx, files, readings, rnd, access)
                    results.append(result)
                    print(_line(result), flush=True)
    best = {
        name: max((r for r in results if r.contender == name), key=lambda r: r.rate)
        for name in contenders
    }
    ratio = best["hub"].rate / best["baseline"].rate
    print(
        f"  best: hub {best['hub'].rate:,.0f} readings/s, baseline "
        f"{best['baseline'].rate:,.0f} readings/s, ratio hub/baseline {ratio:.2f}",
        flush=True,
    )
    extra: dict[str, Any] = {}
    if sink_process:
        extra["ratio_sink_process"] = best[SINK_PROCESS].rate / best["baseline"].rate
        print(
            f"  best: hub with the sink process {best[SINK_PROCESS].rate:,.0f} readings/s, "
            f"ratio to the baseline {extra['ratio_sink_process']:.2f}",
            flush=True,
        )
    if variants:
        extra["ratio_also"] = {}
    for name in variants:
        extra["ratio_also"][name] = best[name].rate / best["baseline"].rate
        print(
            f"  best: {name} {best[name].rate:,.0f} readings/s, ratio to the baseline "
            f"{extra['ratio_also'][name]:.2f}",
            flush=True,
        )
    missing = [r for r in results if r.stored != readings]
    for r in missing:
        print(f"  ERROR: {r.contender} #{r.round} stored {r.stored:,} of {readings:,}", flush=True)
    return {
        "readings": readings,
        "batch": batch,
        "rounds": rounds,
        "broker": broker_mode,
        "load_avg_1m": os.getloadavg()[0],
        "runs": [asdict(r) for r in results],
        "best": {name: asdict(r) for name, r in best.items()},
        "ratio": ratio,
        "complete": not missing,
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_e2e", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--readings", type=int, default=600_000, help="readings per run")
    parser.add_argument("--batch", type=int, default=100, help="readings per message")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each contender")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--sink-process",
        action="store_true",
        help="also run the hub with SAFETY_HUB_SINK_PROCESS=on in every round (and the plain "
        "hub with it off) and print its ratio to the baseline",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="ENV=VALUE[,ENV=VALUE]",
        help="also run the hub with these environment variables in every round, as a contender "
        "of its own (e.g. SAFETY_HUB_MQTT_PROCESS=off); may be given more than once",
    )
    parser.add_argument(
        "--broker",
        choices=("acl", "open"),
        default="acl",
        help="acl (default): Mosquitto with the passwd and ACL of `safety-hub broker`, as "
        "docker-compose runs it, the hub's catch-all as its own user; open: anonymous, no ACL",
    )
    args = parser.parse_args(argv)
    for spec in args.also:
        try:
            parse_also(spec)
        except ValueError as exc:
            parser.error(str(exc))
    report = run(
        args.readings, args.batch, args.rounds, args.sink_process, tuple(args.also), args.broker
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
