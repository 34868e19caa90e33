"""A latched gas alarm whose gas comes and goes, end to end: real Mosquitto, the hub as a
process, annunciations counted from the MQTT alarm events."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.hubproc import HubProcess
from tests.integration.test_alarms_e2e import client_for

pytestmark = pytest.mark.integration

ENT, TAG = "e01-chloralkali", "GT-1208"  # Cl2, level 1 at 0.3 ppm, level 2 at 0.6 ppm
KEY = f"ToxicGasLevel1|{ENT}|{TAG}"
HIGHS = 5


def test_latched_level1_chatter_annunciates_once_and_counts_returns(
    mosquitto: Any, tmp_path: Path
) -> None:
    """Level-1 chlorine in and out five times (readings 20 s apart, sent late as a buffering
    gateway does): the MQTT events show one annunciation, then clears and silent
    ``reactivate`` events; the alarm counts 4 returns, keeps its source times and chatters
    in the KPIs."""
    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    watcher, events = client_for(mosquitto.port, f"hazard/v1/{ENT}/alarms")
    try:
        t0 = int(time.time() * 1000) - 200_000  # the readings happened minutes ago
        values = [0.4 if i % 2 == 0 else 0.05 for i in range(2 * HIGHS - 1)]
        times = [t0 + i * 20_000 for i in range(len(values))]
        sent_ms = int(time.time() * 1000)
        for ts, v in zip(times, values, strict=True):
            body = {"readings": [{"tag": TAG, "v": v, "ts": ts}]}
            watcher.publish(f"hazard/v1/{ENT}/telemetry", json.dumps(body), qos=1)

        mine: list[dict[str, Any]] = []
        while len(mine) < len(values):  # one transition per edge
            event = events.get(timeout=30)
            if event["alarm"]["key"] == KEY:
                mine.append(event)
        assert [e["action"] for e in mine] == ["raise"] + ["clear", "reactivate"] * (HIGHS - 1)
        assert [e["annunciated"] for e in mine] == [True] + [False] * (len(values) - 1)
        assert [e["alarm"]["returns"] for e in mine[2::2]] == list(range(1, HIGHS))
        assert mine[-1]["to_state"] == "unacknowledged"  # nobody acknowledged it yet

        (alarm,) = [
            a for a in hub.get(f"/api/v1/alarms?enterprise={ENT}").json() if a["key"] == KEY
        ]
        assert (alarm["count"], alarm["returns"], alarm["state"]) == (
            1,
            HIGHS - 1,
            "unacknowledged",
        )
        assert alarm["active_since_ms"] == alarm["last_active_ms"] == times[-1]
        assert alarm["arrived_ms"] >= sent_ms > times[-1]  # it arrived after it happened
        kpis = hub.get("/api/v1/alarms/kpis?window_s=3600").json()
        assert KEY in [c["key"] for c in kpis["chattering"]]
        assert [b["count"] for b in kpis["bad_actors"] if b["key"] == KEY] == [1]
    finally:
        watcher.loop_stop()
        watcher.disconnect()
        hub.stop()
