"""Notification policy tests (``safety-hub notify test``; format in docs/notifications.md,
"Policy tests"): an alarm, what happens to it and when, and who must be told when.

Each test drives a real alarm service (in memory, on a virtual clock, ticked once a second: shelve
expiry, the disposal limits of docs/alarms.md) through its ``events`` (raise, clear, ack, shelve,
reset, dispose), feeds every transition to the planner, and keeps what would
be sent by ``until``: a notification counts as sent at its due time unless a cancellation came
first (a cancellation at the same moment as a due time comes after the send). The list must
equal ``expect`` (order free). Summaries of floods are the dispatcher's business, not tested
here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from safety_hub.alarms import AlarmJournal, AlarmService, Condition, Transition
from safety_hub.clock import VirtualClock
from safety_hub.errors import LoadError
from safety_hub.notify.contacts import Directory
from safety_hub.notify.loader import Known, load_policies
from safety_hub.notify.planner import Planner, Scheduled
from safety_hub.notify.schema import Duration
from safety_hub.rules.schema import ALARM_CLASSES, PRIORITIES, format_duration
from safety_hub.yamlfile import (
    ChainNames,
    YamlPath,
    YamlSyntaxError,
    original_index,
    parse_document,
)

TEST_OWNERS = ChainNames({"tests": ("test", "name")})
DEFAULT_START = "2026-01-05T10:00:00+08:00"


def _choice(allowed: Sequence[str]) -> PlainValidator:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return PlainValidator(check)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class AlarmModel(_Model):
    alert: str
    enterprise: str
    tag: str | None = None
    hazard_source: str = ""
    priority: Annotated[str, _choice(PRIORITIES)]
    alarm_class: Annotated[str, _choice(ALARM_CLASSES)] = Field(alias="class")
    value: float | None = None
    setpoint: float | None = None
    summary: str = ""
    summary_en: str = ""


class EventModel(_Model):
    at: Duration
    do: Literal["raise", "clear", "ack", "shelve", "reset", "dispose"]
    duration: Duration = Field(default=3_600_000, alias="for")


class ExpectModel(_Model):
    at: Duration
    person: str
    channel: str | None = None
    kind: str | None = None


class CaseModel(_Model):
    name: str
    alarm: AlarmModel
    events: list[EventModel] = Field(min_length=1)
    until: Duration
    expect: list[ExpectModel] = []


class PolicyTestFile(_Model):
    policy_files: list[str] = Field(min_length=1)
    start: datetime | None = None
    tests: list[CaseModel]


@dataclass
class PolicyTestResult:
    files: list[str] = field(default_factory=list)
    tests: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def run_policy_tests(path: str | Path, directory: Directory, known: Known) -> PolicyTestResult:
    """Run one test file, or every ``*.yaml`` of a directory (not recursive)."""
    root = Path(path)
    result = PolicyTestResult()
    files = [root]
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
        if not files:
            result.failures.append(f"{root}: no test files (*.yaml) in the directory")
    for file in files:
        _run_file(file, directory, known, result)
    return result


def _run_file(path: Path, directory: Directory, known: Known, result: PolicyTestResult) -> None:
    file = str(path)
    result.files.append(file)
    try:
        doc = parse_document(
            file,
            path.read_text(encoding="utf-8"),
            PolicyTestFile,
            TEST_OWNERS,
            frozenset({"tests"}),
            empty="the file is empty (expected policy_files: and tests:)",
            discriminator=None,
        )
    except (OSError, UnicodeDecodeError) as exc:
        result.failures.append(f"{file}: cannot read: {exc}")
        return
    except YamlSyntaxError as exc:
        result.failures.append(exc.at(file))
        return
    result.failures.extend(text for *_, text in doc.errors)
    if doc.model is None or doc.errors:
        return
    model = doc.model
    try:
        policies = load_policies([path.parent / f for f in model.policy_files], known)
    except LoadError as exc:
        line, col = doc.loc.pos(("policy_files",))
        result.failures.append(f"{file}:{line}:{col}: cannot load the policy files:")
        result.failures.extend(f"  {e}" for e in exc.errors)
        return
    start = model.start or datetime.fromisoformat(DEFAULT_START)
    start_ms = round(start.timestamp() * 1000)
    planner = Planner(policies, directory)
    for i, case in enumerate(model.tests):
        t_path: YamlPath = ("tests", original_index(doc.index_map, ("tests",), i))
        result.tests += 1
        for problem in _check(case, simulate(case, planner, start_ms), start_ms):
            result.failures.append(doc.loc.at(t_path, problem)[2])


def simulate(case: CaseModel, planner: Planner, start_ms: int) -> list[Scheduled]:
    """What would be sent by ``until`` for the case's events."""
    clock = VirtualClock(start_ms)
    service = AlarmService(AlarmJournal(":memory:"), clock, {})
    pending: dict[str, Scheduled] = {}
    sent: list[Scheduled] = []

    def flush(now: int) -> None:
        for key, item in sorted(pending.items(), key=lambda kv: kv[1].due_ms):
            if item.due_ms <= now:
                sent.append(pending.pop(key))

    def listener(t: Transition) -> None:
        plan = planner.plan(t)
        for cancel in plan.cancel:
            for key, item in list(pending.items()):
                if item.alarm_id != cancel.alarm_id or (cancel.ack_only and not item.cancel_on_ack):
                    continue
                if cancel.annunciation is not None and item.annunciation != cancel.annunciation:
                    continue
                if cancel.before is not None and item.annunciation >= cancel.before:
                    continue
                del pending[key]
        for item in plan.schedule:
            if item.notification_id not in pending and all(
                s.notification_id != item.notification_id for s in sent
            ):
                pending[item.notification_id] = item

    service.subscribe(listener)
    a = case.alarm
    key = f"{a.alert}|{a.enterprise}|{a.tag or ''}"

    def advance(to_ms: int) -> None:
        """Tick the service once a second up to ``to_ms`` (shelve expiry, disposal limits)."""
        at = clock.now_ms()
        while at < to_ms:
            at = min(at + 1000, to_ms)
            flush(at)
            clock.set(at)
            service.tick()
        flush(to_ms)

    for event in sorted(case.events, key=lambda e: e.at):
        now = start_ms + event.at
        advance(now)
        alarm = service.find(key)
        if event.do in ("raise", "clear"):
            service.apply(
                Condition(
                    key=key,
                    alert=a.alert,
                    active=event.do == "raise",
                    ts_ms=now,
                    enterprise=a.enterprise,
                    hazard_source=a.hazard_source,
                    tag=a.tag,
                    zone=None,
                    priority=a.priority,
                    alarm_class=a.alarm_class,
                    latch=a.alarm_class in ("gas", "sis"),
                    value=a.value,
                    setpoint=a.setpoint,
                    summary=a.summary,
                    summary_en=a.summary_en,
                )
            )
        elif alarm is not None and event.do == "ack":
            service.acknowledge(alarm.id, "policy-test")
        elif alarm is not None and event.do == "shelve":
            service.shelve(alarm.id, "policy-test", "policy test", now + event.duration)
        elif alarm is not None and event.do == "reset":
            service.reset(alarm.id, "policy-test")
        elif alarm is not None and event.do == "dispose":
            service.dispose(alarm.id, "policy-test", "other", "policy test")
    advance(start_ms + case.until)
    return sent


def _show(at_ms: int, person: str, channel: str | None, kind: str | None) -> str:
    extra = "".join(f" {x}" for x in (channel, kind) if x)
    return f"{format_duration(at_ms)} {person}{extra}"


def _check(case: CaseModel, sent: list[Scheduled], start_ms: int) -> list[str]:
    left = list(sent)
    problems: list[str] = []
    for exp in case.expect:
        found = next(
            (
                s
                for s in left
                if s.due_ms - start_ms == exp.at
                and s.person_id == exp.person
                and exp.channel in (None, s.channel)
                and exp.kind in (None, s.kind)
            ),
            None,
        )
        if found is None:
            problems.append(
                f"expected {_show(exp.at, exp.person, exp.channel, exp.kind)}: not sent"
            )
        else:
            left.remove(found)
    for s in left:
        problems.append(f"unexpected {_show(s.due_ms - start_ms, s.person_id, s.channel, s.kind)}")
    return problems


def main_test(
    paths: Sequence[str | Path], directory: Directory, known: Known, out: TextIO | None = None
) -> int:
    """``safety-hub notify test``: 0 when every test passes, else 1."""
    stream = out or sys.stdout
    failed = False
    for path in paths:
        print(f"Testing notification policies: {path}", file=stream)
        result = run_policy_tests(path, directory, known)
        if result.ok:
            print(f"  SUCCESS: {result.tests} test(s) in {len(result.files)} file(s)", file=stream)
            continue
        failed = True
        print(f"  FAILED: {len(result.failures)} problem(s):", file=stream)
        for failure in result.failures:
            print(failure, file=stream)
    return 1 if failed else 0
