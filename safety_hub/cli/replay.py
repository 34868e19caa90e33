"""``safety-hub replay``: a scenario (or a recording) through an in-process hub on a virtual
clock, or ``--record``: live telemetry from a broker into a recording.

Exit codes: 0 every expectation held, 1 an expectation failed, 2 the scenario (or recording)
does not load; errors are printed as ``file:line:col: ...``. The scenario modules are imported
when the command runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from safety_hub.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers

if TYPE_CHECKING:
    from safety_hub.scenarios.loader import ScenarioError
    from safety_hub.scenarios.report import ReplayResult


def register(sub: Subparsers) -> None:
    rep = sub.add_parser(
        "replay",
        help="replay a scenario (or a recording) through the hub on a virtual clock",
        description="Run a scenario file through an in-process hub (telemetry decoding, ingest, "
        "rule engine, alarm service) on a virtual clock; print the alarm timeline and whether "
        "every expectation held. Exit code 0 pass, 1 an expectation failed, 2 the scenario "
        "has errors (each printed as file:line:col). A recording made with --record plays "
        "back the same way. Format: docs/scenarios.md.",
    )
    rep.add_argument("scenario", nargs="?", type=Path, default=None, help="scenario or recording")
    rep.add_argument("--report", type=Path, default=None, help="write a JSON report to PATH")
    rep.add_argument("-q", "--quiet", action="store_true", help="print only the verdict")
    rep.add_argument(
        "--record", type=Path, default=None, help="capture live telemetry from --url into OUT"
    )
    rep.add_argument(
        "--url", default="mqtt://127.0.0.1:1883", help="broker to record from (with --record)"
    )
    rep.add_argument(
        "--duration", type=float, default=None, help="with --record: stop after N seconds"
    )
    rep.add_argument(
        "--plant", type=Path, default=None, help="for a recording: plant (default: sample park)"
    )
    rep.add_argument(
        "--rules", type=Path, default=None, help="for a recording: rule packs (default: shipped)"
    )
    rep.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    return main_replay(
        args.scenario,
        report=args.report,
        record=args.record,
        url=args.url,
        duration=args.duration,
        plant=args.plant,
        rules=args.rules,
        quiet=args.quiet,
    )


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
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.rules import default_rules_path, load_rules
    from safety_hub.runtime.replay import replay, replay_recording
    from safety_hub.scenarios.loader import ScenarioError, load_scenario
    from safety_hub.scenarios.recording import is_recording
    from safety_hub.scenarios.report import (
        format_clock,
        print_timeline,
        print_verdict,
        write_report,
    )

    stream = out or sys.stdout
    if record is not None:
        return _record(record, url or "mqtt://127.0.0.1:1883", duration, stream)
    if source is None:
        print("replay: give a scenario file (or --record OUT --url mqtt://...)", file=sys.stderr)
        return EXIT_USAGE
    if not source.is_file():
        print(f"replay: {source}: no such file", file=sys.stderr)
        return EXIT_USAGE
    result: ReplayResult
    if is_recording(source):
        the_plant = load_plant(plant or default_plant_path())
        pack = load_rules(rules or default_rules_path(), the_plant)
        print(f"replay: recording {source} into the hub of {the_plant.park_code}", file=stream)
        result = replay_recording(source, the_plant, pack)
    else:
        try:
            scenario = load_scenario(source)  # ScenarioError -> exit 2 in safety_hub.cli.main
        except ScenarioError as exc:
            return _expected_load_error(source, exc, stream)
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


def _expected_load_error(source: Path, exc: ScenarioError, stream: TextIO) -> int:
    """A file that does not load passes when it declares these errors (`expect_load_error`)."""
    from safety_hub.scenarios.loader import load_error_failures

    missed = load_error_failures(source, exc)
    if missed is None:
        raise exc
    verdict = "FAIL" if missed else "PASS"
    print(f"{verdict}  {source}: does not load ({len(exc.errors)} error(s))", file=stream)
    for failure in missed:
        print(f"  {failure}", file=stream)
    return EXIT_FAILED if missed else EXIT_OK


def _record(path: Path, url: str, duration: float | None, stream: TextIO) -> int:
    from safety_hub.settings import MqttTarget
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
