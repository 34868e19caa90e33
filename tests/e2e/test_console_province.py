"""Province mode in the console: the park list above the plan shows each park with its worst
open warning tier (a real chromium on a real hub process in province mode, records published
as a park hub's MQTT bridge would)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.console_helpers import console_browser, open_console
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.e2e


def publish(port: int, park: str, kind: str, ident: int, data: dict[str, Any]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bridge-{park}-{ident}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    body = {"park": park, "dataId": f"{ident:032x}", "kind": kind, "key": "k", "data": data}
    client.publish(f"province/v1/{park}/records", json.dumps(body), qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_the_park_list_shows_each_park_with_its_worst_tier(mosquitto: Any, tmp_path: Path) -> None:
    hub = HubProcess(
        tmp_path / "province",
        {
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_PROVINCE": "on",
            "SAFETY_HUB_NOTIFY": "off",
        },
    )
    hub.start()
    try:
        ent = {"enterprise": "e1", "name": "E1"}
        publish(mosquitto.port, "park-a", "enterprise", 1, ent)
        publish(mosquitto.port, "park-b", "enterprise", 2, ent)
        red = {"enterprise": "e1", "point_code": "e1/GT-1", "tag": "GT-1", "alarm_id": 5}
        publish(
            mosquitto.port, "park-a", "warning", 3, {**red, "tier": "red", "state": "acknowledged"}
        )
        wait_for(lambda: len(hub.get("/api/v1/province/parks").json()["parks"]) == 2, 20, "parks")
        errors: list[str] = []
        with console_browser(tmp_path / "chromium", locale="en-US") as context:
            page = open_console(context, hub.url, hub.token, errors)
            parks = page.locator("#province-parks")
            parks.wait_for(state="visible", timeout=20_000)
            page.locator('#province-parks li[data-park="park-a"]').wait_for(timeout=20_000)
            a = page.locator('#province-parks li[data-park="park-a"]')
            b = page.locator('#province-parks li[data-park="park-b"]')
            assert a.get_attribute("data-tier") == "red"
            assert b.get_attribute("data-tier") == "none"
            assert a.get_attribute("data-link") == "up" and "1" in a.locator(".open").inner_text()
            items = page.locator("#province-parks li").all()
            assert [i.get_attribute("data-park") for i in items] == ["park-a", "park-b"]
            assert page.locator("#plan").is_visible()  # the plan stays, below the list
        assert errors == []
    finally:
        hub.stop()


def test_clicking_a_park_shows_its_enterprises_hazard_sources_and_readings(
    mosquitto: Any, tmp_path: Path
) -> None:
    """The drill-down below the park list: a park's enterprises, each hazard source with its
    worst open tier and latest readings (from GET /api/v1/province/parks/{park} and
    .../readings); clicking the park again closes it."""
    hub = HubProcess(
        tmp_path / "province",
        {
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_PROVINCE": "on",
            "SAFETY_HUB_NOTIFY": "off",
        },
    )
    hub.start()
    try:
        port, ts = mosquitto.port, 1_795_651_200_000  # 2026-11-27 08:00 +08:00
        publish(port, "park-a", "enterprise", 11, {"enterprise": "e1", "name": "氯碱化工"})
        publish(port, "park-a", "enterprise", 12, {"enterprise": "e2", "name": "储运"})
        hs = {"enterprise": "e1", "hazard_source": "HS-1", "name": "液氯罐区", "grade": 1}
        publish(port, "park-a", "hazard_source", 13, hs)
        gt = {"enterprise": "e1", "hazard_source": "HS-1", "tag": "GT-1", "point_code": "e1/GT-1"}
        reading = {"value": 1.2, "eu": "ppm", "quality": "good", "ts_ms": ts}
        publish(port, "park-a", "reading", 14, {**gt, **reading})
        outside = {"enterprise": "e1", "hazard_source": "", "tag": "TT-9", "point_code": "e1/TT-9"}
        publish(port, "park-a", "reading", 15, {**outside, **reading, "value": 35.5, "eu": "°C"})
        warn = {**gt, "alarm_id": 5, "tier": "red", "state": "unacknowledged"}
        publish(port, "park-a", "warning", 16, warn)
        publish(port, "park-b", "enterprise", 17, {"enterprise": "b1", "name": "B"})
        wait_for(
            lambda: (
                hub.get("/api/v1/province/parks/park-a/readings").status_code == 200
                and len(hub.get("/api/v1/province/parks/park-a/readings").json()["readings"]) == 2
                and hub.get("/api/v1/province/parks/park-a").json()["worst_tier"] == "red"
                and len(hub.get("/api/v1/province/parks").json()["parks"]) == 2
            ),
            20,
            "both parks, park A's readings and warning",
        )
        errors: list[str] = []
        with console_browser(tmp_path / "chromium", locale="en-US") as context:
            page = open_console(context, hub.url, hub.token, errors)
            park_a = page.locator('#province-parks li[data-park="park-a"]')
            park_a.wait_for(timeout=20_000)
            detail = page.locator("#province-detail")
            assert not detail.is_visible()
            park_a.click()
            detail.wait_for(state="visible", timeout=20_000)
            assert detail.get_attribute("data-park") == "park-a"
            assert park_a.get_attribute("aria-pressed") == "true"
            e1 = detail.locator('section.prov-ent[data-enterprise="e1"]')
            assert e1.get_attribute("data-tier") == "red" and "氯碱化工" in e1.inner_text()
            source = e1.locator('.prov-hs[data-hazard-source="HS-1"]')
            assert source.get_attribute("data-tier") == "red"
            assert "液氯罐区" in source.inner_text() and "1级" in source.inner_text()  # zh first
            row = source.locator('tr[data-tag="GT-1"]').inner_text()
            assert "1.20" in row and "ppm" in row
            assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:00", row)  # the source time
            other = e1.locator('.prov-other tr[data-tag="TT-9"]').inner_text()
            assert "35.5" in other and "°C" in other
            e2 = detail.locator('section.prov-ent[data-enterprise="e2"]')
            assert e2.get_attribute("data-tier") == "none"
            assert [
                s.get_attribute("data-enterprise") for s in detail.locator("section.prov-ent").all()
            ] == ["e1", "e2"]
            page.locator("#btn-lang").click()  # the drill-down follows the language
            detail.locator("h3", has_text="major hazard sources").wait_for(timeout=20_000)
            assert "grade 1" in source.inner_text()
            assert "1 open warning(s)" in park_a.inner_text()  # the park list follows too
            page.locator('#province-parks li[data-park="park-b"]').click()
            page.locator('#province-detail[data-park="park-b"]').wait_for(timeout=20_000)
            assert detail.locator("section.prov-ent").count() == 1
            page.locator('#province-parks li[data-park="park-b"]').click()  # again: closed
            detail.wait_for(state="hidden", timeout=20_000)
            assert page.locator("#plan").is_visible()
        assert errors == []
    finally:
        hub.stop()
