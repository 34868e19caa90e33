"""Helpers for the console's browser tests and its screenshots.

- :func:`console_browser`: Debian's ``chromium`` (never a downloaded browser build) driven by
  Playwright, headless, with a fresh user-data-dir.
- :class:`Feeder`: a live gateway stand-in that publishes chosen tags every ``period`` seconds
  over MQTT, with values the caller changes to stage an incident.
- :func:`normal_values`: a plausible normal value for every tag of a plant (inside its
  setpoints), so a screenshot shows a quiet park around the incident.
- :func:`open_console`: the console page signed in with a token (``#token=...``), optionally
  served under a Content-Security-Policy with the violations chromium reports collected.

Nothing here imports pytest: ``tests/e2e/screenshots.py`` uses it as a script.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Route, sync_playwright

from safety_hub.api.app import CONTENT_SECURITY_POLICY
from safety_hub.registry import Plant
from simulators.gateway import Gateway

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The console sounds a WebAudio horn; a wall screen is set up to allow it without a click.
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORT = {"width": 1920, "height": 1080}
# The policy the hub sends and the console works under: its files, its API calls and the event
# stream all from the hub's own origin, nothing inline (no <script> or <style> blocks, no on*
# handlers, no style attributes), no eval, never framed.
CONSOLE_CSP = CONTENT_SECURITY_POLICY
CONSOLE_PATHS = ("/console/", "/console/index.html")


def chromium_path() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        raise RuntimeError(
            "Debian's chromium is not installed: run `make setup` as root, or "
            "`apt-get install chromium fonts-noto-cjk`"
        )
    return found


@contextmanager
def console_browser(
    user_data_dir: Path, *, locale: str = "zh-CN", viewport: Mapping[str, int] = VIEWPORT
) -> Iterator[BrowserContext]:
    """A headless chromium with a fresh profile in ``user_data_dir``; closed on exit."""
    user_data_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": viewport["width"], "height": viewport["height"]},
            locale=locale,
            timezone_id="Asia/Shanghai",
        )
        try:
            yield context
        finally:
            context.close()


def open_console(
    context: BrowserContext,
    base_url: str,
    token: str | None,
    errors: list[str] | None = None,
    *,
    csp: str | None = None,
    csp_violations: list[str] | None = None,
) -> Page:
    """A new page on the console; with a token it signs in through the URL fragment. Uncaught
    script errors of the page go to ``errors``. With ``csp`` the console's page is served with
    that Content-Security-Policy header (in place of any the hub sends), and every violation
    chromium reports goes to ``csp_violations``."""
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    if csp_violations is not None:

        def on_console(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                csp_violations.append(message.text)

        page.on("console", on_console)
    if csp is not None:
        policy = csp

        def with_csp(route: Route) -> None:
            response = route.fetch()
            headers = {k: v for k, v in response.headers.items() if k != "content-security-policy"}
            route.fulfill(response=response, headers={**headers, "content-security-policy": policy})

        # Only the document's header governs the page; the API's answers pass untouched.
        page.route(lambda url: urlsplit(url).path in CONSOLE_PATHS, with_csp)
    url = f"{base_url}/console/"
    if token is not None:
        url += f"#token={token}"
    page.goto(url)
    return page


def normal_values(plant: Plant, seed: int = 7) -> dict[str, dict[str, float]]:
    """enterprise -> tag -> a value well inside the tag's setpoints and range."""
    rng = random.Random(seed)
    out: dict[str, dict[str, float]] = {}
    for info in plant.tags.values():
        if not info.in_service:
            continue
        sp = dict(info.setpoints)
        lo, hi = info.range_lo, info.range_hi
        kind = info.kind
        if kind in ("combustible_gas", "toxic_gas", "open_path_gas"):
            value = (hi - lo) * 0.004 * rng.random()
        elif kind == "oxygen":
            value = 20.9 + rng.uniform(-0.05, 0.05)
        elif kind.startswith("sis") or kind == "status":
            value = 1.0 if kind == "status" else 0.0
        else:
            low = max([lo, *(sp[k] for k in ("l", "ll") if k in sp)])
            high = min([hi, *(sp[k] for k in ("h", "hh") if k in sp)])
            value = low + (high - low) * rng.uniform(0.4, 0.6)
        out.setdefault(info.enterprise, {})[info.tag] = round(value, 4)
    return out


class Feeder:
    """Publishes ``values`` (enterprise -> tag -> value) every ``period`` s, one gateway per
    enterprise, as live gateways do, until closed. :meth:`set` changes a value; the next round
    publishes it (call :meth:`publish_now` to send at once)."""

    def __init__(
        self,
        host: str,
        port: int,
        values: Mapping[str, Mapping[str, float]],
        *,
        period: float = 2.0,
        jitter: float = 0.0,
    ) -> None:
        self.values = {ent: dict(tags) for ent, tags in values.items()}
        self.period = period
        self.jitter = jitter
        self._rng = random.Random(11)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._gateways = {ent: Gateway(host, port, ent) for ent in self.values}
        for gw in self._gateways.values():
            if not gw.wait_connected(10):
                raise RuntimeError(f"gateway {gw.enterprise} could not connect to {host}:{port}")
        self._thread = threading.Thread(target=self._run, name="console-feeder", daemon=True)
        self._thread.start()

    def set(self, enterprise: str, tag: str, value: float) -> None:
        with self._lock:
            self.values.setdefault(enterprise, {})[tag] = value

    def pause(self, enterprise: str) -> None:
        """Stop publishing ``enterprise``'s readings (its gateway stays connected): it goes
        quiet."""
        with self._lock:
            self.values.pop(enterprise, None)

    def publish_readings(self, enterprise: str, readings: list[dict[str, Any]]) -> None:
        """Publish these readings (``tag``, ``v``, ``ts``) at once, e.g. a backfill of history."""
        gateway = self._gateways[enterprise]
        for start in range(0, len(readings), 200):
            gateway.publish(readings[start : start + 200])

    def publish_now(self) -> None:
        self._wake.set()

    def _round(self) -> None:
        ts = int(time.time() * 1000)
        with self._lock:
            snapshot = {ent: dict(tags) for ent, tags in self.values.items()}
        for ent, tags in snapshot.items():
            readings: list[dict[str, Any]] = []
            for tag, value in tags.items():
                if self.jitter and value:
                    value = round(value * (1 + self._rng.uniform(-self.jitter, self.jitter)), 4)
                readings.append({"tag": tag, "v": value, "ts": ts})
            self.publish_readings(ent, readings)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._round()
            self._wake.wait(self.period)
            self._wake.clear()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        for gw in self._gateways.values():
            gw.close(graceful=False)

    def __enter__(self) -> Feeder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
