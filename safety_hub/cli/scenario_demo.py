"""The scenario of ``safety-hub demo --scenario``: checked against the demo's registry and
rule packs, then played into the running demo hub from its own gateways."""

from __future__ import annotations

import dataclasses
import io
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from safety_hub.alarms import Transition
from safety_hub.alarms.model import DISPLAYED_STATES, Action
from safety_hub.registry import default_plant_path
from safety_hub.rules import default_rules_path
from safety_hub.scenarios import schema as s
from safety_hub.scenarios.actions import operate
from safety_hub.scenarios.expectations import check_expectations
from safety_hub.scenarios.loader import Scenario
from safety_hub.scenarios.report import (
    ReplayResult,
    TimelineRow,
    format_clock,
    print_verdict,
    timeline_row,
)
from simulators.player import PlayStats, ScenarioPlayer

if TYPE_CHECKING:
    from safety_hub.runtime.hub import Hub
    from simulators.park import ParkSimulator

OperatorEvent = s.AnyOperatorEvent
_CONDITION_ACTIONS = frozenset({Action.RAISE, Action.UPDATE, Action.CLEAR})


def demo_scenario_problem(scenario: Scenario, plant: Path, rules: Path) -> str | None:
    """Why ``scenario`` cannot be played into a hub of the registry ``plant`` with the rule packs
    ``rules`` (None: it can). Its expectations hold for its own registry and rules only: the
    same tag names with other setpoints or SIS data would make a different incident."""
    m = scenario.model
    base = Path(scenario.path).parent
    wants = {
        "plant": default_plant_path() if m.plant == "sample" else base / m.plant,
        "rules": default_rules_path() if m.rules is None else base / m.rules,
    }
    has = {"plant": plant, "rules": rules}
    differ = [k for k in wants if wants[k].resolve() != has[k].resolve()]
    if not differ:
        return None
    what = "; ".join(f"its {k} is {wants[k]}, the demo's {has[k]}" for k in differ)
    variables = " ".join(f"SAFETY_HUB_{k.upper()}={wants[k]}" for k in differ)
    fix = f"{variables} safety-hub demo --scenario {scenario.path}"
    return (
        f"{scenario.path}: cannot play into this demo: {what}. Run "
        f"`safety-hub replay {scenario.path}`, or start the demo on them: `{fix}`"
    )


class ScenarioInDemo:
    """A scenario played into the running demo hub, from its own gateways.

    While it plays, the demo's simulated gateways pause every tag the scenario publishes (all
    the tags of its enterprises): two sources of one tag would make its alarms flap between a
    leak and normal air. The scenario's operator actions are carried out on the hub's alarm
    service as the scenario's user; the hub's transitions of the scenario's enterprises, in
    scenario time (``(ts - t0) × speed``), are the timeline its expectations are checked on.
    """

    def __init__(
        self,
        scenario: Scenario,
        hub: Hub,
        park: ParkSimulator,
        host: str,
        port: int,
        *,
        speed: float,
        out: TextIO | None = None,
        progress_every_s: float = 5.0,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"--speed must be > 0, got {speed:g}")
        self.scenario = scenario
        self.hub = hub
        self.park = park
        self.host, self.port = host, port
        self.speed = speed
        self.out = out or sys.stdout
        self.progress_every_s = progress_every_s
        self.result: ReplayResult | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._transitions: list[Transition] = []
        self._printed = 0
        self._recording = False
        self._t0_ms: int | None = None
        self._t0_mono = 0.0
        self._player: ScenarioPlayer | None = None
        self._enterprises = frozenset(scenario.enterprises)
        hub.alarms.service.subscribe(self._on_transition)

    @property
    def paused_tags(self) -> frozenset[tuple[str, str]]:
        """What the scenario's gateways publish, so the demo's own must not."""
        return frozenset(self.scenario.plant.tags)

    def describe(self) -> str:
        sc = self.scenario
        total = sc.duration_ms
        return (
            f"{sc.name} ({sc.path}), {format_clock(total)} at {self.speed:g}x "
            f"(about {total / 1000 / self.speed:.0f} s); the demo's gateways pause "
            f"{len(self.paused_tags)} tags of {', '.join(sc.enterprises)} while it plays"
        )

    def stop(self) -> None:
        """Stop playing; what the hub does from now on is no longer the scenario's."""
        self._recording = False
        self._stop.set()
        player = self._player
        if player is not None:
            player.stop()

    def _on_transition(self, t: Transition) -> None:
        # called by the alarm service with its lock held: only collect here
        if self._recording and t.alarm.enterprise in self._enterprises:
            with self._lock:
                self._transitions.append(t)

    def _say(self, text: str) -> None:
        print(f"[scenario] {text}", file=self.out, flush=True)

    def run(self) -> ReplayResult | None:
        """Play it to the end (the outcome, also kept in ``result``) or until :meth:`stop`
        (None)."""
        sc = self.scenario
        keys = self.paused_tags
        actions = sorted(
            (e.at, i, e) for i, e in enumerate(sc.model.timeline) if isinstance(e, s.OperatorEvent)
        )
        failures: list[str] = []
        played: list[PlayStats] = []
        crashed: list[BaseException] = []
        self._wait_for_the_demo(keys)
        if self._stop.is_set():
            return None
        # stay online at the end: the demo's gateways of these enterprises are still there
        player = ScenarioPlayer(sc, self.host, self.port, speed=self.speed, stay_online=True)
        self._player = player

        def play() -> None:
            try:
                played.append(player.run(on_first_publish=self._started))
            except BaseException as exc:  # reported by the thread that waits for it
                crashed.append(exc)

        self.park.pause(keys)
        self._recording = True
        started = time.perf_counter()
        thread = threading.Thread(target=play, name="demo-scenario", daemon=True)
        thread.start()
        next_progress = time.monotonic() + self.progress_every_s
        try:
            while thread.is_alive() and not self._stop.is_set():
                thread.join(0.1)
                if self._t0_ms is None:
                    continue
                while actions and self._due(actions[0][0]) <= time.monotonic():
                    _at, index, event = actions.pop(0)
                    self._operate(index, event, failures)
                self._print_new()
                if time.monotonic() >= next_progress:
                    stats = player.stats
                    self._say(
                        f"{format_clock(stats.scenario_ms)} / {format_clock(sc.duration_ms)}: "
                        f"{stats.messages} messages, {stats.readings} readings published"
                    )
                    next_progress += self.progress_every_s
            if crashed:
                self._say(f"cannot play: {crashed[0]}")
                return None
            if self._stop.is_set() or not played:
                shown = format_clock(player.stats.scenario_ms)
                self._say(f"stopped at {shown} of {format_clock(sc.duration_ms)}")
                return None
            for _at, index, event in actions:  # due by now: the scenario's time is over
                self._operate(index, event, failures)
            # the hub's last transitions follow the last publications by its processing time
            self._stop.wait(1.0)
            self._print_new()
        finally:
            self._recording = False
            self.park.resume(keys)
        self.result = self._outcome(played[0], failures, time.perf_counter() - started)
        return self.result

    def _wait_for_the_demo(self, keys: frozenset[tuple[str, str]]) -> None:
        """Until the demo's gateways have reported each of these tags once: a hub restarted
        on the demo's data finds its tags stale and its gateways offline, and those alarms
        clear with the first readings; they are not the scenario's."""
        since = self.hub.clock.now_ms()
        intervals = {
            (code, t.tag): t.interval_s for code, tags in self.park.tags.items() for t in tags
        }
        waiting = {k for k in keys if k in intervals}
        longest = max((intervals[k] for k in waiting), default=0.0)
        self._say(
            f"starts once the demo's gateways have reported the tags of "
            f"{', '.join(self.scenario.enterprises)} (within {longest:g} s)"
        )
        deadline = time.monotonic() + 2 * longest + 5
        while waiting and not self._stop.is_set() and time.monotonic() < deadline:
            live = self.hub.live.snapshot()
            waiting = {k for k in waiting if k not in live or live[k].received_ms < since}
            self._stop.wait(0.2)

    def _started(self, t0_ms: int) -> None:
        self._t0_mono = time.monotonic()
        self._t0_ms = t0_ms

    def _due(self, at_ms: int) -> float:
        return self._t0_mono + at_ms / 1000 / self.speed

    def _scenario_row(self, t: Transition) -> TimelineRow:
        assert self._t0_ms is not None
        row = timeline_row(t, self._t0_ms)
        return dataclasses.replace(row, t_ms=round(row.t_ms * self.speed))

    def _ours(self, t: Transition) -> bool:
        """Not a condition that began before the scenario: a demo hub restarted on its data
        clears stale tags and offline links with the first readings, maybe only once the
        scenario plays (its journal may lag), and those are not the scenario's."""
        assert self._t0_ms is not None
        return t.action not in _CONDITION_ACTIONS or t.alarm.event_ts_ms >= self._t0_ms

    def _print_new(self) -> None:
        with self._lock:
            fresh = self._transitions[self._printed :]
            self._printed = len(self._transitions)
        for t in filter(self._ours, fresh):
            r = self._scenario_row(t)
            subject = f"{r.enterprise}/{r.subject}" if r.subject != r.enterprise else r.enterprise
            value = "" if r.value is None else f" {r.value:.4g}"
            by = f" by {r.user}" if r.user else ""
            # whole seconds: below that the mapping back from the hub's clock is noise
            at = format_clock(max(0, round(r.t_ms / 1000)) * 1000)
            self._say(
                f"{at} {r.action} {r.priority} {r.alert} {subject}{value}: "
                f"{r.from_state} -> {r.to_state}{by}"
            )

    def _operate(self, index: int, event: OperatorEvent, failures: list[str]) -> None:
        sc = self.scenario
        where = sc.where(("timeline", index))
        service = self.hub.alarms.service
        what = f"{format_clock(event.at)} {event.type} {event.alert}"
        problems = operate(service, sc, event, self.hub.clock.now_ms(), speed=self.speed)
        for problem in problems:
            failures.append(f"{where}: at {what}: {problem}")
            self._say(f"{what}: {problem}")

    def _outcome(self, stats: PlayStats, failures: list[str], wall_s: float) -> ReplayResult:
        sc = self.scenario
        assert self._t0_ms is not None
        t0 = self._t0_ms
        with self._lock:
            transitions = list(self._transitions)
        result = ReplayResult(sc.name, sc.path, sc.start_ms, sc.duration_ms)
        result.timeline = [self._scenario_row(t) for t in transitions if self._ours(t)]
        service = self.hub.alarms.service
        for flood in service.floods():
            episode = flood.as_json()
            if episode["start_ms"] >= t0:
                episode["start_ms"] = sc.start_ms + round((episode["start_ms"] - t0) * self.speed)
                result.floods.append(episode)
        result.failures.extend(failures)
        result.messages, result.readings = stats.messages, stats.readings
        result.wall_s = wall_s
        check_expectations(sc, result)
        verdict = io.StringIO()
        print_verdict(result, verdict)
        if result.failures and self.speed != 1:
            print(
                f"  (at {self.speed:g}x the hub's own timers, stale data and link silence, do "
                f"not speed up; `safety-hub replay {sc.path}` gives the exact verdict)",
                file=verdict,
            )
        # one write: the demo's progress lines come from another thread
        self.out.write(f"[scenario] outcome: {verdict.getvalue()}")
        standing = [
            a
            for code in sc.enterprises
            for a in service.list(enterprise=code, limit=10_000)
            if a.state in DISPLAYED_STATES
        ]
        if standing:
            states = Counter(a.state.value for a in standing)
            self._say(
                f"{len(standing)} alarm(s) of {', '.join(sc.enterprises)} still stand in the "
                f"console ({', '.join(f'{n} {state}' for state, n in sorted(states.items()))}): "
                "acknowledge and reset them there"
            )
        self.out.flush()
        return result
