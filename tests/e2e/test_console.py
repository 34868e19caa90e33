"""The console in headless chromium against the real hub: an incident, annunciation, silence,
acknowledge with a comment, the journal, the plan's colours, the English switch, sign-out and
sign-in (never "live" before the new session's stream is open), the disconnection banner, all
under the Content-Security-Policy the console needs (``CONSOLE_CSP``).

The hub is ``safety-hub run`` as a subprocess with a private Mosquitto; gateways publish normal
values for every tag of the sample park (so nothing goes stale) and the test stages the
incident through MQTT only: chlorine detector GT-1101 (zone Z-TK101 of hazard source HS-E01-01)
past level 1, then past level 2.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from safety_hub.registry import default_plant_path, load_plant
from tests.e2e.console_helpers import (
    CONSOLE_CSP,
    Feeder,
    console_browser,
    normal_values,
    open_console,
)
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ENT = "e01-chloralkali"
HS = "HS-E01-01"
DETECTOR = "GT-1101"
YELLOW = "rgb(255, 214, 10)"  # --yellow: medium
ORANGE = "rgb(255, 138, 0)"  # --orange: high
LIVE = 15_000  # ms the console may take to show a change (stream, or the fallback poll)
STREAM_RETRY_MAX = 30_000  # ms: the console's longest wait between stream retries (api.js)


class Site:
    def __init__(self, hub: HubProcess, feeder: Feeder, token: str) -> None:
        self.hub = hub
        self.feeder = feeder
        self.token = token
        self.auth = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.hub.url}{path}", headers=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()

    def alarm(self, alert: str) -> dict[str, Any] | None:
        for a in self.get(f"/api/v1/alarms?enterprise={ENT}&hazard_source={HS}"):
            if a["alert"] == alert and a["tag"] == DETECTOR:
                return dict(a)
        return None

    def wait_alarm(self, alert: str) -> dict[str, Any]:
        wait_for(lambda: self.alarm(alert) is not None, 30, f"{alert} on {DETECTOR}", 0.2)
        found = self.alarm(alert)
        assert found is not None
        return found

    def gas(self, value: float) -> None:
        self.feeder.set(ENT, DETECTOR, value)
        self.feeder.publish_now()


@pytest.fixture
def site(mosquitto: MosquittoProcess, tmp_path: Path) -> Iterator[Site]:
    token = secrets.token_urlsafe(24)
    hub = HubProcess(
        tmp_path / "hub",
        {"SAFETY_HUB_MQTT_URL": mosquitto.url, "SAFETY_HUB_ADMIN_TOKEN": token},
    )
    normal = normal_values(load_plant(default_plant_path()))
    # The park publishes before the hub starts, as in the field: the hub's data-silence windows
    # (3 intervals, 15 s) run from its start, and a feeder started only once the hub is ready
    # could miss them on a loaded machine (stale and voting alarms on a quiet park).
    with Feeder("127.0.0.1", mosquitto.port, normal, period=2.0) as feeder:
        try:
            hub.start()  # inside: a hub that never got ready is still stopped
            yield Site(hub, feeder, token)
        finally:
            hub.stop()


def is_stream(url: str) -> bool:
    return urlsplit(url).path == "/api/v1/stream"


def row(page: Page, alarm_id: int) -> Any:
    return page.locator(f'#alarm-rows tr[data-alarm-id="{alarm_id}"]')


def test_console_incident_to_acknowledged_with_journal(site: Site, tmp_path: Path) -> None:
    """An operator follows an incident to an acknowledged alarm with its journal; the console
    says live only while its own session's stream is open, and breaks no CSP rule."""
    me = site.get("/api/v1/me")
    assert me["role"] in ("operator", "admin")
    # The browser gets the hub's own policy (no stand-in): exactly the one the console needs.
    document = httpx.get(f"{site.hub.url}/console/", timeout=10)
    assert document.headers["content-security-policy"] == CONSOLE_CSP
    assert "frame-ancestors 'none'" in CONSOLE_CSP
    errors: list[str] = []
    csp_violations: list[str] = []
    with console_browser(tmp_path / "chromium-profile") as context:
        page = open_console(
            context, site.hub.url, site.token, errors, csp_violations=csp_violations
        )
        # Signed in from the URL fragment: who and which role; the token left the address bar.
        expect(page.locator("#user")).to_contain_text(me["user"], timeout=LIVE)
        assert "token=" not in page.url
        expect(page.locator("#alarms-title")).to_have_text("当前报警")  # Chinese by default
        expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE)
        expect(page.locator(f'#plan g.hs[data-hs="{HS}"]')).to_have_attribute("data-tier", "none")

        # Incident: the chlorine detector past level 1 (0.3 ppm), below level 2 (0.6 ppm).
        site.gas(0.45)
        level1 = site.wait_alarm("ToxicGasLevel1")
        first = row(page, level1["id"])
        expect(first).to_be_visible(timeout=LIVE)
        expect(first).to_have_class(re.compile(r"\bunack\b"))  # flashing
        expect(first).to_have_class(re.compile(r"\bfirst-out\b"))  # pinned first-out
        expect(first).to_contain_text(DETECTOR)
        source = page.locator(f'#plan g.hs[data-hs="{HS}"]')
        expect(source).to_have_attribute("data-tier", "yellow", timeout=LIVE)
        fill = source.locator("circle.dot").evaluate("el => getComputedStyle(el).fill")
        assert fill == YELLOW
        expect(page.locator("body")).to_have_attribute("data-sound", "on")

        # Silence is not acknowledge: the horn stops, the alarm still waits and still flashes.
        page.click("#btn-silence")
        expect(page.locator("body")).to_have_attribute("data-sound", "silenced")
        assert site.alarm("ToxicGasLevel1")["state"] == "unacknowledged"  # type: ignore[index]
        expect(first).to_have_class(re.compile(r"\bunack\b"))

        # A new alarm sounds again: past level 2, the source turns orange.
        site.gas(0.8)
        level2 = site.wait_alarm("ToxicGasLevel2")
        expect(row(page, level2["id"])).to_be_visible(timeout=LIVE)
        expect(page.locator("body")).to_have_attribute("data-sound", "on", timeout=LIVE)
        expect(source).to_have_attribute("data-tier", "orange", timeout=LIVE)
        fill = source.locator("circle.dot").evaluate("el => getComputedStyle(el).fill")
        assert fill == ORANGE
        # Higher priority first, the first-out still pinned on top.
        ids = page.locator("#alarm-rows tr").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.alarmId))"
        )
        assert ids.index(level1["id"]) == 0 < ids.index(level2["id"])

        # Acknowledge level 1 from its detail, with a comment; the journal shows who and why.
        first.locator("td.c-desc").click()
        drawer = page.locator("#drawer")
        expect(drawer).to_be_visible()
        expect(page.locator("#detail-summary")).to_contain_text(DETECTOR)
        expect(page.locator('#journal-rows tr[data-action="raise"]')).to_have_count(1)
        expect(page.locator("#trend-tag")).to_have_value(DETECTOR)
        expect(page.locator('#trend-chart g.sp[data-setpoint="l1"]')).to_have_count(1)
        expect(page.locator('#trend-chart g.sp[data-setpoint="l2"]')).to_have_count(1)
        page.click('#detail-actions button[data-act="acknowledge"]')
        dialog = page.locator("#action-dialog")
        expect(dialog).to_be_visible()
        comment = "现场确认：1#储罐法兰微漏，已关阀"
        page.fill("#action-comment", comment)
        page.click("#action-ok")
        expect(dialog).to_be_hidden()
        ack = page.locator('#journal-rows tr[data-action="ack"]')
        expect(ack).to_have_count(1, timeout=LIVE)
        expect(ack.locator(".j-user")).to_have_text(me["user"])
        expect(ack.locator(".j-comment")).to_have_text(comment)
        acked = site.alarm("ToxicGasLevel1")
        assert acked is not None
        assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", me["user"])
        expect(first).not_to_have_class(re.compile(r"\bunack\b"), timeout=LIVE)
        expect(page.locator('#detail-actions button[data-act="acknowledge"]')).to_be_disabled()
        page.click("#drawer-close")

        # The English switch changes the labels and is kept across a reload (as is the token).
        page.click("#btn-lang")
        expect(page.locator("#alarms-title")).to_have_text("Active alarms")
        expect(first.locator(".state")).to_have_text("Acknowledged")
        page.reload()
        expect(page.locator("#alarms-title")).to_have_text("Active alarms")
        expect(page.locator("#user")).to_contain_text(me["user"], timeout=LIVE)
        expect(row(page, level2["id"])).to_be_visible(timeout=LIVE)
        expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE)

        # Log out: the token prompt, and the console no longer says it is live.
        page.click("#btn-logout")
        prompt = page.locator("#token-dialog")
        expect(prompt).to_be_visible()
        expect(page.locator("body")).to_have_attribute("data-conn", "down")
        # A wrong token is refused.
        page.fill("#token-input", "not-a-token")
        page.click("#token-submit")
        expect(page.locator("#token-error")).to_have_text("The token is not valid", timeout=LIVE)

        # The right one signs in again, while the event stream is refused (as by a proxy that
        # drops it): the list loads, but the console must not claim to be live on the strength
        # of the previous session's stream; it says the stream is down and that it polls.
        def on_stream(route: Route) -> None:
            route.abort("connectionrefused")

        page.route(is_stream, on_stream)
        page.fill("#token-input", site.token)
        page.click("#token-submit")
        expect(prompt).to_be_hidden(timeout=LIVE)
        expect(row(page, level2["id"])).to_be_visible(timeout=LIVE)
        expect(page.locator("body")).to_have_attribute("data-conn", "down", timeout=LIVE)
        banner = page.locator("#banner")
        expect(banner).to_contain_text("Live connection lost", timeout=LIVE)
        # Let the stream through: the console retries (backing off up to STREAM_RETRY_MAX) and
        # is live once it opens.
        page.unroute(is_stream, on_stream)
        expect(page.locator("body")).to_have_attribute(
            "data-conn", "live", timeout=STREAM_RETRY_MAX + LIVE
        )
        expect(banner).to_be_hidden(timeout=LIVE)

        # The hub goes away: the console says so.
        site.hub.kill9()
        expect(banner).to_be_visible(timeout=LIVE)
        expect(page.locator("body")).to_have_attribute("data-conn", "down")

        # No CSP violation all along; a canary shows chromium enforced the policy meanwhile.
        assert csp_violations == []
        with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
            page.evaluate(
                "document.body.insertAdjacentHTML('beforeend', '<i style=\"color: red\"></i>')"
            )
    assert errors == []
