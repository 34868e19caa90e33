"""Fair intake between the transport thread and the ingest worker, and budgets for what an
outsider can make the hub say.

- :class:`IntakeLanes`: one FIFO lane per registered enterprise plus one shared lane for
  everything else (unregistered enterprises, odd topics). The transport thread appends; the
  ingest worker takes round-robin, a few messages per lane per round, so an enterprise that
  floods fills only its own lane and another enterprise's next message is in the very next
  batch. Order within an enterprise is kept (its status and telemetry stay in sequence),
  except that each enterprise also has an *urgent* lane for messages that carry
  safety-critical readings (gas detectors, SIS; :mod:`safety_hub.ingest.triage`): the worker
  takes those first, and between the messages of a bulk batch, so a gas alarm never queues
  behind a backlog of process data. A tag's readings stay in order unless one message mixes
  critical and process readings (it is urgent as a whole and may overtake an earlier bulk
  message of the same process tag, whose reading the rule engine then takes as late).
  QoS 1 lanes need no bound of their own: the broker sends no more unacknowledged messages
  than the session's receive maximum. QoS 0 messages have no such brake, so a lane holds at
  most ``qos0_limit`` of them; past that a QoS 0 message is dropped and counted (QoS 0 is
  "at most once" by its contract; the drop is never silent).
- :class:`LogBudget` and :class:`RateBudget`: at most N log lines or reports per window, the
  rest counted, so a flood of bad input cannot flood the log or the broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection

from safety_hub.ports import InboundMessage

UNKNOWN_LABEL = "_unknown"
"""The metrics label and lane of every enterprise the registry does not know. Registered codes
start with a letter or digit, so this can never be one of them."""

DropListener = Callable[[str], None]


class IntakeLanes:
    """Per-enterprise FIFO lanes; thread-safe for one producer and one consumer."""

    def __init__(
        self,
        enterprises: Collection[str],
        *,
        qos0_limit: int = 10_000,
        on_qos0_drop: DropListener | None = None,
    ) -> None:
        self._lanes: dict[str, deque[InboundMessage]] = {code: deque() for code in enterprises}
        self._urgent: dict[str, deque[InboundMessage]] = {code: deque() for code in enterprises}
        self._other: deque[InboundMessage] = deque()
        self._order: list[tuple[str, deque[InboundMessage]]] = [
            *self._lanes.items(),
            (UNKNOWN_LABEL, self._other),
        ]
        self._urgent_order = list(self._urgent.items())
        self._urgent_start = 0
        # Set by the transport thread after it appended to an urgent lane, cleared by the
        # worker before it takes them: a plain attribute, read between bulk messages.
        self.urgent_waiting = False
        self._qos0_limit = qos0_limit
        self._on_drop = on_qos0_drop
        self._ready = threading.Event()
        self._start = 0
        self.dropped_qos0 = 0

    def lane_of(self, topic: str) -> str:
        """The lane (enterprise code or ``_unknown``) a topic's messages queue in."""
        parts = topic.split("/", 3)
        if len(parts) == 4 and parts[2] in self._lanes:
            return parts[2]
        return UNKNOWN_LABEL

    def put(self, message: InboundMessage, *, urgent: bool = False) -> bool:
        """Called on the transport's thread. False when a QoS 0 message had to be dropped.
        ``urgent``: the message carries safety-critical readings (only for registered
        enterprises; others have no urgent lane)."""
        parts = message.topic.split("/", 3)
        lanes = self._urgent if urgent else self._lanes
        lane = lanes.get(parts[2]) if len(parts) == 4 else None
        if lane is None:
            lane = self._other
            urgent = False
        if message.qos == 0 and len(lane) >= self._qos0_limit:
            self.dropped_qos0 += 1
            if self._on_drop is not None:
                self._on_drop(parts[2] if lane is not self._other else UNKNOWN_LABEL)
            return False
        lane.append(message)  # deque.append is atomic: no lock on the transport's hot path
        if urgent:
            self.urgent_waiting = True
        if not self._ready.is_set():
            self._ready.set()
        return True

    def take(
        self,
        max_messages: int,
        quantum: int = 64,
        *,
        max_bytes: int = 2 * 1024 * 1024,
        quantum_bytes: int = 256 * 1024,
    ) -> list[InboundMessage]:
        """Up to ``max_messages`` (and about ``max_bytes`` of payload), round-robin over the
        lanes, each giving at most ``quantum`` messages or ``quantum_bytes`` per round (at least
        one). Bounding bytes as well as messages keeps a batch short when one enterprise sends
        large messages, since decoding costs by the byte.

        The worker must call :meth:`clear_ready` before ``take`` and wait only when ``take``
        returned nothing, so that a message appended meanwhile is never left waiting.
        """
        batch: list[InboundMessage] = []
        order = self._order
        count = len(order)
        # Rotate the lane that goes first, so no lane is always first in a full batch.
        start = self._start
        self._start = (start + 1) % count
        size = 0
        while len(batch) < max_messages and size < max_bytes:
            before = len(batch)
            for i in range(count):
                lane = order[(start + i) % count][1]
                taken = taken_bytes = 0
                room = min(quantum, max_messages - len(batch))
                while lane and taken < room and taken_bytes < quantum_bytes:
                    message = lane.popleft()
                    batch.append(message)
                    taken += 1
                    taken_bytes += len(message.payload)
                size += taken_bytes
                if len(batch) >= max_messages or size >= max_bytes:
                    break
            if len(batch) == before:
                break
        return batch

    def take_urgent(self, max_messages: int) -> list[InboundMessage]:
        """Up to ``max_messages`` urgent messages, round-robin over the enterprises (one each
        per round, so one enterprise's stream of them cannot hold back another's)."""
        self.urgent_waiting = False  # before taking: a message put meanwhile sets it again
        batch: list[InboundMessage] = []
        order = self._urgent_order
        count = len(order)
        if not count:
            return batch
        start = self._urgent_start
        self._urgent_start = (start + 1) % count
        while len(batch) < max_messages:
            before = len(batch)
            for i in range(count):
                lane = order[(start + i) % count][1]
                if lane:
                    batch.append(lane.popleft())
                    if len(batch) >= max_messages:
                        break
            if len(batch) == before:
                break
        if any(lane for _, lane in order):
            self.urgent_waiting = True  # more than one batch of them: take again
        return batch

    def clear_ready(self) -> None:
        self._ready.clear()

    def wait(self, timeout: float | None) -> bool:
        return self._ready.wait(timeout)

    def wake(self) -> None:
        self._ready.set()

    def depth(self) -> int:
        return sum(len(lane) for _, lane in self._order) + sum(
            len(lane) for _, lane in self._urgent_order
        )

    def depths(self) -> dict[str, int]:
        """Messages waiting per enterprise, urgent ones included (only those that have any)."""
        out = {code: len(lane) for code, lane in self._order if lane}
        for code, lane in self._urgent_order:
            if lane:
                out[code] = out.get(code, 0) + len(lane)
        return out


class RateBudget:
    """A token bucket: ``rate`` events per second, bursts up to ``burst``; thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class LogBudget:
    """At most ``lines`` log lines per ``window_s``; what it holds back is summarised in one
    line when the next window opens (``what`` names the kind of line)."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        lines: int = 20,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._what = what
        self._lines = lines
        self._window = window_s
        self._clock = clock
        self._window_start = clock()
        self._used = 0
        self._held_back = 0
        self._lock = threading.Lock()
        self.suppressed_total = 0

    def allow(self) -> bool:
        """True when a line may be logged now; counts it either way."""
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self._window:
                held, span = self._held_back, now - self._window_start
                self._window_start, self._used, self._held_back = now, 0, 0
                if held:
                    self._log.warning(
                        "%d %s log lines suppressed in the last %.0f s",
                        held,
                        self._what,
                        span,
                        extra={"suppressed": held, "what": self._what},
                    )
            if self._used < self._lines:
                self._used += 1
                return True
            self._held_back += 1
            self.suppressed_total += 1
            return False


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, marked when cut (outsider text in logs/reports)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
