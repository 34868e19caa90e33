"""Bodies of ``safety-hub replay`` and ``safety-hub simulate SCENARIO`` (wired in safety_hub.cli).

Exit codes of replay: 0 every expectation held, 1 an expectation failed, 2 the scenario (or
recording) does not load; errors are printed as ``file:line:col: ...``.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from safety_hub.registry import default_plant_path, load_plant
from safety_hub.rules import load_rules
from safety_hub.scenarios.loader import default_rules_dir, load_scenario
from safety_hub.scenarios.recording import is_recording
from safety_hub.scenarios.replay import ReplayResult, format_clock, replay, replay_recording
from safety_hub.scenarios.report import print_timeline, print_verdict, write_report
from safety_hub.settings import MqttTarget

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def main_replay(
    source: Path | None,
    *,
    report: Path | None = None,
    record: Path | None = None,
    url: str | None = None,
    duration: float | None = None,
    plant: Path | None = None,
    rules: Path | None = None,
    quiet: bool = False,
    out: TextIO | None = None,
) -> int:
    stream = out or sys.stdout
    if record is not None:
        return _record(record, url or "mqtt://127.0.0.1:1883", duration, stream)
    if source is None:
        print("replay: give a scenario file (or --record OUT --url mqtt://...)", file=sys.stderr)
        return EXIT_ERROR
    if not source.is_file():
        print(f"replay: {source}: no such file", file=sys.stderr)
        return EXIT_ERROR
    result: ReplayResult
    if is_recording(source):
        the_plant = load_plant(plant or default_plant_path())
        pack = load_rules(rules or default_rules_dir(), the_plant)
        print(f"replay: recording {source} into the hub of {the_plant.park_code}", file=stream)
        result = replay_recording(source, the_plant, pack)
    else:
        scenario = load_scenario(source)  # ScenarioError -> exit 2 in safety_hub.cli
        print(
            f"replay: {scenario.name} ({source}), {format_clock(scenario.duration_ms)} on a "
            f"virtual clock, enterprises {', '.join(scenario.enterprises)}",
            file=stream,
            flush=True,
        )

        def progress(t_ms: int, total_ms: int) -> None:
            if not quiet and t_ms % 600_000 < 60_000:
                print(f"  ... {format_clock(t_ms)} / {format_clock(total_ms)}", file=sys.stderr)

        result = replay(scenario, progress=progress)
    if not quiet:
        print_timeline(result, stream)
    print_verdict(result, stream)
    if report is not None:
        write_report(result, report)
        print(f"report: {report}", file=stream)
    return EXIT_OK if result.passed else EXIT_FAILED


def _record(path: Path, url: str, duration: float | None, stream: TextIO) -> int:
    from simulators.recorder import Recorder

    target = MqttTarget(url)
    recorder = Recorder(
        path,
        target.host,
        target.port,
        url=target.redacted(),
        username=target.username,
        password=target.password,
    )
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    if not recorder.wait_subscribed(10):
        recorder.close()
        print(f"record: cannot subscribe at {target.redacted()}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"record: {target.redacted()} -> {path}"
        + (f" for {duration:g} s" if duration else " until Ctrl-C"),
        file=stream,
        flush=True,
    )
    end = None if duration is None else time.monotonic() + duration
    next_progress = time.monotonic() + 5
    try:
        while not stop["now"] and (end is None or time.monotonic() < end):
            time.sleep(0.1)
            if time.monotonic() >= next_progress:
                print(f"record: {recorder.count} messages", file=sys.stderr, flush=True)
                next_progress += 5
    except KeyboardInterrupt:
        pass
    finally:
        recorder.close()
    print(f"record: {recorder.count} messages written to {path}", file=stream)
    return EXIT_OK


def main_simulate_scenario(
    source: Path,
    *,
    url: str,
    speed: float,
    stay_online: bool = False,
    progress_every_s: float = 5.0,
) -> int:
    from simulators.player import PlayStats, ScenarioPlayer

    scenario = load_scenario(source)
    target = MqttTarget(url)
    player = ScenarioPlayer(
        scenario,
        target.host,
        target.port,
        speed=speed,
        username=target.username,
        password=target.password,
        stay_online=stay_online,
    )
    total = scenario.duration_ms
    print(
        f"simulate: {scenario.name}: {len(scenario.enterprises)} gateway(s) -> "
        f"{target.redacted()}, {format_clock(total)} of scenario time at {speed:g}x "
        f"(about {total / 1000 / speed:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: player.stop())

    def progress(stats: PlayStats) -> None:
        print(
            f"simulate: {format_clock(stats.scenario_ms)} / {format_clock(total)}: "
            f"{stats.messages} messages, {stats.readings} readings",
            file=sys.stderr,
            flush=True,
        )

    try:
        stats = player.run(progress, progress_every_s)
    except KeyboardInterrupt:
        player.stop()
        stats = player.stats
    progress(stats)
    for text in stats.skipped_actions:
        print(
            f"simulate: operator action not played (use the console or API): {text}",
            file=sys.stderr,
        )
    print(f"simulate: done, {stats.messages} messages published", file=sys.stderr, flush=True)
    return EXIT_OK
