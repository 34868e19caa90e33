"""Publish a scenario to a real broker at real or accelerated speed: the scenario's gateways
stand in for the enterprises' field hardware (``safety-hub simulate SCENARIO``).

One MQTT connection per enterprise gateway (with the contract's last-will). Each message of the
scenario is published when its scenario time comes, scaled by ``speed``; every timestamp in the
payloads is mapped the same way, ``ts' = t0 + (ts − start) / speed`` with t0 the wall clock at
the start, so the hub sees a consistent, current event time. At ``speed`` > 1 everything the
hub times by its own clock (stale and silence watchdogs, the broker's keepalive) does not speed
up: those alarms come ``speed`` times later in scenario terms. The broker's last-will after a
link loss is published by the player at the modelled instant (keepalive × 1.5 of scenario time);
a real will stays registered on every connection in case the simulator itself dies.

The messages are the scenario's, topics included: its gateways speak contract revision 1.1 (gas
and SIS readings on ``hazard/v1/{enterprise}/critical``) unless the file's ``gateways:`` says
``critical_topic: false`` for one, or ``critical_topic`` here overrides that for all of them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from safety_hub.ingest.telemetry import enterprise_of_topic
from safety_hub.scenarios.loader import Scenario
from safety_hub.scenarios.report import format_clock
from simulators.gateway import Gateway, Publication
from simulators.world import OperatorAction, World

log = logging.getLogger("simulators.player")


@dataclass
class PlayStats:
    messages: int = 0
    readings: int = 0
    skipped_actions: list[str] = field(default_factory=list)
    scenario_ms: int = 0
    started: float = field(default_factory=time.monotonic)


def remap_payload(payload: bytes, mapper: Callable[[int], int]) -> bytes:
    """A telemetry payload with its message and reading ``ts`` mapped to wall time."""
    doc = json.loads(payload)
    if isinstance(doc.get("ts"), int):
        doc["ts"] = mapper(doc["ts"])
    for r in doc.get("readings", ()):
        if isinstance(r, dict) and isinstance(r.get("ts"), int):
            r["ts"] = mapper(r["ts"])
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class ScenarioPlayer:
    def __init__(
        self,
        scenario: Scenario,
        host: str,
        port: int,
        *,
        speed: float = 1.0,
        username: str | None = None,
        password: str | None = None,
        stay_online: bool = False,
        critical_topic: bool | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        """``critical_topic``: True (revision 1.1) or False (1.0) for every gateway of the
        scenario; None: as the scenario says (``World``). ``run`` gives up (ConnectionError)
        when a gateway is not connected within ``connect_timeout_s``."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.scenario = scenario
        self.host, self.port = host, port
        self.speed = speed
        self.stay_online = stay_online
        self.critical_topic = critical_topic
        self.connect_timeout_s = connect_timeout_s
        self.stats = PlayStats()
        self._stop = threading.Event()
        self._gateways = {
            code: Gateway(host, port, code, username=username, password=password)
            for code in scenario.enterprises
        }

    def stop(self) -> None:
        self._stop.set()

    def run(
        self,
        progress: Callable[[PlayStats], None] | None = None,
        progress_every_s: float = 5.0,
        *,
        on_first_publish: Callable[[int], None] | None = None,
    ) -> PlayStats:
        """Publish the scenario to the end (or until :meth:`stop`). ``on_first_publish`` is told
        ``t0``, the wall-clock time (epoch ms) of the scenario's start, just before the first
        message (the gateways' connect at the start) goes out."""
        for code, gw in self._gateways.items():
            if not gw.wait_connected(self.connect_timeout_s):
                self.close()
                raise ConnectionError(
                    f"simulate: gateway {code} cannot reach {self.host}:{self.port}"
                )
        start = self.scenario.start_ms
        t0_wall = time.time()
        t0_mono = time.monotonic()
        t0_ms = round(t0_wall * 1000)

        def wall_ms(ts: int) -> int:
            return t0_ms + round((ts - start) / self.speed)

        next_progress = time.monotonic() + progress_every_s
        try:
            for item in World(self.scenario, critical_topic=self.critical_topic).stream():
                if self._stop.is_set():
                    break
                due = t0_mono + (item.at_ms - start) / 1000 / self.speed
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                self.stats.scenario_ms = item.at_ms - start
                if isinstance(item, OperatorAction):
                    e = item.event
                    text = f"{format_clock(item.at_ms - start)} {e.type} {e.alert}"
                    self.stats.skipped_actions.append(text)
                    log.info("operator action not played (use the console or the API): %s", text)
                    continue
                if on_first_publish is not None:
                    on_first_publish(wall_ms(start))
                    on_first_publish = None
                self._publish(item, wall_ms)
                if progress and time.monotonic() >= next_progress:
                    progress(self.stats)
                    next_progress += progress_every_s
        finally:
            self.close()
        return self.stats

    def _publish(self, pub: Publication, wall_ms: Callable[[int], int]) -> None:
        code = pub.topic.split("/")[2]
        payload = pub.payload
        if enterprise_of_topic(pub.topic) is not None:  # telemetry or critical
            payload = remap_payload(payload, wall_ms)
            self.stats.readings += payload.count(b'"tag"')
        self._gateways[code].publish_raw(pub.topic, payload, retain=pub.retain, qos=pub.qos)
        self.stats.messages += 1

    def close(self) -> None:
        for gw in self._gateways.values():
            gw.close(announce_offline=not self.stay_online)
