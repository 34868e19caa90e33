"""Province mode in the console: the park list above the plan shows each park with its worst
open warning tier (a real chromium on a real hub process in province mode, records published
as a park hub's MQTT bridge would)."""

from __future__ import annotations

import json
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
