"""Rule unit tests in the spirit of ``promtool test rules`` (format in docs/rules.md).

A test file names a plant (default: the bundled sample park) and rule files, and holds tests:
input series per tag (``"0 0 0.7 0.7 _ 0.1:bad"`` every ``interval``), gateway statuses, and at
evaluation times the alarms expected to be active. The runner drives a ``RuleEngine`` on a
virtual clock through the events in time order and compares, at each evaluation time, the
active instances of the named alert with the expected list. It also fails a test when an
instance is raised twice without a clear in between, or cleared without being raised.

``main_check(paths)`` and ``main_test(paths)`` are the bodies of ``safety-hub rules check`` and
``safety-hub rules test``: they print results and return the exit code (0 ok, 1 failed).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainValidator

from safety_hub.alarms.model import Condition
from safety_hub.clock import VirtualClock
from safety_hub.errors import LoadError
from safety_hub.ingest.telemetry import Reading
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules.engine import RuleEngine
from safety_hub.rules.loader import load_rules
from safety_hub.rules.model import RulePack
from safety_hub.rules.schema import Duration, format_duration, parse_duration
from safety_hub.yamlfile import (
    ChainNames,
    Located,
    Locator,
    YamlPath,
    YamlSyntaxError,
    original_index,
    parse_yaml,
    validate_pruned,
)

TEST_OWNERS = ChainNames(
    {
        "tests": ("test", "name"),
        "input_series": ("series", "tag"),
        "alert_rule_test": ("alert_rule_test", "alertname"),
    }
)
_PRUNABLE = frozenset({"tests"})
_QUALITIES = ("good", "bad", "uncertain")
_EXPAND = re.compile(
    r"(?P<a>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?:(?P<op>[-+])(?P<b>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))?x(?P<n>\d+)"
)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")

Sample = tuple[float, str] | None
"""(value, quality), or None for no sample at that step"""


def parse_series(text: str) -> list[Sample]:
    """``"0 1+1x2 _ 5:bad _x2 3x1"`` -> samples; raises ``ValueError`` naming the bad token.

    ``a+bxn`` / ``a-bxn`` expand to the n+1 values a, a±b, ..., a±n·b; ``axn`` repeats a n+1
    times; ``_`` is a step without a sample and ``_xn`` n such steps; ``:bad``, ``:uncertain``
    or ``:good`` after a value or an expansion sets the quality (default good)."""
    out: list[Sample] = []
    for token in text.split():
        body, _, quality = token.partition(":")
        quality = quality or "good"
        if quality not in _QUALITIES:
            raise ValueError(f"series token {token!r}: quality must be good, bad or uncertain")
        if body == "_":
            out.append(None)
            continue
        if body.startswith("_x") and body[2:].isdigit():
            out.extend([None] * int(body[2:]))
            continue
        match = _EXPAND.fullmatch(body)
        if match is not None:
            a = float(match.group("a"))
            b = float(match.group("b") or 0.0) * (-1 if match.group("op") == "-" else 1)
            out.extend((a + i * b, quality) for i in range(int(match.group("n")) + 1))
            continue
        if _NUMBER.fullmatch(body):
            out.append((float(body), quality))
            continue
        raise ValueError(
            f"series token {token!r}: use a number, a+bxn, a-bxn, axn, _ or _xn, optionally "
            "with :bad or :uncertain"
        )
    return out


def _series(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError('must be a text like "0 0 5 5 12 _ 3:bad"')
    parse_series(value)
    return value


def _signed_duration(value: Any) -> int:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])
    return parse_duration(value)


SeriesText = Annotated[str, PlainValidator(_series)]
SignedDuration = Annotated[int, PlainValidator(_signed_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SeriesModel(_Model):
    enterprise: str | None = None
    tag: str
    values: SeriesText
    interval: Duration | None = None
    """default: the test's interval"""
    start: Duration = 0
    """time of the first sample"""
    ts_offset: SignedDuration = 0
    """reading ts minus hub receive time: -2m is a gateway clock 2 minutes behind (or late data)"""


class StatusModel(_Model):
    enterprise: str | None = None
    at: Duration
    online: bool


class ExpectedAlert(_Model):
    enterprise: str | None = None
    tag: str | None = None
    zone: str | None = None
    hazard_source: str | None = None
    priority: Literal["critical", "high", "medium", "low"] | None = None
    value: float | None = None
    labels: dict[str, str] = {}


class AlertRuleTest(_Model):
    eval_time: Duration
    alertname: str
    exp_alerts: list[ExpectedAlert] = []


class RuleTestCase(_Model):
    name: Annotated[str, Field(min_length=1)]
    enterprise: str | None = None
    """default enterprise of the series, statuses and expected alerts"""
    interval: Duration = 10_000
    input_series: list[SeriesModel] = []
    gateway_status: list[StatusModel] = []
    alert_rule_test: list[AlertRuleTest] = []
    restart_at: Duration | None = None
    """snapshot the engine at this time and go on with an engine restored from it"""


class RuleTestFile(_Model):
    rule_files: Annotated[list[str], Field(min_length=1)]
    plant: str | None = None
    start: Annotated[AwareDatetime, Field(strict=False)] | None = None
    """time 0 of every test (default: the epoch)"""
    tests: list[RuleTestCase]


@dataclass
class RuleTestResult:
    """What running one or more test files found."""

    files: list[str] = field(default_factory=list)
    tests: int = 0
    failures: list[str] = field(default_factory=list)
    """load errors and failed expectations, each a ``file:line:col: ...`` line"""

    @property
    def ok(self) -> bool:
        return not self.failures

    def merge(self, other: RuleTestResult) -> None:
        self.files.extend(other.files)
        self.tests += other.tests
        self.failures.extend(other.failures)


def run_rule_tests(path: str | Path) -> RuleTestResult:
    """Run one test file, or every ``*.yaml`` test file of a directory (not recursive, so that
    test plants can live in a sub-directory)."""
    root = Path(path)
    result = RuleTestResult()
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
        if not files:
            result.failures.append(f"{root}: no test files (*.yaml) in the directory")
        for file in files:
            result.merge(_run_file(file))
        return result
    return _run_file(root)


def _run_file(path: Path) -> RuleTestResult:
    file = str(path)
    result = RuleTestResult(files=[file])
    try:
        doc, loc, index_map = _load_test_file(path)
    except LoadError as exc:
        result.failures.extend(exc.errors)
        return result
    try:
        plant = load_plant(_relative(path, doc.plant) if doc.plant else default_plant_path())
    except LoadError as exc:
        line, col = loc.pos(("plant",))
        result.failures.append(f"{file}:{line}:{col}: cannot load the plant:")
        result.failures.extend(f"  {e}" for e in exc.errors)
        return result
    try:
        pack = load_rules([_relative(path, f) for f in doc.rule_files], plant)
    except LoadError as exc:
        line, col = loc.pos(("rule_files",))
        result.failures.append(f"{file}:{line}:{col}: cannot load the rule files:")
        result.failures.extend(f"  {e}" for e in exc.errors)
        return result
    start_ms = 0 if doc.start is None else round(doc.start.timestamp() * 1000)
    for i, case in enumerate(doc.tests):
        t_path: YamlPath = ("tests", original_index(index_map, ("tests",), i))
        result.tests += 1
        _Run(pack, plant, start_ms, case, t_path, loc, result.failures).run()
    return result


def _relative(test_file: Path, target: str) -> Path:
    p = Path(target)
    return p if p.is_absolute() else test_file.parent / p


def _load_test_file(path: Path) -> tuple[RuleTestFile, Locator, dict[YamlPath, list[int]]]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(file, [f"{file}: cannot read: {exc}"]) from None
    try:
        parsed = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise LoadError(file, [f"{file}:{exc.line}:{exc.col}: {exc.message}"]) from None
    loc = Locator(file, parsed, RuleTestFile, TEST_OWNERS)
    errors: list[Located] = [loc.plain(line, col, msg) for line, col, msg in parsed.problems]
    if parsed.data is None:
        raise LoadError(file, [f"{file}:1:1: the file is empty (expected rule_files: and tests:)"])
    doc, index_map = validate_pruned(RuleTestFile, parsed.data, loc, _PRUNABLE, errors)
    if errors or not isinstance(doc, RuleTestFile):
        raise LoadError(file, [text for *_, text in sorted(errors)])
    return doc, loc, index_map


class _Run:
    """One test case: events in time order through an engine, expectations checked."""

    def __init__(
        self,
        pack: RulePack,
        plant: Plant,
        start_ms: int,
        case: RuleTestCase,
        path: YamlPath,
        loc: Locator,
        failures: list[str],
    ) -> None:
        self.pack = pack
        self.plant = plant
        self.start = start_ms
        self.case = case
        self.path = path
        self.loc = loc
        self.failures = failures
        self.active: dict[str, Condition] = {}
        self.scope_tags: set[tuple[str, str]] = set()
        self.scope_enterprises: set[str] = set()

    def fail(self, sub: YamlPath, message: str) -> None:
        self.failures.append(self.loc.at((*self.path, *sub), message)[2])

    def _enterprise(self, given: str | None, sub: YamlPath) -> str | None:
        enterprise = given or self.case.enterprise
        if enterprise is None:
            self.fail(sub, "enterprise is not given here nor on the test")
        elif enterprise not in self.plant.enterprises:
            self.fail(sub, f"enterprise {enterprise!r} is not in the plant")
            return None
        return enterprise

    def run(self) -> None:
        case = self.case
        readings: dict[int, list[Reading]] = {}
        statuses: dict[int, list[tuple[str, bool]]] = {}
        for i, series in enumerate(case.input_series):
            sub: YamlPath = ("input_series", i)
            enterprise = self._enterprise(series.enterprise, sub)
            if enterprise is None:
                return
            if (enterprise, series.tag) not in self.plant.tags:
                self.fail((*sub, "tag"), f"tag {enterprise}/{series.tag} is not in the plant")
                return
            self.scope_tags.add((enterprise, series.tag))
            self.scope_enterprises.add(enterprise)
            step = series.interval if series.interval is not None else case.interval
            for n, sample in enumerate(parse_series(series.values)):
                if sample is None:
                    continue
                at = series.start + n * step
                reading = Reading(
                    enterprise, series.tag, self.start + at + series.ts_offset, *sample
                )
                readings.setdefault(at, []).append(reading)
        for i, status in enumerate(case.gateway_status):
            enterprise = self._enterprise(status.enterprise, ("gateway_status", i))
            if enterprise is None:
                return
            self.scope_enterprises.add(enterprise)
            statuses.setdefault(status.at, []).append((enterprise, status.online))
        checks: dict[int, list[int]] = {}
        for i, check in enumerate(case.alert_rule_test):
            if check.alertname not in self.pack:
                self.fail(
                    ("alert_rule_test", i, "alertname"),
                    f"alertname {check.alertname!r} is not an alert of the rule files",
                )
                return
            checks.setdefault(check.eval_time, []).append(i)

        clock = VirtualClock(self.start)
        engine = RuleEngine(self.pack, self.plant, clock)
        times = sorted(
            {
                *readings,
                *statuses,
                *checks,
                *([case.restart_at] if case.restart_at is not None else []),
            }
        )
        for at in times:
            now = self.start + at
            clock.set(now)
            self.apply(engine.advance(now), at)
            for enterprise, online in statuses.get(at, ()):
                self.apply(engine.on_gateway_status(enterprise, online, now), at)
            if at in readings:
                self.apply(engine.on_readings(readings[at], now), at)
            for index in checks.get(at, ()):
                self.check(index)
            if at == case.restart_at:
                snapshot = json.loads(json.dumps(engine.snapshot()))
                engine = RuleEngine.restore(self.pack, self.plant, clock, snapshot)

    def apply(self, conditions: Iterable[Condition], at: int) -> None:
        for c in conditions:
            if c.active:
                if c.key in self.active:
                    self.fail((), f"at {format_duration(at)}: {c.key} raised twice without a clear")
                self.active[c.key] = c
            elif self.active.pop(c.key, None) is None:
                self.fail((), f"at {format_duration(at)}: {c.key} cleared but it was not raised")

    def in_scope(self, c: Condition) -> bool:
        if c.tag is not None:
            return (c.enterprise, c.tag) in self.scope_tags
        if c.zone is not None:
            zone = self.plant.zones.get((c.enterprise, c.zone))
            return zone is not None and any((c.enterprise, t) in self.scope_tags for t in zone.tags)
        return c.enterprise in self.scope_enterprises

    def check(self, index: int) -> None:
        check = self.case.alert_rule_test[index]
        sub: YamlPath = ("alert_rule_test", index)
        actual = [
            c for c in self.active.values() if c.alert == check.alertname and self.in_scope(c)
        ]
        head = f"at {format_duration(check.eval_time)}, {check.alertname}"
        for j, exp in enumerate(check.exp_alerts):
            enterprise = exp.enterprise or self.case.enterprise
            found = next((c for c in actual if _matches(exp, enterprise, c)), None)
            if found is None:
                self.fail(
                    (*sub, "exp_alerts", j),
                    f"{head}: expected {_show_expected(exp, enterprise)} to be active; active: "
                    + (", ".join(_show(c) for c in actual) or "none"),
                )
                continue
            actual.remove(found)
            problems = _compare(exp, found)
            if problems:
                self.fail((*sub, "exp_alerts", j), f"{head} {_show(found)}: {'; '.join(problems)}")
        for c in actual:
            self.fail(sub, f"{head}: unexpected active alarm {_show(c)}")


def _matches(exp: ExpectedAlert, enterprise: str | None, c: Condition) -> bool:
    if enterprise is not None and c.enterprise != enterprise:
        return False
    if exp.tag is not None:
        return c.tag == exp.tag
    if exp.zone is not None:
        return c.tag is None and c.zone == exp.zone
    if exp.hazard_source is not None:
        return c.tag is None and c.zone is None and c.hazard_source == exp.hazard_source
    return c.tag is None and c.zone is None


def _compare(exp: ExpectedAlert, c: Condition) -> list[str]:
    problems: list[str] = []
    if exp.priority is not None and c.priority != exp.priority:
        problems.append(f"priority {c.priority}, expected {exp.priority}")
    if exp.value is not None and (
        c.value is None or not math.isclose(c.value, exp.value, rel_tol=1e-9, abs_tol=1e-12)
    ):
        problems.append(f"value {c.value}, expected {exp.value:g}")
    for key, want in exp.labels.items():
        got = c.labels.get(key)
        if got != want:
            problems.append(f"label {key}={got!r}, expected {want!r}")
    return problems


def _show(c: Condition) -> str:
    subject = c.tag or c.zone or c.hazard_source or c.enterprise
    return f"{c.enterprise}/{subject}"


def _show_expected(exp: ExpectedAlert, enterprise: str | None) -> str:
    subject = exp.tag or exp.zone or exp.hazard_source or enterprise or "?"
    return f"{enterprise or '*'}/{subject}"


# command-line bodies -------------------------------------------------------------------------


def main_check(
    paths: Sequence[str | Path], plant_path: str | Path | None = None, out: TextIO | None = None
) -> int:
    """``safety-hub rules check``: load each rule file or directory against the plant
    (default: the sample park); print what was found, warnings and every error; 0 when all
    load, else 1."""
    stream = out or sys.stdout
    try:
        plant = load_plant(plant_path or default_plant_path())
    except LoadError as exc:
        print(f"cannot load the plant: {exc}", file=stream)
        return 1
    failed = False
    for path in paths:
        print(f"Checking {path}", file=stream)
        try:
            pack = load_rules(path, plant)
        except LoadError as exc:
            failed = True
            print(f"  FAILED: {len(exc.errors)} error(s):", file=stream)
            for error in exc.errors:
                print(f"{error}", file=stream)
            continue
        for warning in pack.warnings:
            print(f"warning: {warning}", file=stream)
        print(f"  SUCCESS: {len(pack)} rules found", file=stream)
    return 1 if failed else 0


def main_test(paths: Sequence[str | Path], out: TextIO | None = None) -> int:
    """``safety-hub rules test``: run each test file or directory of test files; print the
    failures; 0 when every test passes, else 1."""
    stream = out or sys.stdout
    total = RuleTestResult()
    for path in paths:
        print(f"Unit testing: {path}", file=stream)
        result = run_rule_tests(path)
        total.merge(result)
        if result.ok:
            print(f"  SUCCESS: {result.tests} test(s) in {len(result.files)} file(s)", file=stream)
        else:
            print(f"  FAILED: {len(result.failures)} problem(s):", file=stream)
            for failure in result.failures:
                print(failure, file=stream)
    return 0 if total.ok else 1
