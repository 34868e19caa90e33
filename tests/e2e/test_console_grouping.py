"""The console shows a link-down alarm with its grouped children: headless chromium against the
hub as a process, a private Mosquitto, a park whose gateways publish normal values, and one
enterprise that goes quiet."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from safety_hub.registry import default_plant_path, load_plant
from tests.e2e.console_helpers import Feeder, console_browser, normal_values, open_console
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

QUIET = "e02-sodium"
LINK_KEY = f"EnterpriseLinkDown|{QUIET}|{QUIET}"
LIVE = 15_000
# QUIET's gateway reports every QUIET_PERIOD_S (the others every second); the hub trusts the
# interval it learns from the gaps between messages after 8 gaps (rules/slots.py LEARN_GAPS, gaps
# of 200 ms and more), and until then waits its rule's full 60 s of silence before the link is
# down. LEARNED messages give it more gaps than it needs.
QUIET_PERIOD_S = 0.3
LEARNED = 12


def test_link_down_row_shows_and_expands_its_grouped_children(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    token = secrets.token_urlsafe(24)
    auth = {"Authorization": f"Bearer {token}"}
    hub = HubProcess(
        tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url, "SAFETY_HUB_ADMIN_TOKEN": token}
    )
    plant = load_plant(default_plant_path())
    expected = len([k for k in plant.tags if k[0] == QUIET]) + sum(
        1 for (e, _), z in plant.zones.items() if e == QUIET and z.voting
    )

    def api(path: str) -> Any:
        response = httpx.get(f"{hub.url}{path}", headers=auth, timeout=10)
        response.raise_for_status()
        return response.json()

    def link() -> dict[str, Any] | None:
        found = api(f"/api/v1/alarms?enterprise={QUIET}&limit=1000")
        return next((a for a in found if a["key"] == LINK_KEY), None)

    def learned() -> bool:
        metric = f'safety_hub_readings_received_total{{enterprise="{QUIET}"}}'
        return hub.metric(metric) >= LEARNED * len(quiet_values[QUIET])

    errors: list[str] = []
    values = normal_values(plant)
    quiet_values = {QUIET: values.pop(QUIET)}
    with (
        Feeder("127.0.0.1", mosquitto.port, values, period=1.0),
        Feeder("127.0.0.1", mosquitto.port, quiet_values, period=QUIET_PERIOD_S) as feeder,
    ):
        try:
            hub.start()
            with console_browser(tmp_path / "chromium-profile") as context:
                page = open_console(context, hub.url, token, errors)
                expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE)
                wait_for(learned, 60, f"{LEARNED} messages of {QUIET}", 0.5)
                feeder.pause(QUIET)  # its gateway stays connected but sends nothing
                wait_for(lambda: link() is not None, 90, "the link-down alarm", 0.5)
                wait_for(
                    lambda: (link() or {}).get("children_count") == expected,
                    90,
                    f"{expected} grouped children",
                    0.5,
                )
                parent = link()
                assert parent is not None and parent["state"] == "unacknowledged"
                row = page.locator(f'#alarm-rows tr[data-alarm-id="{parent["id"]}"]')
                expect(row).to_be_visible(timeout=LIVE)
                button = row.locator("button[data-group]")
                expect(button.locator(".group-count")).to_have_text(str(expected), timeout=LIVE)
                expect(button).to_have_attribute("aria-expanded", "false")
                kids = page.locator(f'#alarm-rows tr.child[data-parent="{LINK_KEY}"]')
                expect(kids).to_have_count(0)
                button.click()
                expect(kids).to_have_count(expected, timeout=LIVE)
                expect(kids.first.locator(".state")).to_have_text(
                    "设计抑制"
                )  # suppressed by design
                ids = page.locator("#alarm-rows tr").evaluate_all(
                    "rows => rows.map(r => Number(r.dataset.alarmId))"
                )
                at = ids.index(parent["id"])
                child_ids = {c["id"] for c in api(f"/api/v1/alarms/{parent['id']}/children")}
                assert set(ids[at + 1 : at + 1 + expected]) == child_ids  # right under it
                kids.first.locator("td.c-desc").click()  # a child opens its own detail
                expect(page.locator("#detail-facts")).to_contain_text("归并于")  # grouped under
                page.click("#drawer-close")
                row.locator("button[data-group]").click()
                expect(kids).to_have_count(0)
        finally:
            hub.stop()
    assert errors == []
