"""Replay a scenario through the real hub, in process, on a virtual clock.

The scenario's gateways produce contract v1 payloads (``World.stream()``); each instant's
messages go as one batch into the hub's ``IngestWorker`` (decode against the registry → spool →
rule engine → alarm service, the same objects ``safety-hub run`` wires), the engine's timers and
shelve expiry tick once per virtual second, operator actions call the alarm service. Every alarm
transition is recorded; the expectations are checked against that timeline at the end.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safety_hub.alarms import Transition
from safety_hub.clock import VirtualClock
from safety_hub.notify.contacts import OutgoingMessage
from safety_hub.people import PeopleDirectory
from safety_hub.ports import HistoryPoint, InboundMessage
from safety_hub.runtime.alarm_runtime import ALARM_EVENT_MEASUREMENT
from safety_hub.runtime.hub import Hub, Storage
from safety_hub.runtime.notify_outbox import SENT
from safety_hub.scenarios.actions import operate
from safety_hub.scenarios.expectations import check_expectations
from safety_hub.scenarios.loader import Scenario, load_scenario
from safety_hub.scenarios.recording import iter_batches, read_recording
from safety_hub.scenarios.report import (
    NotificationRow,
    ReplayResult,
    format_clock,
    timeline_row,
)
from safety_hub.settings import load_settings
from simulators.gateway import Publication
from simulators.world import OperatorAction, World

LineCallback = Callable[[str], None]


class _NullStorage:
    """Where the spooled lines go in a replay: to ``on_lines`` if given, else nowhere."""

    name = "replay"

    def __init__(self, on_lines: LineCallback | None) -> None:
        self.on_lines = on_lines
        self.lines = 0

    def write(self, lines: str) -> None:
        self.lines += lines.count("\n") + 1
        if self.on_lines is not None:
            self.on_lines(lines)

    def history(
        self,
        enterprise: str,
        tag: str,
        start_ms: int,
        end_ms: int,
        *,
        limit: int = 10_000,
        every_s: int | None = None,
    ) -> list[HistoryPoint]:
        return []

    def close(self) -> None:
        pass


class _ReplaySource:
    """The hub's message source in a replay: acks are no-ops, rejection reports are kept."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, bytes]] = []

    @property
    def connected(self) -> bool:
        return True

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        pass

    def ack(self, message: InboundMessage) -> None:
        pass

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if topic.endswith("/rejected"):
            self.reports.append((topic, payload))

    def publish_confirmed(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        return True

    def stop(self) -> None:
        pass


class _KeptSender:
    """The replay's notification sender: keeps each message, sends nothing (a replay never
    reaches a real contact point)."""

    def __init__(self) -> None:
        self.messages: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> None:
        self.messages.append(message)


class ReplayHub:
    """An in-process hub on a virtual clock, fed message by message (also used for recordings)."""

    def __init__(
        self,
        scenario_plant: Any,
        pack: Any,
        start_ms: int,
        data_dir: Path,
        on_lines: LineCallback | None = None,
        people: PeopleDirectory | None = None,
    ) -> None:
        self.clock = VirtualClock(start_ms)
        self.start_ms = start_ms
        # Always SQLite files in the replay's own temp dir: a replay runs on a virtual clock and
        # must never write into a shared state database the environment names.
        settings = load_settings(data_dir=data_dir, spool_sync="normal", state_url=None)
        self.storage = _NullStorage(on_lines)
        self.source = _ReplaySource()
        self.sent = _KeptSender()
        self.hub = Hub(
            settings,
            clock=self.clock,
            plant=scenario_plant,
            storage=Storage(self.storage, self.storage, "replay"),
            source=self.source,
            rules=pack,
            durable_engine=False,
            people=people,
            notification_sender=self.sent,
        )
        self.hub.ingest.attach(self.source)
        self.transitions: list[Transition] = []
        self.hub.alarms.service.subscribe(self.transitions.append)
        self.messages = 0
        self.readings = 0
        self._next_tick = start_ms

    def advance(self, now_ms: int) -> None:
        """Move the clock to ``now_ms``, ticking the timers once per second on the way."""
        while self._next_tick <= now_ms:
            self.clock.set(self._next_tick)
            self.hub.alarms.tick()
            if self.hub.notifications is not None:
                self.hub.notifications.dispatch()
            self._next_tick += 1000
        if now_ms > self.clock.now_ms():
            self.clock.set(now_ms)

    def deliver(self, now_ms: int, batch: list[tuple[str, bytes]]) -> None:
        """Messages received at ``now_ms``, processed as one ingest batch."""
        self.advance(now_ms)
        msgs = [InboundMessage(topic, payload, now_ms) for topic, payload in batch]
        self.hub.ingest.process(msgs)
        self.messages += len(msgs)
        spool = self.hub.spool
        batches = spool.peek(1_000_000)
        if batches:
            for b in batches:
                self.storage.write(b.lines)
                if not b.lines.startswith(ALARM_EVENT_MEASUREMENT):
                    self.readings += b.n
            spool.remove(batches)

    def notifications(self) -> list[NotificationRow]:
        """What was sent, oldest first, in scenario time."""
        runtime = self.hub.notifications
        if runtime is None:
            return []
        rows = runtime.outbox.rows(status=SENT, limit=1_000_000)
        out = [
            NotificationRow(
                t_ms=(row.done_ms or 0) - self.start_ms,
                alert=str(row.facts.get("alert")),
                enterprise=str(row.facts.get("enterprise")),
                tag=row.facts.get("tag"),
                zone=row.facts.get("zone"),
                hazard_source=str(row.facts.get("hazard_source") or ""),
                subject=str(row.facts.get("tag") or row.facts.get("zone") or ""),
                person_id=row.person_id,
                channel=row.contact.channel,
                kind=row.kind,
                notification_id=row.id,
            )
            for row in rows
        ]
        return sorted(out, key=lambda n: (n.t_ms, n.notification_id))

    def close(self) -> None:
        self.hub.stop(drain_timeout=0)


def replay(
    scenario: Scenario,
    *,
    on_lines: LineCallback | None = None,
    progress: Callable[[int, int], None] | None = None,
    people: PeopleDirectory | None = None,
) -> ReplayResult:
    """Run ``scenario`` through an in-process hub; ``on_lines`` receives the line protocol the
    hub's sink would write (readings and alarm events), ``progress(t_ms, duration_ms)`` is called
    about every simulated minute."""
    started = time.perf_counter()
    result = ReplayResult(scenario.name, scenario.path, scenario.start_ms, scenario.duration_ms)
    world = World(scenario)
    with tempfile.TemporaryDirectory(prefix="safety-hub-replay-") as tmp:
        rh = ReplayHub(
            scenario.plant, scenario.pack, scenario.start_ms, Path(tmp), on_lines, people
        )
        try:
            pending: list[tuple[str, bytes]] = []
            pending_at = scenario.start_ms
            next_progress = scenario.start_ms + 60_000
            for item in world.stream():
                if pending and item.at_ms != pending_at:
                    rh.deliver(pending_at, pending)
                    pending = []
                if progress is not None and item.at_ms >= next_progress:
                    progress(item.at_ms - scenario.start_ms, scenario.duration_ms)
                    next_progress += 60_000
                if isinstance(item, Publication):
                    pending.append((item.topic, item.payload))
                    pending_at = item.at_ms
                else:
                    rh.advance(item.at_ms)
                    _operate(rh, scenario, item, result.failures)
            if pending:
                rh.deliver(pending_at, pending)
            rh.advance(scenario.start_ms + scenario.duration_ms)
            service = rh.hub.alarms.service
            result.alarms = [a.as_json() for a in service.list(include_normal=True, limit=100_000)]
            result.floods = [f.as_json() for f in service.floods()]
            result.timeline = [timeline_row(t, scenario.start_ms) for t in rh.transitions]
            result.notifications = rh.notifications()
            result.notifications_on = rh.hub.notifications is not None
            result.messages = rh.messages
            result.readings = rh.readings
            _rejections(scenario, world, rh.source.reports, result)
        finally:
            rh.close()
    result.notes = world.notes
    check_expectations(scenario, result)
    result.wall_s = time.perf_counter() - started
    return result


def _rejections(
    scenario: Scenario, world: World, reports: list[tuple[str, bytes]], result: ReplayResult
) -> None:
    """The hub's rejection reports: a failure each, except an injected reading's rejection that
    its ``expect_rejected`` names; an injected reading expected rejected and accepted fails."""
    rejected: set[tuple[str, int]] = set()
    for _topic, payload in reports:
        report = json.loads(payload)
        items = report.get("rejected", [])
        if not items:
            continue  # only skewed timestamps, accepted (docs/mqtt-contract.md)
        result.rejected += len(items)
        topic = str(report.get("topic"))
        key = ([*topic.split("/"), "", "", ""][2], report.get("seq"))
        injected = world.injected.get(key)
        texts = [f"{r.get('reason')}: {r.get('detail', '')}" for r in items]
        if injected is None:
            result.failures.append(
                f"{scenario.path}: the hub rejected {len(items)} reading(s) of {topic}: "
                + "; ".join(r.get("detail", "") for r in items[:3])
            )
            continue
        index, event = injected
        rejected.add(key)
        wanted = event.expect_rejected
        if wanted is None or not any(wanted.lower() in x.lower() for x in texts):
            hint = "" if wanted is None else f"; expected a rejection containing {wanted!r}"
            result.failures.append(
                f"{scenario.where(('timeline', index))}: the hub rejected the reading: "
                + "; ".join(texts)
                + hint
            )
    for key, (index, event) in world.injected.items():
        if event.expect_rejected is not None and key not in rejected:
            result.failures.append(
                f"{scenario.where(('timeline', index))}: expected the hub to reject the reading "
                f"({event.expect_rejected!r}); it accepted it"
            )


def run_scenario(source: str | Path) -> ReplayResult:
    """Load a scenario (a file path, or YAML text) and replay it."""
    return replay(load_scenario(source))


# -- operator actions --------------------------------------------------------------------------


def _operate(
    rh: ReplayHub, scenario: Scenario, action: OperatorAction, failures: list[str]
) -> None:
    where = scenario.where(("timeline", action.index))
    t = format_clock(action.at_ms - scenario.start_ms)
    with rh.hub.alarms.locked():
        problems = operate(rh.hub.alarms.service, scenario, action.event, action.at_ms)
    failures.extend(f"{where}: at {t}, {p}" for p in problems)


def replay_recording(
    path: Path,
    plant: Any,
    pack: Any,
    *,
    on_lines: LineCallback | None = None,
) -> ReplayResult:
    """Play a recording (``safety_hub.scenarios.recording``) into an in-process hub."""
    started = time.perf_counter()
    _head, messages = read_recording(path)
    start = messages[0].t_ms if messages else 0
    end = messages[-1].t_ms if messages else 0
    result = ReplayResult(path.name, str(path), start, end - start)
    with tempfile.TemporaryDirectory(prefix="safety-hub-replay-") as tmp:
        rh = ReplayHub(plant, pack, start, Path(tmp), on_lines)
        try:
            for at, batch in iter_batches(messages):
                rh.deliver(at, [(m.topic, m.payload) for m in batch])
            rh.advance(end)
            service = rh.hub.alarms.service
            result.alarms = [a.as_json() for a in service.list(include_normal=True, limit=100_000)]
            result.floods = [f.as_json() for f in service.floods()]
            result.timeline = [timeline_row(t, start) for t in rh.transitions]
            result.messages, result.readings = rh.messages, rh.readings
            for _topic, payload in rh.source.reports:
                result.rejected += len(json.loads(payload).get("rejected", ()))
        finally:
            rh.close()
    result.wall_s = time.perf_counter() - started
    return result
