"""Screenshots of the console during a staged incident, for docs/img/ and the README.

    .venv/bin/python -m tests.e2e.screenshots            # writes docs/img/console-*.png
    .venv/bin/python -m tests.e2e.screenshots --out /tmp/shots --width 2560 --height 1440

It starts what a real deployment runs: a private Mosquitto, ``safety-hub run`` as a subprocess
and a gateway per enterprise publishing normal values for every tag of the sample park. Then it
stages an incident through MQTT only: the last 30 minutes of history with a chlorine release at
the liquid-chlorine tank farm of e01 (two of the three detectors of zone Z-TK101 ramping past
level 1 and level 2, so the 2oo3 vote confirms the leak), a high-high pressure at e02 and a
high level at e05. An operator acknowledges one alarm through the API with a comment, then
headless chromium (Debian's, via Playwright) takes:

- ``console-overview.png``: the alarm list, the plan and the counts, in Chinese;
- ``console-detail.png``: the acknowledged alarm's detail with its trend and journal;
- ``console-overview-en.png``: the overview after the English switch.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from safety_hub.registry import Plant, load_plant
from safety_hub.registry.loader import default_plant_path
from tests.e2e.console_helpers import Feeder, console_browser, normal_values, open_console
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess, wait_for

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "docs" / "img"

CL2_ENT = "e01-chloralkali"
CL2_HS = "HS-E01-01"
HISTORY_S = 30 * 60
STEP_S = 20


@dataclass(frozen=True)
class Shot:
    name: str
    path: Path


def say(text: str) -> None:
    print(f"screenshots: {text}", flush=True)


def _tag_over(plant: Plant, enterprise: str, kind: str, key: str) -> tuple[str, float] | None:
    """A tag of ``kind`` with setpoint ``key`` and a value just past it (below the next)."""
    for info in sorted(plant.tags_of(enterprise), key=lambda i: i.tag):
        sp = dict(info.setpoints)
        if info.kind != kind or key not in sp:
            continue
        nxt = {"h": sp.get("hh"), "hh": None}[key]
        top = nxt if nxt is not None else info.range_hi
        return info.tag, round(sp[key] + (top - sp[key]) * 0.4, 3)
    return None


def incident(plant: Plant) -> dict[str, dict[str, Callable[[float], float]]]:
    """enterprise -> tag -> value as a function of minutes before now (0 = now)."""

    def ramp(start_min: float, peak: float, base: float = 0.01) -> Callable[[float], float]:
        def value(ago_min: float) -> float:
            if ago_min >= start_min:
                return base
            frac = min(1.0, (start_min - ago_min) / (start_min - 2))
            return round(base + (peak - base) * frac, 3)

        return value

    staged: dict[str, dict[str, Callable[[float], float]]] = {
        CL2_ENT: {"GT-1101": ramp(12, 0.92), "GT-1102": ramp(9, 0.74)},
    }
    for enterprise, kind, key, after_min in (
        ("e02-sodium", "pressure", "hh", 6),
        ("e05-tankfarm", "level", "h", 15),
    ):
        if enterprise not in plant.enterprises:
            continue
        found = _tag_over(plant, enterprise, kind, key)
        if found is None:
            continue
        tag, value = found
        staged.setdefault(enterprise, {})[tag] = lambda ago, v=value, s=after_min: (
            v if ago < s else None  # type: ignore[misc]
        )
    return staged


def backfill(feeder: Feeder, normal: dict[str, dict[str, float]], staged: Any) -> None:
    """Publish the last HISTORY_S seconds, oldest first, so that trends have a past."""
    now = int(time.time() * 1000)
    for step in range(HISTORY_S // STEP_S, 0, -1):
        ts = now - step * STEP_S * 1000
        ago_min = step * STEP_S / 60
        for ent, tags in normal.items():
            readings = []
            for tag, base in tags.items():
                value: float | None = None
                if tag in staged.get(ent, {}):
                    value = staged[ent][tag](ago_min)
                if value is None:
                    value = base
                readings.append({"tag": tag, "v": value, "ts": ts})
            feeder.publish_readings(ent, readings)


def run(out_dir: Path, width: int, height: int, work: Path) -> list[Shot]:
    plant = load_plant(default_plant_path())
    normal = normal_values(plant)
    staged = incident(plant)
    token = secrets.token_urlsafe(24)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[Shot] = []
    say("starting a private Mosquitto")
    with MosquittoProcess(work / "mosquitto") as broker:
        hub = HubProcess(
            work / "hub",
            {"SAFETY_HUB_MQTT_URL": broker.url, "SAFETY_HUB_ADMIN_TOKEN": token},
        )
        say("starting safety-hub run")
        try:
            hub.start()  # inside: a hub that never got ready is still stopped
            auth = {"Authorization": f"Bearer {token}"}
            feeder = Feeder("127.0.0.1", broker.port, normal, period=2.0, jitter=0.01)
            with feeder:
                say(f"publishing {HISTORY_S // 60} min of history with the incident")
                backfill(feeder, normal, staged)
                for ent, tags in staged.items():
                    for tag, fn in tags.items():
                        value = fn(0.0)
                        if value is not None:
                            feeder.set(ent, tag, value)
                feeder.publish_now()

                def alarms() -> list[dict[str, Any]]:
                    got: list[dict[str, Any]] = httpx.get(
                        f"{hub.url}/api/v1/alarms", headers=auth, timeout=10
                    ).json()
                    return got

                wait_for(
                    lambda: any(a["alert"] == "GasLeakConfirmed" for a in alarms()),
                    60,
                    "the confirmed chlorine leak",
                    interval=0.5,
                )
                time.sleep(3)  # the other staged alarms
                level1 = next(
                    a for a in alarms() if a["alert"] == "ToxicGasLevel1" and a["tag"] == "GT-1101"
                )
                httpx.post(
                    f"{hub.url}/api/v1/alarms/{level1['id']}/acknowledge",
                    headers=auth,
                    json={"comment": "现场确认：1#储罐法兰泄漏，已启动应急预案"},
                    timeout=10,
                ).raise_for_status()
                say(f"{len(alarms())} alarms active; opening the console")
                with console_browser(
                    work / "chromium", viewport={"width": width, "height": height}
                ) as context:
                    page = open_console(context, hub.url, token)
                    page.wait_for_selector(f'#alarm-rows tr[data-alarm-id="{level1["id"]}"]')
                    page.wait_for_selector(f'#plan g.hs[data-hs="{CL2_HS}"][data-tier="red"]')
                    page.wait_for_timeout(1500)
                    shots.append(_shoot(page, out_dir / "console-overview.png", "overview"))
                    page.click(f'#alarm-rows tr[data-alarm-id="{level1["id"]}"] td.c-desc')
                    page.wait_for_selector('#journal-rows tr[data-action="ack"]')
                    page.wait_for_selector("#trend-chart polyline.series")
                    page.locator("#journal-rows").scroll_into_view_if_needed()
                    page.wait_for_timeout(800)
                    shots.append(_shoot(page, out_dir / "console-detail.png", "detail"))
                    page.click("#drawer-close")
                    page.click("#btn-lang")
                    page.wait_for_timeout(800)
                    shots.append(_shoot(page, out_dir / "console-overview-en.png", "English"))
        finally:
            hub.stop()
    return shots


def _shoot(page: Any, path: Path, what: str) -> Shot:
    page.screenshot(path=str(path))
    say(f"{what}: {path}")
    return Shot(what, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.e2e.screenshots",
        description="Screenshots of the console during a staged incident (docs/img/).",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="console-shots-") as tmp:
        shots = run(args.out, args.width, args.height, Path(tmp))
    say(f"done: {len(shots)} screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
