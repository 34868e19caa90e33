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
        # Kept per enterprise, then per tag: a reading costs no (enterprise, tag) key tuple.
        self._values: dict[str, dict[str, tuple[int, float, str, int]]] = {}
        self._gateways: dict[str, GatewayState] = {}
        self._last_seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def update(self, readings: Iterable[Reading], received_ms: int) -> None:
        """Keep the newest reading per tag by event time; late readings do not go back."""
        values = self._values
        last_seen = self._last_seen
        enterprise = None
        own: dict[str, tuple[int, float, str, int]] = {}
        with self._lock:
            for ent, tag, ts_ms, value, quality in readings:
                if ent != enterprise:  # readings come in runs of one enterprise (a message)
                    enterprise = ent
                    own = values.get(ent) or values.setdefault(ent, {})
                    last_seen[ent] = received_ms
                current = own.get(tag)
                if current is None or ts_ms >= current[0]:
                    own[tag] = (ts_ms, value, quality, received_ms)

    def latest(self, enterprise: str, tag: str) -> LiveValue | None:
        with self._lock:
            found = self._values.get(enterprise, {}).get(tag)
        return None if found is None else LiveValue(*found)

    def snapshot(self) -> dict[tuple[str, str], LiveValue]:
        with self._lock:
            items = [
                ((enterprise, tag), value)
                for enterprise, own in self._values.items()
                for tag, value in own.items()
            ]
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
