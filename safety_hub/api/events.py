"""Fan-out of alarm transitions and live values to server-sent-event subscribers.

- Alarm transitions come from the alarm service's listener (after the journal commit), in
  order, to every subscriber that sees the alarm's enterprise, as the MQTT alarm event JSON.
- Live values are coalesced: the ingest listener only notes which tags changed; once per
  ``value_interval_s`` a flusher thread sends each changed tag's newest value (from the live
  table, so by event time) to the subscribers that see it: at most one per tag per interval.
- A subscriber that falls more than ``queue_size`` frames behind is cut off (its stream ends
  with an ``overflow`` event) rather than silently missing alarm events; a client reconnects
  and reloads.

Listeners run on the hub's worker threads; subscribers live on the event loop, so frames cross
with ``loop.call_soon_threadsafe``. The fan-out gets only the parts of the hub it uses: the alarm
service, the feed of ingested readings (the ingest worker) and the live table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from safety_hub.alarms import AlarmService, Transition
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.telemetry import Reading

log = logging.getLogger("safety_hub.api.events")

CLOSE = None  # sentinel: the stream ends
OVERFLOW = "overflow"


def sse_frame(event: str, data: Any) -> str:
    """One SSE frame; ``data`` as single-line JSON."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return f"event: {event}\ndata: {text}\n\n"


class ReadingFeed(Protocol):
    """Where ingested readings are announced: the ingest worker."""

    def add_listener(self, listener: Callable[[list[Reading]], None]) -> None: ...


class Subscriber:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        enterprise: str | None,
        alarms: bool,
        values: bool,
        queue_size: int,
    ) -> None:
        self.loop = loop
        self.enterprise = enterprise
        self.alarms = alarms
        self.values = values
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.queue_size = queue_size
        self.overflowed = False

    def sees(self, enterprise: str) -> bool:
        return self.enterprise is None or self.enterprise == enterprise

    def put(self, frames: Iterable[str | None]) -> None:
        """On the loop: queue frames; past the limit, drop them all and end the stream."""
        if self.overflowed:
            return
        for frame in frames:
            if frame is not CLOSE and self.queue.qsize() >= self.queue_size:
                self.overflowed = True
                while not self.queue.empty():
                    self.queue.get_nowait()
                self.queue.put_nowait(sse_frame(OVERFLOW, {"reason": "client too slow"}))
                self.queue.put_nowait(CLOSE)
                return
            self.queue.put_nowait(frame)

    def send(self, frames: list[str | None]) -> None:
        """From any thread."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the stream is gone
            self.loop.call_soon_threadsafe(self.put, frames)


class LiveEvents:
    def __init__(
        self,
        *,
        alarm_service: AlarmService,
        readings: ReadingFeed,
        live: LiveTable,
        value_interval_s: float = 1.0,
        queue_size: int = 10_000,
        max_subscribers: int = 200,
    ) -> None:
        self._live = live
        self.value_interval_s = value_interval_s
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._changed: set[tuple[str, str]] = set()
        self._sent: dict[tuple[str, str], int] = {}
        self._values_wanted = False
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        alarm_service.subscribe(self._on_transition)
        readings.add_listener(self._on_readings)

    # -- subscribers -------------------------------------------------------------------------
    def subscribe(self, *, enterprise: str | None, alarms: bool, values: bool) -> Subscriber | None:
        """A new subscriber on the running loop; None when the limit is reached or closed."""
        sub = Subscriber(
            asyncio.get_running_loop(),
            enterprise=enterprise,
            alarms=alarms,
            values=values,
            queue_size=self.queue_size,
        )
        with self._lock:
            if self._closed.is_set() or len(self._subscribers) >= self.max_subscribers:
                return None
            self._subscribers.add(sub)
            self._values_wanted = any(s.values for s in self._subscribers)
            if values and self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_forever, name="sse-values", daemon=True
                )
                self._flusher.start()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)
            self._values_wanted = any(s.values for s in self._subscribers)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        """End every stream (at shutdown: servers wait for open requests)."""
        with self._lock:
            self._closed.set()
            subs = list(self._subscribers)
            self._subscribers.clear()
        for sub in subs:
            sub.send([CLOSE])
        if self._flusher is not None:
            self._flusher.join(5)

    # -- inputs (hub threads) ----------------------------------------------------------------
    def _on_transition(self, t: Transition) -> None:
        with self._lock:
            subs = [s for s in self._subscribers if s.alarms and s.sees(t.alarm.enterprise)]
        if not subs:
            return
        frame = sse_frame("alarm", t.as_json())
        for sub in subs:
            sub.send([frame])

    def _on_readings(self, readings: list[Reading]) -> None:
        if not self._values_wanted:
            return
        keys = {(r[0], r[1]) for r in readings}
        with self._lock:
            self._changed |= keys

    def _flush_forever(self) -> None:
        while not self._closed.wait(self.value_interval_s):
            try:
                self.flush_values()
            except Exception:
                log.exception("live value stream: flush failed")

    def flush_values(self) -> None:
        with self._lock:
            changed, self._changed = self._changed, set()
            subs = [s for s in self._subscribers if s.values]
        if not changed or not subs:
            return
        live = self._live
        frames: dict[str, list[str | None]] = {}
        for enterprise, tag in sorted(changed):
            value = live.latest(enterprise, tag)
            if value is None or self._sent.get((enterprise, tag)) == value.ts_ms:
                continue
            self._sent[(enterprise, tag)] = value.ts_ms
            data = {
                "enterprise": enterprise,
                "tag": tag,
                "ts": value.ts_ms,
                "value": value.value,
                "quality": value.quality,
            }
            try:
                frames.setdefault(enterprise, []).append(sse_frame("value", data))
            except ValueError:
                continue  # not finite: the decoder lets none through; never break the stream
        for sub in subs:
            out = [f for ent, items in frames.items() if sub.sees(ent) for f in items]
            if out:
                sub.send(out)
