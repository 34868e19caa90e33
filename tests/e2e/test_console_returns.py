"""The console shows a latched alarm's returns: gas that comes back before the reset does not
sound again, and the row says how often it came back and when last."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.console_helpers import console_browser, open_console
from tests.e2e.test_console import LIVE, Site, row, site  # noqa: F401 (the fixture)
from tests.integration.hubproc import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_console_shows_returns_of_a_latched_alarm(site: Site, tmp_path: Path) -> None:  # noqa: F811
    """Level-1 chlorine, gone, back: one annunciation (the horn is not re-armed), the row and
    the detail show "复现 1 次 · 最近 HH:MM:SS" / "returned 1× · last HH:MM:SS"."""
    errors: list[str] = []
    with console_browser(tmp_path / "chromium-profile") as context:
        page = open_console(context, site.hub.url, site.token, errors)
        expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE)
        site.gas(0.45)
        level1 = site.wait_alarm("ToxicGasLevel1")
        line = row(page, level1["id"])
        expect(line).to_be_visible(timeout=LIVE)
        expect(line.locator(".returns")).to_have_count(0)
        page.click("#btn-silence")
        expect(page.locator("body")).to_have_attribute("data-sound", "silenced")

        site.gas(0.01)
        wait_for(lambda: site.alarm("ToxicGasLevel1")["state"] == "latched", 30, "the clear")  # type: ignore[index]
        site.gas(0.45)
        wait_for(lambda: site.alarm("ToxicGasLevel1")["returns"] == 1, 30, "the return")  # type: ignore[index]
        back = site.alarm("ToxicGasLevel1")
        assert back is not None and (back["count"], back["state"]) == (1, "unacknowledged")
        returns = line.locator(".returns")
        expect(returns).to_have_attribute("data-returns", "1", timeout=LIVE)
        expect(returns).to_contain_text("复现 1 次 · 最近 ")
        expect(page.locator("body")).to_have_attribute("data-sound", "silenced")  # no new alarm

        line.locator("td.c-desc").click()
        expect(page.locator("#detail-facts")).to_contain_text("复现 1 次")
        expect(page.locator('#journal-rows tr[data-action="reactivate"]')).to_have_count(1)
        page.click("#drawer-close")
        page.click("#btn-lang")
        expect(line.locator(".returns")).to_contain_text("returned 1× · last ")
    assert errors == []
