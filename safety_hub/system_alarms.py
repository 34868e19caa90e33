"""System alarms: conditions of the hub itself (spool full, storage down, broker down).

They are raised and cleared here, logged as structured events, exported as the
``safety_hub_system_alarm{name=...}`` gauge and listed by ``GET /api/v1/system``.
Listeners (the alarm service) can subscribe to transitions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from safety_hub.clock import Clock
from safety_hub.metrics import HubMetrics

log = logging.getLogger("safety_hub.system")


@dataclass(frozen=True, slots=True)
class SystemAlarm:
    name: str
    active: bool
    since_ms: int
    message: str


Listener = Callable[[SystemAlarm], None]


class SystemAlarms:
    def __init__(self, clock: Clock, metrics: HubMetrics) -> None:
        self._clock = clock
        self._metrics = metrics
        self._state: dict[str, SystemAlarm] = {}
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set(self, name: str, active: bool, message: str) -> None:
        with self._lock:
            current = self._state.get(name)
            if current is not None and current.active == active:
                return
            if current is None and not active:
                return
            alarm = SystemAlarm(name, active, self._clock.now_ms(), message)
            self._state[name] = alarm
        self._metrics.system_alarm.labels(name).set(1 if active else 0)
        if active:
            log.error("system alarm raised", extra={"alarm": name, "detail": message})
        else:
            log.warning("system alarm cleared", extra={"alarm": name, "detail": message})
        for listener in self._listeners:
            listener(alarm)

    def active(self) -> list[SystemAlarm]:
        with self._lock:
            return [a for a in self._state.values() if a.active]

    def all(self) -> list[SystemAlarm]:
        with self._lock:
            return list(self._state.values())
