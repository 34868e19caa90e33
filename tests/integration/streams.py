"""Publishers for the no-loss tests: deterministic readings, unique (tag, ts), QoS 1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

from simulators.gateway import Gateway

BASE_TS = 0  # set per run from the wall clock (the hub rejects readings older than its horizon)


def value_of(message_index: int, position: int) -> float:
    return round(message_index * 0.25 + position * 0.001, 3)


def payload_for(
    tags: Sequence[str], message_index: int, per_message: int, base_ts: int
) -> dict[str, object]:
    """Message k carries readings of the tags at ts base+k: every (tag, ts) is unique."""
    readings = [
        {
            "tag": tags[(message_index * per_message + i) % len(tags)],
            "v": value_of(message_index, i),
        }
        for i in range(per_message)
    ]
    # Within a message each tag appears at most once when per_message <= len(tags).
    return {"seq": message_index, "ts": base_ts + message_index, "readings": readings}


class Streamer(threading.Thread):
    """Publishes ``messages`` messages at ``rate`` messages/s and waits for the broker's acks."""

    def __init__(
        self,
        host: str,
        port: int,
        enterprise: str,
        tags: Sequence[str],
        *,
        messages: int,
        per_message: int,
        rate: float,
        base_ts: int,
        client_id: str | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"streamer-{enterprise}")
        assert per_message <= len(tags)
        self.gateway = Gateway(host, port, enterprise, client_id=client_id)
        self.enterprise = enterprise
        self.tags = list(tags)
        self.messages = messages
        self.per_message = per_message
        self.rate = rate
        self.base_ts = base_ts
        self.published = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            assert self.gateway.wait_connected(15), "streamer could not connect"
            start = time.monotonic()
            for k in range(self.messages):
                body = payload_for(self.tags, k, self.per_message, self.base_ts)
                self.gateway._client.publish(
                    f"hazard/v1/{self.enterprise}/telemetry",
                    json.dumps(body, ensure_ascii=False),
                    qos=1,
                )
                self.published += 1
                delay = start + (k + 1) / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            deadline = time.monotonic() + 120
            while self.gateway.pending() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert self.gateway.pending() == 0, (
                f"{self.gateway.pending()} messages never acked by the broker"
            )
        except BaseException as exc:  # reported by the test
            self.error = exc

    @property
    def readings(self) -> int:
        return self.messages * self.per_message

    def finish(self, timeout: float = 180) -> None:
        self.join(timeout)
        assert not self.is_alive(), "streamer did not finish"
        if self.error is not None:
            raise self.error
        self.gateway.close()
