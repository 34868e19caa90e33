"""What ``safety-hub demo`` runs once its API answers (imported when the demo starts, as it
brings the simulators): the park's gateways, the banner, progress, the scenario alongside."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable

from safety_hub.cli.scenario_demo import ScenarioInDemo
from safety_hub.cli.serve import base_url, console_url
from safety_hub.registry import Plant
from safety_hub.runtime.hub import Hub
from safety_hub.runtime.notify_file import demo_notify_file
from safety_hub.scenarios.loader import Scenario
from safety_hub.settings import Settings
from simulators.park import ParkSimulator, SimStats

CONNECT_WAIT_S = 10.0  # at most this long for the hub's MQTT sessions before the banner


def notify_line(hub: Hub) -> str:
    """The banner's notifications line: where the demo's messages go, or why there are none."""
    if hub.notifications is None:
        why = "SAFETY_HUB_NOTIFY=off" if not hub.settings.notify else "no people directory"
        return f"  notify   off ({why})"
    return (
        f"  notify   delivered to {demo_notify_file(hub.settings.data_dir)} (one JSON line per message; "
        "the sample contacts are examples and are never sent to)"
    )


def out_of_service_lines(plant: object) -> list[str]:
    """The registry's out-of-service tags with who, why and since: their gateways send
    nothing, so their stale-data alarms stand as "out_of_service" in the alarm list."""
    assert isinstance(plant, Plant)
    lines: list[str] = []
    for (code, tag), info in sorted(plant.tags.items()):
        oos = info.out_of_service
        if oos is not None:
            since = oos.since.strftime("%Y-%m-%d %H:%M%z")
            lines.append(f"    {code}/{tag} since {since} by {oos.by}: {oos.reason}")
    if not lines:
        return []
    head = (
        "  out of service in the plant registry (no data; their alarms are listed in state "
        '"out_of_service" with who, why and since):'
    )
    return [head, *lines]


class DemoSession:
    """What the demo does once its API answers: the park's gateways publishing into the hub,
    a banner saying where to look, progress every 5 s, the scenario played alongside."""

    def __init__(
        self,
        args: argparse.Namespace,
        hub: Hub,
        settings: Settings,
        port: int,
        token: str | None,
        scenario: Scenario | None,
    ) -> None:
        self.args = args
        self.hub = hub
        self.scenario = scenario
        self.token = token
        self.api = base_url(settings.api_host, port)
        self.taken = (
            f"   (port {settings.api_port} is taken)" if settings.api_port not in (0, port) else ""
        )
        self.console = console_url(settings.api_host, port, token)
        self.in_demo: list[ScenarioInDemo] = []
        self.played: list[threading.Thread] = []

    def started(self, stop_server: Callable[[], None]) -> None:
        """Run the gateways (and the scenario) until stopped, or ``--duration`` has passed."""
        hub, args = self.hub, self.args
        assert hub.mqtt_url is not None
        host, mqtt_port = hub.mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        sim = ParkSimulator(hub.plant, host, int(mqtt_port), rate=args.rate or None)
        # The banner once the hub's sessions are up (they connect from child processes, which
        # take a moment to start): what it shows is then what the API says.
        deadline = time.monotonic() + CONNECT_WAIT_S
        while time.monotonic() < deadline and not (hub.source and hub.source.connected):
            time.sleep(0.05)
        lines = self._banner(sim)
        if self.scenario is not None:
            self.in_demo.append(
                ScenarioInDemo(
                    self.scenario, hub, sim, host, int(mqtt_port), speed=args.speed or 1.0
                )
            )
            lines.append(f"  scenario {self.in_demo[0].describe()}")
        lines.append("Press Ctrl-C to stop.\n")
        print("\n".join(lines), flush=True)
        self._run(sim, stop_server)

    def _banner(self, sim: ParkSimulator) -> list[str]:
        hub, api = self.hub, self.api
        first = next(iter(sim.tags))
        tag = sim.tags[first][0].tag
        return [
            "",
            f"safety-hub demo: park {hub.plant.park_code}, {len(hub.plant.enterprises)} "
            f"enterprises, {len(hub.plant.tags)} tags",
            f"  broker   {hub.mqtt_url}   "
            "(topics hazard/v1/<enterprise>/telemetry and .../critical)",
            f"  storage  {hub.storage.description}",
            notify_line(hub),
            f"  console  {self.console}{self.taken}",
            f"  API      {api}/api/v1/tags   {api}/metrics   {api}/api/v1/system",
            f"  try      curl -H 'Authorization: Bearer {self.token or '$SAFETY_HUB_ADMIN_TOKEN'}' "
            f"{api}/api/v1/tags/{first}/{tag}/latest",
            *out_of_service_lines(hub.plant),
        ]

    def _run(self, sim: ParkSimulator, stop_server: Callable[[], None]) -> None:
        hub, args = self.hub, self.args

        def progress(stats: SimStats) -> None:
            depth = hub.spool.depth()
            print(
                f"[demo] published {stats.readings} readings in {stats.messages} messages; "
                f"hub processed {hub.ingest.processed_messages} messages, "
                f"spool {depth.readings} readings waiting",
                flush=True,
            )

        def finish() -> None:
            # the scenario first: the demo's gateways announce themselves offline as they stop
            for scenario_run in self.in_demo:
                scenario_run.stop()
            sim.stop()

        try:
            sim.connect()
            if self.in_demo:
                self.played.append(
                    threading.Thread(target=self.in_demo[0].run, name="demo-scenario", daemon=True)
                )
                self.played[0].start()
            if args.duration is not None:
                ending = threading.Timer(args.duration, finish)
                ending.daemon = True
                ending.start()
            sim.run(None, progress=progress, progress_every_s=5.0)
        finally:
            if args.duration is not None:
                time.sleep(1.0)  # the last readings reach the hub before the final count
                progress(sim.stats)
                stop_server()

    def stop_scenario(self) -> None:
        """Once the API has stopped: stop the scenario and wait a little for it to say where."""
        for scenario_run in self.in_demo:
            scenario_run.stop()
        for thread in self.played:
            thread.join(3)  # a daemon: it says where it stopped unless its broker went first
