"""Notification policies: loading with located errors, and the pure planner."""

from __future__ import annotations

import dataclasses

import pytest

from safety_hub.alarms import Transition
from safety_hub.alarms.model import Action
from safety_hub.errors import LoadError
from safety_hub.notify.loader import Known, default_policy_path, load_policies
from safety_hub.notify.planner import Cancel, Planner
from safety_hub.people import default_people_path, load_people
from safety_hub.registry import default_plant_path, load_plant
from safety_hub.rules import default_rules_path, load_rules
from tests.unit.notify_support import directory, policies
from tests.unit.test_alarms_support import MINUTE, T0, Rig, gas

POLICY = """
policies:
  - name: esc
    match: {tier: [red, orange]}
    steps:
      - {after: 0s, to: role:enterprise_safety_officer}
      - {after: 5m, to: roster:park_duty}
      - {after: 15m, to: role:regulator, tier: red}
    repeat: {every: 10m, max: 2}
    on_clear: {}
"""


def test_shipped_policies_load_and_the_rule_loader_ignores_their_folder() -> None:
    plant = load_plant(default_plant_path())
    pack = load_rules(default_rules_path(), plant)
    assert not any("notify" in f for f in pack.files)
    people = load_people(default_people_path(), set(plant.enterprises))
    known = Known(people.check_target, {r.alert for r in pack}, set(plant.enterprises))
    loaded = load_policies(default_policy_path(), known)
    assert [p.name for p in loaded] == ["park-warning", "park-yellow", "park-disposal-overdue"]


def test_every_problem_is_reported_with_file_line_col_and_hints() -> None:
    text = """policies:
  - name: a
    match: {tier: [red], alert: [ToxicGasLevl2]}
    steps:
      - {after: 5m, to: role:enterprise_safety_oficer}
      - {after: 1m, to: roster:park_duty, chanels: [email]}
  - name: a
    steps:
      - {after: 0s, to: "nobody"}
"""
    with pytest.raises(LoadError) as info:
        policies(text, Known(directory().check_target, {"ToxicGasLevel2"}))
    errors = "\n".join(info.value.errors)
    assert (
        "p.yaml:6:43: policy \"a\": unknown key 'steps[1].chanels'; did you mean 'channels'?"
        in errors
    )
    assert 'p.yaml:9:21: policy "a": steps[0].to="nobody": bad target \'nobody\'' in errors
    fixed = text.replace("chanels", "channels").replace('"nobody"', "role:x")
    with pytest.raises(LoadError) as info:
        policies(fixed, Known(directory().check_target, {"ToxicGasLevel2"}))
    assert info.value.errors == [
        'p.yaml:5:21: policy "a": target "role:enterprise_safety_oficer": no such role, roster '
        "or person in the people directory",
        'p.yaml:6:10: policy "a": steps must be in order of after',
        'p.yaml:3:34: policy "a": unknown alert "ToxicGasLevl2"; did you mean \'ToxicGasLevel2\'?',
        'p.yaml:7:5: policy "a": duplicate policy "a" (first at p.yaml:2:5)',
        'p.yaml:9:21: policy "a": target "role:x": no such role, roster or person in the people '
        "directory",
    ]


def raise_red(rig: Rig) -> Transition:
    (t,) = rig.on("ToxicGasLevel2|e|GT-1101", **gas(2), priority="critical")
    assert t.annunciated and t.alarm.priority.value == "critical"
    return t


def test_a_red_annunciation_plans_the_whole_chain_with_stable_ids() -> None:
    rig = Rig()
    planner = Planner(policies(POLICY), directory())
    plan = planner.plan(raise_red(rig))
    got = sorted((s.due_ms - T0, s.person_id, s.channel, s.kind) for s in plan.schedule)
    assert got == [
        (0, "zhang", "email", "alarm"),
        (5 * MINUTE, "li", "webhook", "escalation"),
        (10 * MINUTE, "zhang", "email", "repeat"),
        (15 * MINUTE, "li", "webhook", "repeat"),
        (15 * MINUTE, "wang", "email", "escalation"),
        (20 * MINUTE, "zhang", "email", "repeat"),
        (25 * MINUTE, "li", "webhook", "repeat"),
        (25 * MINUTE, "wang", "email", "repeat"),
        (35 * MINUTE, "wang", "email", "repeat"),
    ]
    assert plan.schedule[0].notification_id == "esc/1/1/0/zhang/email"
    again = planner.plan(rig.events[-1])
    assert [s.notification_id for s in again.schedule] == [s.notification_id for s in plan.schedule]
    assert len({s.notification_id for s in plan.schedule}) == len(plan.schedule)


def test_orange_skips_the_red_only_step_and_channels_filter_picks_contacts() -> None:
    text = POLICY.replace(
        "to: role:enterprise_safety_officer}",
        "to: role:enterprise_safety_officer, channels: [email, webhook]}",
    )
    rig = Rig()
    (t,) = rig.on("ToxicGasLevel1|e|GT-1101", **gas(1), priority="high", hazard_source="x")
    plan = Planner(policies(text.replace("max: 2", "max: 1")), directory()).plan(t)
    assert "wang" not in {s.person_id for s in plan.schedule}
    firsts = {(s.person_id, s.channel) for s in plan.schedule if s.step == "0"}
    assert firsts == {("zhang", "email"), ("zhang", "webhook")}


def test_ack_cancels_shelving_cancels_and_shelved_or_grouped_alarms_start_nothing() -> None:
    rig = Rig()
    planner = Planner(policies(POLICY), directory())
    t = raise_red(rig)
    rig.svc.acknowledge(t.alarm.id, "op")
    cancel = planner.plan(rig.events[-1]).cancel
    assert [(c.alarm_id, c.annunciation, c.ack_only) for c in cancel] == [(t.alarm.id, 1, True)]
    rig.svc.shelve(t.alarm.id, "op", "maintenance", T0 + 60 * MINUTE)
    (shelve,) = planner.plan(rig.events[-1]).cancel
    assert shelve.reason == "shelve" and not shelve.ack_only
    # a condition raised while shelved changes state but never annunciates: no chain
    key = "PressureHigh|e|PT-1"
    rig.on(key, priority="critical")
    rig.svc.acknowledge(rig.alarm(key).id, "op")
    rig.off(key, priority="critical")
    rig.svc.shelve(rig.alarm(key).id, "op", "x", T0 + 60 * MINUTE)
    rig.on(key, priority="critical")
    assert rig.events[-1].alarm.state.value == "shelved"
    assert not rig.events[-1].annunciated
    assert not planner.plan(rig.events[-1]).schedule
    child = rig.on("LinkStale|e|GT-9", priority="critical", labels={"parent": "LinkDown|e|"})
    assert child[-1].annunciated and not planner.plan(child[-1]).schedule


def test_return_to_normal_tells_only_those_already_told() -> None:
    rig = Rig()
    planner = Planner(policies(POLICY), directory())
    raise_red(rig)
    rig.advance(6 * MINUTE)
    (clear,) = rig.off("ToxicGasLevel2|e|GT-1101", **gas(2), priority="critical")
    plan = planner.plan(clear)
    assert sorted((s.person_id, s.kind) for s in plan.schedule) == [
        ("li", "clear"),
        ("zhang", "clear"),
    ]
    assert all(s.due_ms == T0 + 6 * MINUTE for s in plan.schedule)


def test_a_disposal_overdue_transition_starts_only_its_own_policies() -> None:
    text = (
        POLICY
        + """
  - name: overdue
    trigger: disposal_overdue
    match: {tier: red}
    steps: [{after: 0s, to: roster:park_duty}]
"""
    )
    rig = Rig()
    planner = Planner(policies(text), directory())
    t = raise_red(rig)
    same = {"from_state": t.to_state, "to_state": t.to_state}  # a record, not a state change
    overdue = dataclasses.replace(t, action=Action.DISPOSAL_OVERDUE, seq=99, **same)
    plan = planner.plan(overdue)
    assert [(s.policy, s.person_id, s.kind, s.cancel_on_ack) for s in plan.schedule] == [
        ("overdue", "li", "overdue", False)
    ]
    disposed = dataclasses.replace(t, action=Action.DISPOSE, seq=100, **same)
    assert planner.plan(disposed).cancel == [Cancel(t.alarm.id, "disposed", 1)]
