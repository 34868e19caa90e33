"""Injected clocks. Rules and alarms never read the wall clock directly."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Source of 'now' in epoch milliseconds."""

    def now_ms(self) -> int: ...


class WallClock:
    """The real clock, for live mode."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class VirtualClock:
    """A clock that only moves when told to; replay and tests drive it."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def set(self, now_ms: int) -> None:
        with self._lock:
            if now_ms < self._now:
                raise ValueError(f"virtual clock: cannot go back from {self._now} to {now_ms}")
            self._now = now_ms

    def advance(self, delta_ms: int) -> int:
        with self._lock:
            self._now += delta_ms
            return self._now
