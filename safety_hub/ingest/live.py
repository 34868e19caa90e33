"""Live table: the latest value and quality of every tag, and each gateway's link state."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from safety_hub.ingest.telemetry import Reading


@dataclass(frozen=True, slots=True)
class LiveValue:
    ts_ms: int
    value: float
    quality: str
    received_ms: int


@dataclass(frozen=True, slots=True)
class GatewayState:
    online: bool
    since_ms: int
    detail: str


class LiveTable:
    def __init__(self) -> None:
        # Plain tuples (ts, value, quality, received) on the hot path; LiveValue on the way out.
        self._values: dict[tuple[str, str], tuple[int, float, str, int]] = {}
        self._gateways: dict[str, GatewayState] = {}
        self._last_seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def update(self, readings: Iterable[Reading], received_ms: int) -> None:
        """Keep the newest reading per tag by event time; late readings do not go back."""
        values = self._values
        get = values.get
        enterprises: set[str] = set()
        with self._lock:
            for enterprise, tag, ts_ms, value, quality in readings:
                key = (enterprise, tag)
                current = get(key)
                if current is None or ts_ms >= current[0]:
                    values[key] = (ts_ms, value, quality, received_ms)
                enterprises.add(enterprise)
            for enterprise in enterprises:
                self._last_seen[enterprise] = received_ms

    def latest(self, enterprise: str, tag: str) -> LiveValue | None:
        with self._lock:
            found = self._values.get((enterprise, tag))
        return None if found is None else LiveValue(*found)

    def snapshot(self) -> dict[tuple[str, str], LiveValue]:
        with self._lock:
            items = list(self._values.items())
        return {key: LiveValue(*value) for key, value in items}

    def set_gateway(self, enterprise: str, online: bool, since_ms: int, detail: str) -> None:
        with self._lock:
            self._gateways[enterprise] = GatewayState(online, since_ms, detail)

    def gateways(self) -> dict[str, GatewayState]:
        with self._lock:
            return dict(self._gateways)

    def last_seen(self) -> dict[str, int]:
        with self._lock:
            return dict(self._last_seen)
