"""The console's header names the node of a redundant pair it talks to and its role (a real
chromium on two real hub processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.console_helpers import console_browser, open_console
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.e2e


def test_console_header_shows_node_and_role_on_both_nodes(
    mosquitto: Any, pg_url: str, tmp_path: Path
) -> None:
    hubs = []
    for node in ("hub-a", "hub-b"):
        hub = HubProcess(
            tmp_path / node,
            {
                "SAFETY_HUB_MQTT_URL": mosquitto.url,
                "SAFETY_HUB_HA": "on",
                "SAFETY_HUB_NODE_ID": node,
                "SAFETY_HUB_STATE_URL": pg_url,
                "SAFETY_HUB_NOTIFY": "off",
            },
        )
        hub.env["SAFETY_HUB_API_PUBLIC_URL"] = hub.url
        hubs.append(hub)
    a, b = hubs
    try:
        a.start()
        b.start(standby=True)
        errors: list[str] = []
        with console_browser(tmp_path / "chromium", locale="en-US") as context:
            on_a = open_console(context, a.url, a.token, errors)
            on_b = open_console(context, b.url, b.token, errors)
            for page in (on_a, on_b):
                page.locator("#node").wait_for(state="visible", timeout=20_000)
            wait_for(lambda: "hub-a" in on_a.locator("#node").inner_text(), 20, "a's header")
            text_a = on_a.locator("#node").inner_text()
            text_b = on_b.locator("#node").inner_text()
            assert on_a.locator("#node").get_attribute("data-ha-role") == "active"
            assert on_b.locator("#node").get_attribute("data-ha-role") == "standby"
            assert text_b.startswith("hub-b") and "hub-a" in text_b, text_b
            assert text_a.startswith("hub-a"), text_a
            assert a.url in (on_b.locator("#node").get_attribute("title") or "")
        assert errors == []
    finally:
        for hub in hubs:
            hub.stop()
