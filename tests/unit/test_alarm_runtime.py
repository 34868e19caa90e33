"""The hub's alarm runtime: outputs of every journaled transition survive a crash."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from safety_hub.alarm_runtime import AlarmRuntime
from safety_hub.clock import VirtualClock
from safety_hub.hub import default_rules_path
from safety_hub.outbox import Outbox
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules import load_rules
from safety_hub.spool import Spool

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
    return [json.loads(payload) for _, _, payload in outbox.pending(1000)]


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
