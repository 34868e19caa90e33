"""Alarm floods and alarm-system KPIs (ISA-18.2 / EEMUA 191) on a virtual clock."""

from __future__ import annotations

import pytest

from safety_hub.alarms import FloodEpisode
from safety_hub.alarms.kpis import flood_episodes, most_within
from tests.unit.test_alarms_support import DAY, HOUR, MINUTE, SECOND, T0, TANK_SOURCE, Rig, gas


def _keys(n: int, prefix: str = "Flood") -> list[str]:
    return [f"{prefix}{i}|e01-chloralkali|PT-{i:03d}" for i in range(n)]


def test_flood_starts_above_10_in_10_minutes_and_ends_below_5() -> None:
    """The 11th annunciation within 10 minutes starts a flood; it ends when fewer than 5 remain."""
    rig = Rig()
    for i, key in enumerate(_keys(11)):
        rig.advance(SECOND if i == 0 else 50 * SECOND)  # t = 1 s, 51 s, ... 501 s
        rig.on(key)
        if i == 9:
            assert rig.svc.floods() == []  # ten in ten minutes is not a flood
    start = T0 + 501 * SECOND
    assert rig.svc.floods() == [FloodEpisode(start, None, peak_count=11, alarm_count=11)]

    # the count drops below 5 once the 7th annunciation (t = 301 s) leaves the window at 901 s
    rig.clock.set(T0 + 901 * SECOND - 1)
    assert rig.svc.floods()[0].end_ms is None
    rig.clock.set(T0 + 901 * SECOND)
    assert rig.svc.floods() == [FloodEpisode(start, T0 + 901 * SECOND, 11, 11)]

    kpis = rig.svc.kpis(now_ms=T0 + HOUR, window_ms=HOUR)
    assert kpis.flood_time_pct == pytest.approx(100 * 400 / 3600)
    assert kpis.peak_10min == 11


def test_flood_peak_and_count_follow_the_whole_episode() -> None:
    """Peak is the most in any 10 minutes during the flood; the count covers the whole episode."""
    times = [T0 + i * SECOND for i in range(15)] + [T0 + 5 * MINUTE + i for i in range(3)]
    [episode] = flood_episodes(times, now_ms=T0 + DAY)
    # 18 in the window until the first leaves at 10 min; 4 are left once the 14th (t = 13 s) left
    assert episode == FloodEpisode(T0 + 10 * SECOND, T0 + 10 * MINUTE + 13 * SECOND, 18, 18)


def test_hidden_alarms_do_not_count_towards_a_flood() -> None:
    """Eleven activations where one alarm is shelved are ten annunciations: no flood."""
    rig = Rig()
    keys = _keys(11)
    rig.on(keys[0])
    rig.svc.acknowledge(rig.alarm(keys[0]).id, "op1")
    rig.off(keys[0])
    rig.svc.shelve(rig.alarm(keys[0]).id, "op1", "known bad transmitter", T0 + 2 * HOUR)
    rig.advance(HOUR)
    for key in keys:
        rig.advance(10 * SECOND)
        rig.on(key)
    assert rig.svc.floods() == []
    assert rig.svc.kpis(window_ms=HOUR).annunciations == 10


def test_chattering_is_three_transitions_within_a_minute() -> None:
    """An alarm in and out of alarm three times within 60 s chatters; 80 s apart does not."""
    rig = Rig()
    chatter, slow, shelved = _keys(3, "Chatter")
    rig.svc.apply(rig.condition(shelved, True))
    rig.svc.shelve(rig.alarm(shelved).id, "op1", "chattering, work order 77", T0 + HOUR)
    for step in range(3):
        active = step % 2 == 0
        for key in (chatter, shelved):
            rig.svc.apply(rig.condition(key, active))
        if step < 2:
            rig.advance(20 * SECOND)
    for step in range(3):
        rig.svc.apply(rig.condition(slow, step % 2 == 0))
        rig.advance(40 * SECOND)
    kpis = rig.svc.kpis(window_ms=HOUR)
    assert [(c.key, c.count) for c in kpis.chattering] == [(chatter, 3)]
    assert most_within([0, 40, 80], 60) == 2


def test_latched_gas_alarm_can_chatter_too() -> None:
    """Gas that comes back at once after clearing does not re-annunciate (the latch holds), but
    three such edges within a minute chatter all the same."""
    rig = Rig()
    key = "Cl2Level1|e01-chloralkali|GT-1101"
    rig.on(key, **gas(1))
    rig.advance(10 * SECOND)
    rig.off(key, **gas(1))
    rig.advance(10 * SECOND)
    rig.on(key, **gas(1))
    kpis = rig.svc.kpis(window_ms=HOUR)
    assert [c.count for c in kpis.chattering] == [3]
    assert kpis.annunciations == 1


def test_standing_alarms_are_active_in_service_for_more_than_a_day() -> None:
    """Active for 25 h counts as standing; 23 h, out of service or cleared-but-latched do not."""
    rig = Rig()
    old, young, oos, latched = _keys(4, "Standing")
    rig.on(old)
    rig.on(oos)
    rig.svc.remove_from_service(rig.alarm(oos).id, "tech1", "transmitter removed")
    rig.on(latched, **gas(1))
    rig.off(latched, **gas(1))
    rig.advance(2 * HOUR)
    rig.on(young)
    kpis = rig.svc.kpis(now_ms=T0 + 25 * HOUR)
    assert [(s.key, s.active_since_ms) for s in kpis.standing] == [(old, T0)]
    assert rig.svc.kpis(now_ms=T0 + DAY).standing == []  # exactly 24 h is not more than 24 h


def test_time_to_acknowledge_mean_and_median() -> None:
    """Time to acknowledge runs from the annunciation to the ack; mean and median are reported."""
    rig = Rig()
    keys = _keys(3, "Ack")
    for key in keys:
        rig.on(key)
    for key, delay in zip(keys, (30, 30, 90), strict=True):
        rig.advance(delay * SECOND)
        rig.svc.acknowledge(rig.alarm(key).id, "op1")
    kpis = rig.svc.kpis(window_ms=HOUR)
    # acknowledged after 30 s, 60 s and 150 s
    assert kpis.acknowledgements == 3
    assert kpis.mean_time_to_ack_ms == pytest.approx(80_000)
    assert kpis.median_time_to_ack_ms == 60_000


def test_priority_mix_counts_annunciations_by_effective_priority() -> None:
    """Priority mix is the share of annunciations per effective priority (after the grade rule)."""
    rig = Rig()
    for key in _keys(8, "Low"):
        rig.on(key, priority="low")
    rig.on("Med|e01|PT-1", priority="medium", hazard_source=TANK_SOURCE)
    rig.on("Cl2Level2|e01|GT-1101", **gas(2), priority="low")  # grade-1 source: high
    mix = rig.svc.kpis(window_ms=HOUR).priority_mix_pct
    assert mix == {"low": 80.0, "medium": 10.0, "high": 10.0, "critical": 0.0}


def test_bad_actors_are_the_top_ten_by_annunciations() -> None:
    """The ten alarms that annunciated most, most first, ties by id."""
    rig = Rig()
    keys = _keys(12, "Actor")
    for key in keys:
        rig.on(key)
    for repeat, key in ((3, keys[5]), (2, keys[9])):
        for _ in range(repeat):
            rig.advance(MINUTE)
            rig.off(key)
            rig.on(key)
    actors = rig.svc.kpis(window_ms=HOUR).bad_actors
    assert [(a.key, a.count) for a in actors[:3]] == [(keys[5], 4), (keys[9], 3), (keys[0], 1)]
    assert len(actors) == 10


def test_rates_and_peak_over_the_window() -> None:
    """Rates are averages over the window; the peak is the most in any sliding 10 minutes."""
    rig = Rig()
    rig.on("Before|e01|PT-0")  # at T0: just outside the window (T0, T0 + 1 h]
    for minute, key in zip((1, 2, 3, 30, 45, 59), _keys(6, "Rate"), strict=True):
        rig.clock.set(T0 + minute * MINUTE)
        rig.on(key)
    kpis = rig.svc.kpis(now_ms=T0 + HOUR, window_ms=HOUR)
    assert kpis.annunciations == 6
    assert (kpis.rate_per_10min, kpis.rate_per_hour, kpis.rate_per_day) == (1.0, 6.0, 144.0)
    assert kpis.peak_10min == 4  # the window (T0 - 7 min, T0 + 3 min] holds T0 and minutes 1-3
    assert kpis.flood_time_pct == 0.0


def test_kpis_per_operator_position() -> None:
    """Alarms route to a position by their operator_position label; KPIs and floods follow it."""
    rig = Rig()
    for i, key in enumerate(_keys(12, "Pos")):
        rig.on(key, labels={"operator_position": "console-1" if i < 11 else "console-2"})
    assert rig.svc.kpis(operator_position="console-1").annunciations == 11
    assert rig.svc.kpis(operator_position="console-2").annunciations == 1
    assert len(rig.svc.floods(operator_position="console-1")) == 1
    assert rig.svc.floods(operator_position="console-2") == []
    assert rig.svc.kpis(operator_position="console-2").as_json()["operator_position"] == (
        "console-2"
    )
