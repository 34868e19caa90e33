"""Load and validate rule packs against a plant.

Like the plant registry, loading tells everything at once: YAML (with the position of every key),
then the pydantic models (a rule with an error is set aside and the rest validated again), then
the checks that need the plant or several rules:

- alert names CamelCase and unique across all files of the pack;
- ``labels.priority`` and ``labels.class`` present and valid, ``annotations.summary`` and
  ``summary_en`` present, ``{{placeholders}}`` known;
- a numeric setpoint within the GB/T 50493 limits for every selected gas detector (the rule's
  ``level`` label picks the level-1 or level-2 limit; without one, level 2);
- the on-delay of a gas rule ≤ 60 s (GB 16808); detector-fault rules on gas detectors (stale,
  bad quality, out of range) raise within 100 s;
- ``compound`` and ``suppressed_by`` name existing alerts (no cycles);
- a selector that matches no tag is a warning (``RulePack.warnings``), not an error.

Every message is ``file:line:col: group "g", rule "Alert": message``; they are raised together as
``LoadError(path, errors)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from safety_hub.errors import LoadError
from safety_hub.registry import Plant, TagInfo
from safety_hub.registry.checks import (
    GAS_KINDS,
    LEL_LIMITS,
    OXYGEN_HIGH_MAX,
    OXYGEN_LOW_MIN,
    lel_excess,
    num,
    over_limit,
    toxic_excess,
)
from safety_hub.rules.model import (
    SIS_KIND_OF_STATE,
    Rule,
    RulePack,
    selected_enterprises,
    selected_tags,
    selects,
)
from safety_hub.rules.schema import (
    ALARM_CLASSES,
    ENTERPRISE_TYPES,
    PLANT_STATES,
    PRIORITIES,
    TEMPLATE_FIELDS,
    ClockSkew,
    Compound,
    LinkDown,
    RuleFileModel,
    RuleModel,
    SisState,
    Stale,
    Threshold,
    VotingCondition,
    format_duration,
    is_alert_name,
)
from safety_hub.yamlfile import (
    ChainNames,
    Located,
    Locator,
    YamlPath,
    YamlSyntaxError,
    original_index,
    parse_document,
    show,
)

RULE_OWNERS = ChainNames({"groups": ("group", "name"), "rules": ("rule", "alert")})
_PRUNABLE = frozenset({"groups", "rules"})
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

ON_DELAY_MAX_MS = 60_000
"""GB 16808: a gas alarm's on-delay is at most 60 s; the alarm service takes no longer on-delay
on any alarm (``Condition.on_delay_s`` ≤ 60)."""
FAULT_RAISE_MAX_MS = 100_000
"""GB/T 50493 / STANDARDS.md: detector faults and missing data are raised within 100 s."""
VALUE_TYPES = frozenset({"threshold", "rate_of_change", "voting"})
"""Condition types that judge a concentration on a gas detector (GB 16808 on-delay)."""


def load_rules(path: str | Path | Sequence[str | Path], plant: Plant) -> RulePack:
    """Load one rule file, every ``*.yaml``/``*.yml`` file of a directory (not recursive, in
    name order), or a list of such paths as one pack, and validate it against ``plant``; raise
    ``LoadError`` listing every problem as ``file:line:col: message``."""
    roots = [Path(path)] if isinstance(path, str | Path) else [Path(p) for p in path]
    name = ", ".join(str(r) for r in roots)
    files: list[Path] = []
    errors: list[str] = []
    for root in roots:
        if root.is_dir():
            found = sorted(
                p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml")
            )
            if not found:
                errors.append(f"{root}: no rule files (*.yaml) in the directory")
            files.extend(found)
        else:
            files.append(root)
    sources: list[tuple[str, str]] = []
    for file in files:
        try:
            sources.append((str(file), file.read_text(encoding="utf-8")))
        except OSError as exc:
            errors.append(f"{file}: cannot read: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            errors.append(f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}")
    if errors:
        raise LoadError(name, errors)
    return parse_rules(sources, plant, name)


def parse_rules(sources: Sequence[tuple[str, str]], plant: Plant, path: str = "") -> RulePack:
    """Like ``load_rules`` for texts already in memory: ``sources`` are (file name, text)."""
    checker = _Checker(plant)
    for file, text in sources:
        checker.add_file(file, text)
    checker.check_pack()
    if checker.errors:
        ordered = sorted(checker.errors, key=lambda e: (e.file_index, e.line, e.col, e.text))
        raise LoadError(path or ", ".join(f for f, _ in sources), [e.text for e in ordered])
    warnings = sorted(checker.warnings, key=lambda e: (e.file_index, e.line, e.col, e.text))
    return RulePack(
        rules=tuple(r.rule for r in checker.rules),
        files=tuple(f for f, _ in sources),
        warnings=tuple(w.text for w in warnings),
    )


@dataclass(frozen=True, slots=True)
class _Message:
    file_index: int
    line: int
    col: int
    text: str


@dataclass(slots=True)
class _Loaded:
    rule: Rule
    model: RuleModel
    path: YamlPath
    loc: Locator
    file_index: int


class _Checker:
    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.errors: list[_Message] = []
        self.warnings: list[_Message] = []
        self.rules: list[_Loaded] = []
        self.names: set[str] = set()
        """every alert name written in the files, valid rule or not"""
        self._first: dict[str, str] = {}
        self._duplicates: set[tuple[int, YamlPath]] = set()
        self._files = 0

    # messages ------------------------------------------------------------------------------

    def _add(self, out: list[_Message], index: int, located: Located) -> None:
        line, col, text = located
        out.append(_Message(index, line, col, text))

    def error(self, item: _Loaded, sub: YamlPath, message: str) -> None:
        self._add(self.errors, item.file_index, item.loc.at((*item.path, *sub), message))

    def warn(self, item: _Loaded, sub: YamlPath, message: str) -> None:
        self._add(self.warnings, item.file_index, item.loc.at((*item.path, *sub), message))

    # pass 1 and 2: YAML and the models -----------------------------------------------------

    def add_file(self, file: str, text: str) -> None:
        index = self._files
        self._files += 1
        try:
            document = parse_document(
                file,
                text,
                RuleFileModel,
                RULE_OWNERS,
                _PRUNABLE,
                empty="the file is empty (expected groups:)",
            )
        except YamlSyntaxError as exc:
            self.errors.append(_Message(index, exc.line, exc.col, exc.at(file)))
            return
        loc, doc, index_map = document.loc, document.model, document.index_map
        for located in document.errors:
            self._add(self.errors, index, located)
        self._names(index, loc, document.data)
        if doc is None:
            return
        for gi, group in enumerate(doc.groups):
            g_path: YamlPath = ("groups", original_index(index_map, ("groups",), gi))
            for ri, model in enumerate(group.rules):
                r_path = (*g_path, "rules", original_index(index_map, (*g_path, "rules"), ri))
                self._add_rule(file, index, loc, group.name, r_path, model)

    def _names(self, index: int, loc: Locator, data: object) -> None:
        """Alert names as written, so that a rule set aside for a type error still counts for
        duplicates and references (no misleading "unknown alert" about it)."""
        groups = data.get("groups") if isinstance(data, dict) else None
        for gi, group in enumerate(groups if isinstance(groups, list) else ()):
            rules = group.get("rules") if isinstance(group, dict) else None
            for ri, rule in enumerate(rules if isinstance(rules, list) else ()):
                name = rule.get("alert") if isinstance(rule, dict) else None
                if not isinstance(name, str):
                    continue
                path: YamlPath = ("groups", gi, "rules", ri, "alert")
                line, col = loc.pos(path)
                first = self._first.get(name)
                if first is None:
                    self._first[name] = f"{loc.file}:{line}:{col}"
                    self.names.add(name)
                    continue
                self._duplicates.add((index, path[:-1]))
                self._add(
                    self.errors,
                    index,
                    loc.at(path, f"duplicate alert {show(name)} (first at {first})"),
                )

    def _add_rule(
        self,
        file: str,
        index: int,
        loc: Locator,
        group: str,
        path: YamlPath,
        model: RuleModel,
    ) -> None:
        line, col = loc.pos((*path, "alert"))
        level_text = model.labels.get("level")
        level = int(level_text) if level_text is not None and level_text.isdigit() else None
        rule = Rule(
            alert=model.alert,
            group=group,
            file=file,
            line=line,
            col=col,
            select=model.select,
            condition=model.condition,
            latch=model.latch,
            labels=dict(model.labels),
            annotations=dict(model.annotations),
            suppressed_by=model.suppressed_by,
            priority=model.labels.get("priority", "low"),
            alarm_class=model.labels.get("class", "system"),
            level=level,
        )
        if (index, path) not in self._duplicates:
            self.rules.append(_Loaded(rule, model, path, loc, index))

    # pass 3: the checks that need the plant or the whole pack ------------------------------

    def check_pack(self) -> None:
        for item in self.rules:
            self._check_rule(item)
        self._check_references()

    def _check_rule(self, item: _Loaded) -> None:
        model = item.model
        if not is_alert_name(model.alert):
            self.error(
                item,
                ("alert",),
                f"alert name {show(model.alert)} must be CamelCase: an upper-case letter, then "
                "letters and digits (e.g. ToxicGasLevel2)",
            )
        self._check_labels(item)
        self._check_annotations(item)
        cond = model.condition
        if isinstance(cond, Compound):
            self._check_compound_select(item)
            self._check_on_delay(item, [])
            return
        if cond.type in ENTERPRISE_TYPES:
            self._check_enterprise_rule(item)
            self._check_on_delay(item, [])
            return
        tags = selected_tags(model.select, cond, self.plant)
        if not tags:
            self.warn(item, ("select",), self._no_match(item))
        if isinstance(cond, Threshold | VotingCondition):
            self._check_setpoint(item, tags)
        self._check_on_delay(item, tags)
        if isinstance(cond, Stale):
            self._check_stale_window(item, cond, tags)
        if isinstance(cond, SisState):
            self._check_sis(item, cond, tags)
        if isinstance(cond, VotingCondition):
            self._check_voting(item, cond, tags)

    def _check_labels(self, item: _Loaded) -> None:
        labels = item.model.labels
        for key, allowed in (("priority", PRIORITIES), ("class", ALARM_CLASSES)):
            value = labels.get(key)
            if value is None:
                self.error(
                    item,
                    ("labels",),
                    f"labels needs {key!r} (one of {', '.join(allowed)})",
                )
            elif value not in allowed:
                self.error(
                    item,
                    ("labels", key),
                    f"labels.{key}={show(value)}: use one of {', '.join(allowed)}",
                )
        level = labels.get("level")
        if level is not None and level not in ("1", "2"):
            self.error(item, ("labels", "level"), f'labels.level={show(level)}: use "1" or "2"')

    def _check_annotations(self, item: _Loaded) -> None:
        notes = item.model.annotations
        for key, language in (("summary", "Chinese"), ("summary_en", "English")):
            if key not in notes:
                self.error(item, ("annotations",), f"annotations needs {key!r} ({language} text)")
        for key, text in notes.items():
            for match in _PLACEHOLDER.finditer(text):
                name = match.group(1)
                if name not in TEMPLATE_FIELDS:
                    self.error(
                        item,
                        ("annotations", key),
                        f"annotations.{key}: unknown placeholder {{{{{name}}}}}; use "
                        + ", ".join(TEMPLATE_FIELDS),
                    )
            rest = _PLACEHOLDER.sub("", text)
            if "{{" in rest or "}}" in rest:
                self.error(
                    item,
                    ("annotations", key),
                    f"annotations.{key}: unbalanced '{{{{' or '}}}}' in {show(text)}",
                )

    def _no_match(self, item: _Loaded) -> str:
        """'selector matches no tag' with the likely reason."""
        sel = item.model.select
        plant = self.plant
        hints: list[str] = []
        known: dict[str, set[str | None]] = {
            "enterprise": set(plant.enterprises),
            "tag": {t.tag for t in plant.tags.values()},
            "hazard_source": set(plant.hazard_sources),
            "zone": {z for _, z in plant.zones},
            "gas": {t.gas for t in plant.tags.values()},
        }
        for name, values in known.items():
            given = getattr(sel, name)
            if given is not None:
                hints.extend(
                    f"{name} {show(v)} is not in the plant" for v in given if v not in values
                )
        cond = item.model.condition
        if not hints and any(selects(sel, t) for t in plant.tags.values()):
            if isinstance(cond, Threshold | VotingCondition) and isinstance(cond.setpoint, str):
                hints.append(f"no selected tag has setpoint {cond.setpoint}")
            elif isinstance(cond, VotingCondition):
                hints.append("no selected tag is in a voting zone")
            elif isinstance(cond, SisState):
                hints.append(f"state {cond.state} reads {SIS_KIND_OF_STATE[cond.state]} tags")
            else:
                hints.append(f"condition {cond.type} does not apply to the selected tags")
        detail = f" ({'; '.join(hints)})" if hints else ""
        return f"selector matches no tag{detail}: the rule does nothing with this plant"

    def _check_setpoint(self, item: _Loaded, tags: list[TagInfo]) -> None:
        cond = item.model.condition
        assert isinstance(cond, Threshold | VotingCondition)
        sp = cond.setpoint
        direction = cond.direction
        if isinstance(sp, str):
            natural = "low" if sp in ("ll", "l") else "high"
            if direction is not None and direction != natural:
                self.error(
                    item,
                    ("condition", "direction"),
                    f"direction {direction} contradicts setpoint {sp} (a {natural} setpoint)",
                )
            return
        if direction is None:
            self.error(
                item,
                ("condition",),
                f"setpoint {num(sp)} is a number: say direction: high or low",
            )
            return
        by_message: dict[str, list[TagInfo]] = {}
        for tag in tags:
            message = self._gas_limit(tag, sp, direction, item.rule.level)
            if message is not None:
                by_message.setdefault(message, []).append(tag)
        for message, offenders in by_message.items():
            first = offenders[0]
            more = f" and {len(offenders) - 1} more" if len(offenders) > 1 else ""
            self.error(
                item,
                ("condition", "setpoint"),
                f"{message} (tag {first.enterprise}/{first.tag}{more})",
            )

    def _gas_limit(
        self, tag: TagInfo, value: float, direction: str, level: int | None
    ) -> str | None:
        """Why a numeric setpoint is beyond GB/T 50493 for this tag, or None."""
        key = "l1" if level == 1 else "l2"
        if tag.kind in LEL_LIMITS and direction == "high":
            return lel_excess(tag.kind, key, value)
        if tag.kind == "toxic_gas" and direction == "high" and tag.gas is not None:
            return toxic_excess(value, key, tag.eu, self.plant.gases[tag.gas], tag.idlh_mode)
        if tag.kind == "oxygen":
            if direction == "low" and over_limit(OXYGEN_LOW_MIN, value):
                return (
                    f"setpoint {num(value)} %VOL is below {num(OXYGEN_LOW_MIN)} %VOL: the "
                    f"oxygen-deficiency alarm must sound at {num(OXYGEN_LOW_MIN)} %VOL"
                )
            if direction == "high" and over_limit(value, OXYGEN_HIGH_MAX):
                return (
                    f"setpoint {num(value)} %VOL is above {num(OXYGEN_HIGH_MAX)} %VOL: the "
                    f"oxygen-enrichment alarm must sound at {num(OXYGEN_HIGH_MAX)} %VOL"
                )
        return None

    def _check_on_delay(self, item: _Loaded, tags: list[TagInfo]) -> None:
        on_delay = getattr(item.model.condition, "on_delay", 0)
        if on_delay <= ON_DELAY_MAX_MS:
            return
        cond = item.model.condition
        is_gas = item.rule.alarm_class == "gas" or (
            cond.type in VALUE_TYPES and any(t.kind in GAS_KINDS for t in tags)
        )
        why = (
            "a gas alarm's on-delay is at most 60 s (GB 16808)"
            if is_gas
            else "the alarm service records on-delays of at most 60 s (Condition.on_delay_s)"
        )
        self.error(
            item,
            ("condition", "on_delay"),
            f"on_delay {format_duration(on_delay)} exceeds 60s: {why}",
        )

    def _check_stale_window(self, item: _Loaded, cond: Stale, tags: list[TagInfo]) -> None:
        gas_tags = [t for t in tags if t.kind in GAS_KINDS]
        if not gas_tags:
            return
        worst = max(gas_tags, key=lambda t: t.interval_s)
        window_ms = round(cond.intervals * worst.interval_s * 1000)
        if window_ms > FAULT_RAISE_MAX_MS:
            self.error(
                item,
                ("condition", "intervals"),
                f"stale window {cond.intervals:g} × {worst.interval_s:g} s = "
                f"{format_duration(window_ms)} for gas detector {worst.enterprise}/"
                f"{worst.tag} exceeds 100s: missing data must be raised within 100 s",
            )

    def _check_sis(self, item: _Loaded, cond: SisState, tags: list[TagInfo]) -> None:
        if cond.state == "bit" and cond.bit is None:
            self.error(item, ("condition",), "state bit needs bit: N (bit 0 is the lowest)")
        if cond.bit is not None and cond.state not in ("bit", "voting_degraded"):
            self.error(
                item,
                ("condition", "bit"),
                f"bit is only for the states bit and voting_degraded, not {cond.state}",
            )
        if cond.max_duration is not None and cond.state != "bypass_overdue":
            self.error(
                item,
                ("condition", "max_duration"),
                f"max_duration is only for the state bypass_overdue, not {cond.state}",
            )
        if cond.state == "bypass_overdue" and cond.max_duration is None:
            without = [t for t in tags if t.planned_bypass_end is None]
            if without:
                self.warn(
                    item,
                    ("condition",),
                    f"{len(without)} bypass tag(s) (e.g. {without[0].enterprise}/"
                    f"{without[0].tag}) have no planned_bypass_end and the rule sets no "
                    "max_duration: their bypasses never become overdue",
                )

    def _check_voting(self, item: _Loaded, cond: VotingCondition, tags: list[TagInfo]) -> None:
        if isinstance(cond.setpoint, str) and cond.setpoint in ("ll", "l"):
            return  # the direction check reports it
        degrade_m = int(cond.degrade_to.split("oo")[0])
        for tag in tags:
            zone = self.plant.zones[(tag.enterprise, tag.zone or "")]
            if zone.voting is not None and degrade_m > int(zone.voting.split("oo")[0]):
                self.error(
                    item,
                    ("condition", "degrade_to"),
                    f"degrade_to {cond.degrade_to} is stricter than the vote of zone "
                    f"{tag.enterprise}/{zone.zone} ({zone.voting}): a faulty detector must not "
                    "make the vote harder to trip",
                )
                return

    def _check_enterprise_rule(self, item: _Loaded) -> None:
        cond = item.model.condition
        if not selected_enterprises(item.model.select, cond, self.plant):
            self.warn(item, ("select",), self._no_match(item))
        if isinstance(cond, LinkDown) and not cond.offline and cond.silence is None:
            self.error(
                item,
                ("condition",),
                "link_down with offline: false needs silence: <duration>, else it never raises",
            )
        if isinstance(cond, LinkDown) and cond.silence == 0:
            self.error(item, ("condition", "silence"), "silence must be longer than 0s")
        if isinstance(cond, ClockSkew) and cond.threshold <= 0:
            self.error(item, ("condition", "threshold"), "threshold must be longer than 0s")

    def _check_compound_select(self, item: _Loaded) -> None:
        sel = item.model.select
        for name in ("tag", "kind", "zone", "gas"):
            if getattr(sel, name) is not None:
                self.error(
                    item,
                    ("select", name),
                    f"a compound rule selects by enterprise and hazard_source only, not {name}",
                )

    def _check_references(self) -> None:
        names = self.names
        graph: dict[str, tuple[str, ...]] = {}
        for item in self.rules:
            cond = item.model.condition
            for i, name in enumerate(item.model.suppressed_by):
                if name == item.model.alert:
                    self.error(item, ("suppressed_by", i), "a rule cannot suppress itself")
                elif name not in names and name not in PLANT_STATES:
                    self.error(
                        item,
                        ("suppressed_by", i),
                        f"suppressed_by {show(name)} is neither an alert of the pack nor a plant "
                        f"state ({', '.join(PLANT_STATES)})",
                    )
            if not isinstance(cond, Compound):
                continue
            if (cond.all is None) == (cond.any is None):
                self.error(item, ("condition",), "compound needs exactly one of all: or any:")
                continue
            refs = cond.all if cond.all is not None else cond.any
            assert refs is not None
            key = "all" if cond.all is not None else "any"
            for i, name in enumerate(refs):
                if name not in names:
                    self.error(
                        item,
                        ("condition", key, i),
                        f"compound refers to unknown alert {show(name)}",
                    )
            graph[item.model.alert] = tuple(r for r in refs if r in names)
        self._check_cycles(graph)

    def _check_cycles(self, graph: dict[str, tuple[str, ...]]) -> None:
        state: dict[str, int] = {}  # 1 visiting, 2 done
        by_name = {item.model.alert: item for item in self.rules}

        def visit(name: str, trail: list[str]) -> None:
            state[name] = 1
            for ref in graph.get(name, ()):
                if state.get(ref) == 1:
                    cycle = [*trail[trail.index(ref) :], ref] if ref in trail else [name, ref]
                    self.error(
                        by_name[name],
                        ("condition",),
                        f"compound rules refer to each other in a cycle: {' -> '.join(cycle)}",
                    )
                elif ref not in state:
                    visit(ref, [*trail, ref])
            state[name] = 2

        for name in graph:
            if name not in state:
                visit(name, [name])
