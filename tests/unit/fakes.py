"""In-memory stand-ins for the pipeline tests (transport and storage are Protocols)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from safety_hub.errors import SinkError
from safety_hub.ports import InboundMessage


@dataclass(frozen=True)
class FakeTag:
    park: str
    enterprise: str
    hazard_source: str
    unit: str
    equipment: str
    tag: str
    kind: str


def fake_tags(spec: dict[str, list[str]]) -> dict[tuple[str, str], FakeTag]:
    return {
        (ent, tag): FakeTag("park", ent, f"HS-{ent}", "U1", "EQ1", tag, "pressure")
        for ent, tags in spec.items()
        for tag in tags
    }


class MemorySource:
    """A transport that records acks and publishes."""

    def __init__(self) -> None:
        self.acked: list[InboundMessage] = []
        self.published: list[tuple[str, bytes]] = []
        self.handler: Callable[[InboundMessage], None] | None = None
        self.ack_event = threading.Condition()

    @property
    def connected(self) -> bool:
        return True

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        self.handler = handler

    def ack(self, message: InboundMessage) -> None:
        with self.ack_event:
            self.acked.append(message)
            self.ack_event.notify_all()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.published.append((topic, payload))

    def publish_confirmed(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        self.published.append((topic, payload))
        return True

    def stop(self) -> None:
        pass


class MemorySink:
    """Storage that keeps lines; can be switched into an outage or to refuse some lines."""

    name = "memory"

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.down = False
        self.refuse_containing: str | None = None
        self.calls = 0
        self.lock = threading.Lock()

    def write(self, lines: str) -> None:
        with self.lock:
            self.calls += 1
            if self.down:
                raise SinkError(
                    self.name, "HTTP 503 service unavailable", retryable=True, status=503
                )
            if self.refuse_containing and self.refuse_containing in lines:
                raise SinkError(
                    self.name, "HTTP 400 field type conflict", retryable=False, status=400
                )
            self.lines.extend(line for line in lines.split("\n") if line)

    def close(self) -> None:
        pass
