"""The closed loop on the console: a red warning not disposed within its limit appears in the
overdue list with its growing age; the operator disposes of it through the dialog in the
detail; it leaves the overdue list and the disposal shows in the detail and the journal.

The hub runs with a 5-second red disposal limit (``SAFETY_HUB_DISPOSAL_LIMIT_RED_S``) so the
wall-clock hub makes the warning overdue within the test; chlorine on GT-1101 and GT-1102 (both
past level 2) confirms the leak in zone Z-TK101 by its 2oo3 vote: ``GasLeakConfirmed``, critical.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from safety_hub.registry import default_plant_path, load_plant
from tests.e2e.console_helpers import Feeder, console_browser, normal_values, open_console
from tests.e2e.test_console import ENT, LIVE, Site, row
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ZONE = "Z-TK101"
TEXT = "现场核查：标定气体测试引起，非泄漏"


@pytest.fixture
def red_site(mosquitto: MosquittoProcess, tmp_path: Path) -> Iterator[Site]:
    token = secrets.token_urlsafe(24)
    hub = HubProcess(
        tmp_path / "hub",
        {
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_ADMIN_TOKEN": token,
            "SAFETY_HUB_DISPOSAL_LIMIT_RED_S": "5",
        },
    )
    normal = normal_values(load_plant(default_plant_path()))
    with Feeder("127.0.0.1", mosquitto.port, normal, period=2.0) as feeder:
        try:
            hub.start()
            yield Site(hub, feeder, token)
        finally:
            hub.stop()


def confirmed(site: Site) -> dict[str, Any] | None:
    for a in site.get(f"/api/v1/alarms?enterprise={ENT}&include_normal=true"):
        if a["alert"] == "GasLeakConfirmed" and a["zone"] == ZONE:
            return dict(a)
    return None


def test_overdue_red_warning_is_disposed_through_the_dialog(red_site: Site, tmp_path: Path) -> None:
    site = red_site
    errors: list[str] = []
    with console_browser(tmp_path / "chromium-profile") as context:
        page = open_console(context, site.hub.url, site.token, errors)
        expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE)
        page.click("#tab-overdue")
        expect(page.locator("#alarms-empty")).to_have_text("没有超时未处置的预警")

        for tag in ("GT-1101", "GT-1102"):
            site.feeder.set(ENT, tag, 1.5)
        site.feeder.publish_now()
        wait_for(lambda: confirmed(site) is not None, 30, "GasLeakConfirmed", 0.2)
        wait_for(lambda: confirmed(site)["disposal_overdue"], 30, "overdue", 0.2)  # type: ignore[index]
        red = confirmed(site)
        assert red is not None and red["tier"] == "red" and red["disposal"] is None

        # In the overdue list, highlighted red, with an age that grows.
        line = row(page, red["id"])
        expect(line).to_be_visible(timeout=LIVE)
        expect(line).to_have_class(re.compile(r"\boverdue\b"))
        expect(line).to_have_class(re.compile(r"\bprio-critical\b"))
        age = line.locator(".badge-overdue .age")
        expect(age).to_have_text(re.compile(r"^\d+:\d\d:\d\d$"))
        before = age.inner_text()
        expect(age).not_to_have_text(before, timeout=5_000)
        assert page.locator("#count-overdue").inner_text() == "1"

        # The detail's dispose dialog: category and text.
        line.locator("td.c-desc").click()
        expect(page.locator("#detail-facts")).to_contain_text("未处置")
        page.click('#detail-actions button[data-act="dispose"]')
        dialog = page.locator("#action-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#field-comment")).to_be_hidden()
        page.click("#action-ok")  # no text yet: refused in the dialog
        expect(page.locator("#action-error")).to_have_text("请填写处置情况")
        page.select_option("#dispose-category", "false_alarm")
        page.fill("#dispose-text", TEXT)
        page.click("#action-ok")
        expect(dialog).to_be_hidden(timeout=LIVE)

        # It leaves the overdue list; the detail and the journal show the disposal.
        expect(line).to_have_count(0, timeout=LIVE)
        expect(page.locator("#count-overdue")).to_have_text("0")
        facts = page.locator("#detail-facts")
        expect(facts).to_contain_text(f"误报 · {TEXT}")
        expect(facts).to_contain_text("超时")  # it was late: the due time says since when
        expect(page.locator('#journal-rows tr[data-action="dispose"]')).to_have_count(
            1, timeout=LIVE
        )
        expect(page.locator('#journal-rows tr[data-action="disposal_overdue"]')).to_have_count(1)
        expect(page.locator('#detail-actions button[data-act="dispose"]')).to_be_disabled()
        page.click("#tab-active")
        expect(row(page, red["id"]).locator(".badge-disp")).to_have_text("已处置")
        page.click("#btn-lang")
        expect(page.locator("#detail-facts")).to_contain_text(f"False alarm · {TEXT}")

    done = confirmed(site)
    assert done is not None and done["disposal"]["category"] == "false_alarm"
    assert done["disposal"]["text"] == TEXT and not done["disposal_overdue"]
    me = httpx.get(f"{site.hub.url}/api/v1/me", headers=site.auth, timeout=10).json()
    assert done["disposal"]["by"] == me["user"]
    assert errors == []
