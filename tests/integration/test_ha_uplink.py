"""The provincial uplink of a redundant pair (issue 15 meets issue 14): the uplink queue and its
cursors are in the shared PostgreSQL database. The platform goes down, a backlog builds in the
shared queue, the active node is killed with SIGKILL and stays dead; the node that takes over
sends the backlog the dead node left, in order and with the same dataIds, and goes on from the
dead node's cursors: every reading arrives once by dataId, in order per tag, none lost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simulators.gateway import Gateway
from tests.fixtures.uplink_receiver import Envelope, EnvelopeReceiver
from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.test_ha_pair import SAMPLE_PLANT, make_pair, ready
from tests.integration.test_uplink_e2e import (
    ENTERPRISE,
    KEY,
    KEY_ENV,
    SERVICES,
    SOURCE,
    TAGS,
    uplink_yaml,
    value_of,
)

pytestmark = pytest.mark.integration

OUTAGE_S = 6.0
ALARM_STEPS = range(5, 9)
"""the steps (1 s apart in source time) at which LT-1101 reads 2.5, above its high-high for
longer than the rule's 2 s on-delay: a latched alarm, so its warnings queue too"""


def uplink(hub: HubProcess) -> dict[str, Any]:
    response = hub.get("/api/v1/system")
    response.raise_for_status()
    (state,) = response.json()["uplinks"]
    return dict(state)


class Feed:
    """The gateway of e01 publishing one reading per tag a step; remembers what each tag got."""

    def __init__(self, port: int) -> None:
        self.gateway = Gateway("127.0.0.1", port, ENTERPRISE)
        assert self.gateway.wait_connected()
        self.step = 0
        self.base_ts = int(time.time() * 1000) - 600_000
        self.expected: dict[str, list[float]] = {tag: [] for tag in TAGS}

    def publish_step(self, hub: HubProcess) -> None:
        """One reading per tag, then wait until ``hub`` (the active node) queued them all (so
        none is superseded before the next readings tick)."""
        self.step += 1
        before = int(uplink(hub)["queued_by_kind"].get("reading", 0))
        readings = []
        for i, tag in enumerate(TAGS):
            high = tag == "LT-1101" and self.step in ALARM_STEPS
            value = 2.5 if high else value_of(self.step, i)
            readings.append({"tag": tag, "v": value})
            self.expected[tag].append(value)
        self.gateway.publish(readings, ts_ms=self.base_ts + self.step * 1000)
        wait_for(
            lambda: int(uplink(hub)["queued_by_kind"].get("reading", 0)) >= before + len(TAGS),
            20,
            f"step {self.step} queued",
        )

    def close(self) -> None:
        self.gateway.close()


def queued_ids(url: str) -> list[str]:
    """The dataIds waiting in the shared queue, in the order they go out."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(  # the send order: base data and warnings, then readings
            "SELECT data_id FROM uplink_queue ORDER BY kind = 'reading', seq"
        ).fetchall()
    return [str(r[0]) for r in rows]


def waiting_by_the_cli(url: str) -> int:
    """``safety-hub uplink status`` with the pair's state URL: the records it says wait."""
    env = {**os.environ, "SAFETY_HUB_STATE_URL": url}
    argv = [sys.executable, "-m", "safety_hub.cli", "uplink", "status"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
    found = re.search(r"^province: (\d+) record\(s\) waiting", out.stdout, re.MULTILINE)
    assert found, out.stdout
    return int(found.group(1))


def first_arrivals(received: list[Envelope]) -> dict[str, Envelope]:
    """Each dataId's first envelope, in arrival order; a repeat must carry the same record."""
    first: dict[str, Envelope] = {}
    for envelope in received:
        seen = first.setdefault(envelope.data_id, envelope)
        assert seen.records == envelope.records, f"dataId {envelope.data_id} changed its record"
    return first


def test_kill_9_of_the_active_node_with_an_uplink_backlog_the_new_active_node_sends_it(
    mosquitto: Any, pg_url: str, tmp_path: Path
) -> None:
    """The platform down, a backlog of readings and warnings in the shared queue, kill -9 of
    the active node, the platform back: the node that took over sends the whole backlog the
    dead node left, in its queue order; every reading arrives once by dataId and in order per
    tag, none lost; the dead node's cursors hold (no base data sent again)."""
    receiver = EnvelopeReceiver(KEY.encode()).start()
    config = tmp_path / "uplink.yaml"
    config.write_text(uplink_yaml(receiver.port, rate=1000), encoding="utf-8")
    extra = {
        "SAFETY_HUB_PLANT": str(SAMPLE_PLANT),
        "SAFETY_HUB_UPLINK": str(config),
        KEY_ENV: KEY,
    }
    a, b = make_pair(tmp_path, mosquitto, pg_url, pg_url, **extra)
    feed: Feed | None = None
    try:
        a.start()
        b.start(standby=True)
        wait_for(lambda: uplink(a)["backlog"] == 0 and uplink(a)["sent"] > 0, 30, "base data")
        feed = Feed(mosquitto.port)
        for _ in range(3):
            feed.publish_step(a)
        wait_for(lambda: uplink(a)["backlog"] == 0, 30, "the first steps sent")
        receiver.stop()
        down_at = time.monotonic()
        while time.monotonic() - down_at < OUTAGE_S or feed.step <= ALARM_STEPS[-1]:
            feed.publish_step(a)
        wait_for(
            lambda: uplink(a)["queued_by_kind"].get("warning", 0) >= 1, 20, "the alarm's warning"
        )
        standby_view = uplink(b)  # the standby reads the same queue, and sends nothing
        assert standby_view["backlog"] > 0 and standby_view["sent"] == 0
        assert standby_view["connected"] is None
        assert uplink(a)["connected"] is False
        a.kill9()
        left = queued_ids(pg_url)  # what the dead node left, in its send order
        assert len(left) >= len(TAGS) * 3, left
        assert waiting_by_the_cli(pg_url) >= len(left)
        wait_for(lambda: ready(b), 30, "the standby to take over")
        receiver.start()
        for _ in range(3):  # the new active node goes on from the dead node's cursors
            feed.publish_step(b)
        wait_for(lambda: uplink(b)["backlog"] == 0, 60, "the backlog sent by the new node")
        state_b = uplink(b)
        assert state_b["sent"] >= len(left) and state_b["connected"] is True
        assert state_b["queued_by_kind"].get("tag", 0) == 0, "base data queued again"
    finally:
        if feed is not None:
            feed.close()
        for hub in (a, b):
            hub.stop()
        receiver.stop()

    assert receiver.problems == []
    received = receiver.received()
    first = first_arrivals(received)
    assert set(left) <= set(first), f"lost in the handover: {sorted(set(left) - set(first))}"
    arrival = list(first)
    assert [d for d in arrival if d in set(left)] == left, "the backlog out of its send order"
    readings = [e.records[0] for e in first.values() if e.service_id == SERVICES["reading"]]
    for tag in TAGS:
        values = [r["VALUE"] for r in readings if r["BIT_NO"] == tag]
        assert values == feed.expected[tag], tag
    assert len(readings) == len(TAGS) * feed.step
    warnings = [e.records[0] for e in first.values() if e.service_id == SERVICES["warning"]]
    raised = [w for w in warnings if w["BIT_NO"] == "LT-1101" and w["ALARM_EVENT"] == "raise"]
    assert raised and all(w["ALARM_VALUE"] == 2.5 for w in raised), warnings
    assert len({w["ALARM_ID"] for w in raised}) == len(raised)  # each alarm raised once
    assert all(w["HAZARD_CODE"] == SOURCE for w in warnings)
    print(
        f"backlog left by the killed node: {len(left)} records; received {len(received)} "
        f"envelopes, {len(first)} dataIds, {len(received) - len(first)} repeats"
    )
