"""The hub's alarm runtime: outputs of every journaled transition survive a crash."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from safety_hub.alarms import IllegalTransition
from safety_hub.clock import VirtualClock
from safety_hub.errors import DiskFullError
from safety_hub.ingest.spool import Spool
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules import default_rules_path, load_rules
from safety_hub.runtime.alarm_runtime import AlarmRuntime
from safety_hub.runtime.outbox import Outbox

ENT, TAG = "e01-chloralkali", "GT-1101"
T0 = 1_790_000_000_000


def _runtime(plant: Plant, data: Path, clock: VirtualClock) -> tuple[AlarmRuntime, Outbox, Spool]:
    outbox = Outbox(data / "outbox.sqlite")
    spool = Spool(data / "spool.sqlite", sync="normal")
    runtime = AlarmRuntime(
        plant=plant,
        pack=load_rules(default_rules_path(), plant),
        data_dir=data,
        clock=clock,
        spool=spool,
        outbox=outbox,
    )
    return runtime, outbox, spool


def _events(outbox: Outbox) -> list[dict[str, object]]:
    return [json.loads(row.payload) for row in outbox.pending(1000)]


def _alarm_lines(spool: Spool) -> list[str]:
    return [
        line
        for batch in spool.peek(10_000)
        for line in batch.lines.splitlines()
        if line.startswith("alarm_event,")
    ]


def test_transitions_lost_between_journal_and_outbox_are_resent_on_restart(
    tmp_path: Path,
) -> None:
    plant = load_plant(default_plant_path())
    clock = VirtualClock(T0)
    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    assert runtime.recovered == 0
    runtime.on_readings([(ENT, TAG, T0, 0.45, "good")], T0)
    sent = _events(outbox)
    assert [e["action"] for e in sent] == ["raise"]
    seq = int(sent[0]["seq"])  # type: ignore[call-overload]
    assert outbox.marker() is not None and outbox.marker() >= seq
    runtime.stop()
    outbox.close()
    spool.close()

    # A crash after the journal commit and before the outbox insert: the row and the
    # marker's move never happened, and neither did the spool line.
    with sqlite3.connect(tmp_path / "outbox.sqlite") as conn:
        conn.execute("DELETE FROM outbox")
        conn.execute("UPDATE marker SET seq = ?", (seq - 1,))
    with sqlite3.connect(tmp_path / "spool.sqlite") as conn:
        conn.execute("DELETE FROM batch")
        conn.execute("UPDATE alarm_marker SET seq = ?", (seq - 1,))

    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    assert runtime.recovered == 1
    (event,) = _events(outbox)
    assert event["seq"] == seq and event["action"] == "raise" and event["recovered"] is True
    alarm = event["alarm"]
    assert isinstance(alarm, dict) and alarm["tag"] == TAG and alarm["alert"] == "ToxicGasLevel1"
    with sqlite3.connect(tmp_path / "alarms.sqlite") as conn:
        (newest,) = conn.execute("SELECT MAX(id) FROM transitions").fetchone()
    assert outbox.marker() == newest  # past the re-sent event and any suppression notes
    (line,) = _alarm_lines(spool)
    assert f"alarm_id={alarm['id']}i" in line and "action=raise" in line
    runtime.stop()
    outbox.close()
    spool.close()

    # Nothing is missing now: a further restart re-sends nothing.
    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    assert runtime.recovered == 0
    assert len(_events(outbox)) == 1
    runtime.stop()


def test_an_outbox_without_a_marker_does_not_replay_the_whole_journal(tmp_path: Path) -> None:
    plant = load_plant(default_plant_path())
    clock = VirtualClock(T0)
    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    runtime.on_readings([(ENT, TAG, T0, 0.45, "good")], T0)
    runtime.stop()
    outbox.close()
    spool.close()
    (tmp_path / "outbox.sqlite").unlink()  # e.g. an outbox from before the marker existed

    runtime, outbox, _ = _runtime(plant, tmp_path, clock)
    assert runtime.recovered == 0
    assert _events(outbox) == []
    assert outbox.marker() is not None and outbox.marker() > 0
    runtime.stop()


class FlakyJournalWrites:
    """Makes the alarm service's journal refuse writes (as on a full disk) while ``full``."""

    def __init__(self, runtime: AlarmRuntime) -> None:
        self.full = True
        journal = runtime.service._journal
        real = journal.write

        def write(batch: object) -> object:
            if self.full:
                raise DiskFullError(str(tmp_journal(runtime)), "database or disk is full")
            return real(batch)  # type: ignore[arg-type]

        journal.write = write  # type: ignore[method-assign]


def tmp_journal(runtime: AlarmRuntime) -> Path:
    return Path(runtime.service._journal.path)


def test_a_journal_that_cannot_write_keeps_conditions_in_order_and_reports(
    tmp_path: Path,
) -> None:
    """While the journal refuses writes, conditions wait in memory in order (a raise is never
    overtaken by its clear), the problem is reported once, and the next tick after the disk
    has room journals them all and clears the problem."""
    plant = load_plant(default_plant_path())
    clock = VirtualClock(T0)
    problems: list[str | None] = []
    outbox = Outbox(tmp_path / "outbox.sqlite")
    spool = Spool(tmp_path / "spool.sqlite", sync="normal")
    runtime = AlarmRuntime(
        plant=plant,
        pack=load_rules(default_rules_path(), plant),
        data_dir=tmp_path,
        clock=clock,
        spool=spool,
        outbox=outbox,
        on_write_problem=problems.append,
    )
    journal = FlakyJournalWrites(runtime)
    runtime.on_readings([(ENT, TAG, T0, 0.45, "good")], T0)  # level 1 raised in the engine
    clock.advance(1000)
    runtime.on_readings([(ENT, TAG, T0 + 1000, 0.0, "good")], T0 + 1000)  # and back to normal
    assert runtime.service.list() == []
    assert runtime.write_problem is not None and "alarm journal" in runtime.write_problem
    assert len(problems) >= 1 and problems[-1] is not None
    journal.full = False
    clock.advance(1000)
    runtime.tick()
    assert runtime.write_problem is None and problems[-1] is None
    actions = [e["action"] for e in _events(outbox) if e["alarm"]["tag"] == TAG]  # type: ignore[index]
    assert actions[:2] == ["raise", "clear"]
    runtime.stop()


def test_a_spool_that_cannot_write_does_not_hold_back_the_mqtt_event(tmp_path: Path) -> None:
    """An alarm_event line the spool refuses waits in memory; the MQTT event goes out at once;
    the line reaches the spool on a later tick."""
    plant = load_plant(default_plant_path())
    clock = VirtualClock(T0)
    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    real_append = spool.append
    full = {"on": True}

    def append(batches: Any, created_ms: int, **marker: Any) -> None:
        if full["on"]:
            raise DiskFullError(str(spool.path), "database or disk is full")
        real_append(batches, created_ms, **marker)

    spool.append = append  # type: ignore[method-assign]
    runtime.on_readings([(ENT, TAG, T0, 0.45, "good")], T0)
    assert [e["action"] for e in _events(outbox)] == ["raise"]
    assert _alarm_lines(spool) == []
    assert runtime.write_problem is not None and "alarm_event" in runtime.write_problem
    full["on"] = False
    runtime.tick()
    assert len(_alarm_lines(spool)) == 1
    assert runtime.write_problem is None
    runtime.stop()


def test_a_healthy_runtime_reports_no_write_problem(tmp_path: Path) -> None:
    """Raising, clearing and ticking with working stores never reports a write problem (a
    condition being journaled is not one)."""
    plant = load_plant(default_plant_path())
    clock = VirtualClock(T0)
    problems: list[str | None] = []
    runtime = AlarmRuntime(
        plant=plant,
        pack=load_rules(default_rules_path(), plant),
        data_dir=tmp_path,
        clock=clock,
        spool=Spool(tmp_path / "spool.sqlite", sync="normal"),
        outbox=Outbox(tmp_path / "outbox.sqlite"),
        on_write_problem=problems.append,
    )
    for i, value in enumerate([0.45, 0.0, 0.8, 0.0]):
        clock.advance(1000)
        runtime.on_readings([(ENT, TAG, T0 + 1000 * (i + 1), value, "good")], clock.now_ms())
        runtime.tick()
    assert runtime.transitions >= 4
    assert problems == []
    runtime.stop()


def test_registry_out_of_service_tag_is_out_of_service_with_who_why_since(
    tmp_path: Path,
) -> None:
    """GT-5104 is out of service in the sample registry: its level-2 alarm shows the state
    ``out_of_service`` with the registry's who, why and since (not ``suppressed``), does not
    annunciate, and an operator cannot return it to service over the registry's word."""
    plant = load_plant(default_plant_path())
    info = plant.tags[("e05-tankfarm", "GT-5104")].out_of_service
    assert info is not None
    clock = VirtualClock(T0)
    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    runtime.on_readings([("e05-tankfarm", "GT-5104", T0, 45.0, "good")], T0)
    alarm = runtime.service.find("CombustibleGasLevel2|e05-tankfarm|GT-5104")
    assert alarm is not None and alarm.out_of_service is not None
    assert (alarm.state.value, alarm.suppressed_by, alarm.active) == ("out_of_service", (), True)
    assert (alarm.out_of_service.by, alarm.out_of_service.reason) == (info.by, info.reason)
    assert alarm.out_of_service.since_ms == int(info.since.timestamp() * 1000)
    assert alarm.out_of_service.source == "registry"
    events = [e for e in _events(outbox) if e["alarm"]["tag"] == "GT-5104"]  # type: ignore[index]
    assert events and not any(e["annunciated"] for e in events)
    with pytest.raises(IllegalTransition, match="out of service in the plant registry"):
        runtime.service.return_to_service(alarm.id, "op1")
    runtime.stop()
    outbox.close()
    spool.close()


def test_a_batch_that_raises_saves_the_snapshot_and_quiet_batches_are_coalesced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safety_hub.runtime.alarm_runtime as alarm_runtime

    # The next quiet save is due after a billion times the last save's duration: never here.
    monkeypatch.setattr(alarm_runtime, "SNAPSHOT_MAX_SHARE", 1e-9)
    plant = load_plant(default_plant_path())
    clock = VirtualClock(T0)
    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    runtime.on_readings([(ENT, TAG, T0, 0.45, "good")], T0)  # level 1 raised: saved at once
    saved = runtime.snapshots_saved
    assert saved >= 1 and [e["action"] for e in _events(outbox)] == ["raise"]
    for k in range(1, 4):  # the same level again: nothing changes, nothing saved
        runtime.on_readings([(ENT, TAG, T0 + 1000 * k, 0.46, "good")], T0 + 1000 * k)
    assert runtime.snapshots_saved == saved and runtime.snapshots_deferred == 3

    # kill -9 now (no stop): a hub started on the same files has the raise in its engine, so
    # the level-1 reading again raises nothing twice.
    again, outbox2, spool2 = _runtime(plant, tmp_path, clock)
    again.on_readings([(ENT, TAG, T0 + 5000, 0.47, "good")], T0 + 5000)
    assert [e["action"] for e in _events(outbox2)] == ["raise"]
    again.stop()
    runtime.stop()
    for closing in (outbox, spool, outbox2, spool2):
        closing.close()


def test_a_line_lost_after_its_event_was_put_is_written_again_on_restart(tmp_path: Path) -> None:
    """The outbox row goes first; a crash before the spool took the alarm_event line leaves
    the spool's marker behind the outbox's: the restart writes the line, re-sends no event."""
    plant = load_plant(default_plant_path())
    clock = VirtualClock(T0)
    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    runtime.on_readings([(ENT, TAG, T0, 0.45, "good")], T0, save=False)
    (event,) = _events(outbox)
    assert _alarm_lines(spool) == []  # the line waits for the end of the ingest batch
    runtime.save_snapshot()
    (line,) = _alarm_lines(spool)
    seq = int(event["seq"])  # type: ignore[call-overload]
    assert spool.alarm_marker() == seq
    runtime.stop()
    outbox.close()
    spool.close()

    with sqlite3.connect(tmp_path / "spool.sqlite") as conn:  # the crash: line never committed
        conn.execute("DELETE FROM batch")
        conn.execute("UPDATE alarm_marker SET seq = ?", (seq - 1,))

    runtime, outbox, spool = _runtime(plant, tmp_path, clock)
    assert runtime.recovered == 0
    assert len(_events(outbox)) == 1  # the event is not sent twice
    assert _alarm_lines(spool) == [line]
    assert spool.alarm_marker() == seq
    runtime.stop()
