"""The delivery model of one destination: what a transport promises, the rate limit, the
backoff and the state shown in ``/metrics`` and ``/api/v1/system`` (docs/uplink.md).

Pure: times are passed in (ms since the epoch, or seconds of a monotonic clock for the rate
limit); the runtime owns the threads and the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from safety_hub.uplink.records import OutRecord


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What became of a batch handed to a transport.

    ``done`` records from the start of the batch are finished: delivered, or refused for good
    (their indices and reasons in ``rejected``). The rest (``error`` says why) stays queued and
    is sent again, in order, with the same ``dataId``.
    """

    done: int
    rejected: dict[int, str] = field(default_factory=dict)
    error: str | None = None


class UplinkTransport(Protocol):
    """A way up (connectors/uplink/): takes a batch in order, says how far it got."""

    description: str
    """where it sends, for logs and status (no secrets)"""

    def send(self, records: Sequence[OutRecord]) -> SendOutcome: ...

    def close(self) -> None: ...


class RateLimiter:
    """A token bucket: ``rate`` records per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate {rate}: must be above 0")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._at: float | None = None

    def _refill(self, now_s: float) -> None:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now_s - self._at) * self.rate)
        self._at = now_s

    def grant(self, wanted: int, now_s: float) -> int:
        """How many of ``wanted`` records may go now (taken from the bucket); 0: wait."""
        self._refill(now_s)
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def wait_s(self, now_s: float) -> float:
        """Seconds until one more record may go."""
        self._refill(now_s)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate


class Backoff:
    """Exponential: ``initial_s`` doubling to ``max_s``; reset after a success."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._next = initial_s

    def next_s(self) -> float:
        delay = self._next
        self._next = min(self.max_s, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s


@dataclass
class DestinationState:
    """What ``/metrics`` and ``/api/v1/system`` show of one destination."""

    name: str
    transport: str
    connected: bool | None = None
    """None until the first attempt"""
    down_since_ms: int | None = None
    last_success_ms: int | None = None
    last_error: str | None = None
    queued: int = 0
    queued_by_kind: dict[str, int] = field(default_factory=dict)
    """records queued since the hub started, per kind (base data kinds, reading, warning)"""
    sent: int = 0
    failed_attempts: int = 0
    rejected: int = 0
    dropped: int = 0
    """readings dropped because the queue was full"""
    duplicates: int = 0

    def succeeded(self, records: int, rejected: int, now_ms: int) -> None:
        self.connected = True
        self.down_since_ms = None
        self.last_success_ms = now_ms
        self.sent += records - rejected
        self.rejected += rejected

    def failed(self, error: str, now_ms: int) -> None:
        self.connected = False
        self.failed_attempts += 1
        self.last_error = error
        if self.down_since_ms is None:
            self.down_since_ms = now_ms

    def down_for_ms(self, now_ms: int) -> int:
        return 0 if self.down_since_ms is None else max(0, now_ms - self.down_since_ms)
