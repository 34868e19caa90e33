"""The small Protocols the core defines and the connectors implement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from safety_hub.notify.contacts import OutgoingMessage


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message as a connector hands it to the core; ``token`` lets the connector ack it.

    ``qos`` 0 messages cannot be redelivered, so the core counts any it has to drop;
    ``retained`` marks a broker's replay of a retained message (not a live publish).
    """

    topic: str
    payload: bytes
    received_ms: int
    token: object = None
    redelivered: bool = False
    qos: int = 1
    retained: bool = False


class MessageSource(Protocol):
    """Telemetry transport (MQTT). ``ack`` is called only once the message is durable."""

    @property
    def connected(self) -> bool: ...

    def start(self, handler: Callable[[InboundMessage], None]) -> None: ...

    def ack(self, message: InboundMessage) -> None: ...

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None: ...

    def publish_confirmed(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        """QoS 1 publish that returns True only once the broker acknowledged it."""
        ...

    def stop(self) -> None: ...


class LineSink(Protocol):
    """Storage that takes line protocol (InfluxDB v1/v2, or the embedded SQLite store).

    ``write`` raises :class:`~safety_hub.errors.SinkError`, with ``retryable`` telling an
    outage (keep the data, retry) from bad data (dead-letter it).
    """

    name: str

    def write(self, lines: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    ts_ms: int
    value: float | None
    quality: str | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None


class HistoryStore(Protocol):
    """Reads of stored readings, the same answer whatever the backend."""

    def history(
        self,
        enterprise: str,
        tag: str,
        start_ms: int,
        end_ms: int,
        *,
        limit: int = 10_000,
        every_s: int | None = None,
    ) -> list[HistoryPoint]: ...

    def close(self) -> None: ...


class NotificationSender(Protocol):
    """Delivers one rendered message (safety_hub.notify.contacts.OutgoingMessage) through its
    contact point's channel; raises `NotificationError` (safety_hub.errors) with a reason that
    holds no secret when the channel refused it or could not be reached. Implemented in
    connectors/notify/ (apprise)."""

    def send(self, message: OutgoingMessage) -> None: ...
