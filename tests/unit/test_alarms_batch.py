"""``AlarmService.apply_all``: the conditions of one engine call in one journal transaction,
with the same alarms, transitions and journal as applying them one at a time."""

from __future__ import annotations

from typing import Any

from safety_hub.alarms import AlarmJournal, Condition
from tests.unit.test_alarms_support import SECOND, Rig, gas

L1 = "ToxicGasLevel1|e01-chloralkali|GT-1101"
L2 = "ToxicGasLevel2|e01-chloralkali|GT-1101"
OTHER = "ToxicGasLevel1|e01-chloralkali|GT-1102"


class CountingJournal(AlarmJournal):
    """The SQLite journal, counting its write transactions."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.writes = 0

    def write(self, batch: Any) -> Any:
        self.writes += 1
        return super().write(batch)


def script(rig: Rig) -> list[list[Condition]]:
    """Engine calls: level 1 and 2 at once; a re-trigger of both and a new alarm; level 2
    clearing and coming back in one call; everything clearing."""
    c = rig.condition
    return [
        [c(L1, True, **gas(1)), c(L2, True, **gas(2))],
        [c(L1, True, **gas(1)), c(L2, True, **gas(2)), c(OTHER, True, **gas(1, "GT-1102"))],
        [c(L2, False, **gas(2)), c(L2, True, **gas(2))],
        [c(L1, False, **gas(1)), c(L2, False, **gas(2)), c(OTHER, False, **gas(1, "GT-1102"))],
    ]


def run(batched: bool) -> tuple[Rig, CountingJournal]:
    journal = CountingJournal()
    rig = Rig(journal=journal)
    for call in script(rig):
        if batched:
            rig.svc.apply_all(call)
        else:
            for condition in call:
                rig.svc.apply(condition)
        rig.advance(SECOND)
    return rig, journal


def test_one_engine_call_is_one_journal_transaction() -> None:
    rig, journal = run(batched=True)
    assert journal.writes == 4  # one per engine call, every call changed something
    first = rig.events[:2]
    assert [(t.action.value, t.alarm.key) for t in first] == [("raise", L1), ("raise", L2)]
    assert first[1].seq == first[0].seq + 1


def test_batched_and_one_at_a_time_give_the_same_alarms_transitions_and_journal() -> None:
    batched, journal_b = run(batched=True)
    single, journal_s = run(batched=False)
    assert journal_s.writes > journal_b.writes

    def shape(rig: Rig) -> list[tuple[Any, ...]]:
        return [
            (t.seq, t.action, t.alarm.id, t.alarm.key, t.from_state, t.to_state, t.ts_ms)
            for t in rig.events
        ]

    assert shape(batched) == shape(single)
    assert batched.svc.list() == single.svc.list()
    rows_b = [(e.id, e.alarm_id, e.action, e.to_state) for e in journal_b.entries()]
    rows_s = [(e.id, e.alarm_id, e.action, e.to_state) for e in journal_s.entries()]
    assert rows_b == rows_s
    # the level-2 alarm cleared and came back inside one call: one instance, two transitions
    assert len({t.alarm.id for t in batched.events if t.alarm.key == L2}) == 1


def test_a_call_that_changes_nothing_writes_nothing() -> None:
    journal = CountingJournal()
    rig = Rig(journal=journal)
    assert rig.svc.apply_all([rig.condition(L1, False, **gas(1))]) == []
    assert rig.svc.apply_all([]) == []
    assert journal.writes == 0
