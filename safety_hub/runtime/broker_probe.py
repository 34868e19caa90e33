"""Does the broker's round trip look like Nagle's algorithm? Measured at start and now and then.

The measurement (connectors/mqtt/probe.py) gives samples of two times from a QoS 1 publish to
the hub's probe topic: until the broker's PUBACK and until the message comes back. The broker
writes both to the same socket one after the other. With ``set_tcp_nodelay true`` both arrive
within a millisecond or so on a LAN. Without it, Nagle's algorithm holds the second write until
the first is acknowledged, and the receiver's delayed ACK puts that off by up to 40 ms (Linux;
200 ms elsewhere): the first reply fast, the second tens of ms later. A broker that is slow or
far away is slow for both, and is no Nagle case.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from safety_hub.clock import Clock
from safety_hub.metrics import HubMetrics

log = logging.getLogger("safety_hub.broker_probe")

NAGLE_MIN_GAP_MS = 15.0
"""the second reply this much later than the first (median) ..."""
NAGLE_MIN_RATIO = 3.0
"""... and this many times as late: tens of ms on a broker that answers fast otherwise"""
ADVICE = (
    "the broker's round trip looks like Nagle's algorithm: set `set_tcp_nodelay true` in "
    "mosquitto.conf (or the broker's TCP no-delay option); alarms otherwise reach subscribers "
    "tens of ms late (docs/deploy.md)"
)

Sample = tuple[float, float]
"""(ms until the PUBACK, ms until the delivery back) of one probe"""


@dataclass(frozen=True)
class RoundTrip:
    """One measurement's verdict, as ``/api/v1/system`` shows it (``broker_round_trip``)."""

    measured_at: int  # ms since the epoch
    samples: int
    round_trip_ms: float  # median, publish to delivery back
    first_reply_ms: float  # median of the earlier of PUBACK and delivery
    second_reply_ms: float  # median of the later
    nagle_suspected: bool
    advice: str | None


def judge(samples: Sequence[Sample], now_ms: int) -> RoundTrip | None:
    """The verdict on ``samples``; None without any."""
    if not samples:
        return None
    first = statistics.median(min(a, d) for a, d in samples)
    second = statistics.median(max(a, d) for a, d in samples)
    suspected = second - first >= NAGLE_MIN_GAP_MS and second >= NAGLE_MIN_RATIO * first
    return RoundTrip(
        measured_at=now_ms,
        samples=len(samples),
        round_trip_ms=round(statistics.median(d for _, d in samples), 3),
        first_reply_ms=round(first, 3),
        second_reply_ms=round(second, 3),
        nagle_suspected=suspected,
        advice=ADVICE if suspected else None,
    )


class BrokerProbe:
    """Measures once the broker is connected, then every ``interval_s``; keeps the verdict,
    sets the gauges, warns (once per change) when the round trip looks like Nagle."""

    def __init__(
        self,
        measure: Callable[[], list[Sample]],
        connected: Callable[[], bool],
        metrics: HubMetrics,
        clock: Clock,
        broker: str,
    ) -> None:
        self._measure = measure
        self._connected = connected
        self._metrics = metrics
        self._clock = clock
        self._broker = broker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.latest: RoundTrip | None = None
        self.measurements = 0

    def as_dict(self) -> dict[str, object] | None:
        latest = self.latest
        return None if latest is None else asdict(latest)

    def run_once(self) -> RoundTrip | None:
        """Measure and judge now; keep the verdict (a failed measurement keeps the last)."""
        try:
            samples = self._measure()
        except Exception:
            log.exception("broker probe: measurement failed")
            return None
        verdict = judge(samples, self._clock.now_ms())
        self.measurements += 1
        if verdict is None:
            log.info(
                "broker probe: no round trip measured (the broker did not deliver the hub's "
                "probe topic back; an ACL may deny safety-hub/probe/#)",
                extra={"broker": self._broker},
            )
            return None
        before = self.latest
        self.latest = verdict
        self._metrics.mqtt_round_trip.set(verdict.round_trip_ms / 1000)
        self._metrics.mqtt_nagle_suspected.set(1 if verdict.nagle_suspected else 0)
        if verdict.nagle_suspected and (before is None or not before.nagle_suspected):
            log.warning(
                ADVICE,
                extra={
                    "broker": self._broker,
                    "first_reply_ms": verdict.first_reply_ms,
                    "second_reply_ms": verdict.second_reply_ms,
                },
            )
        elif not verdict.nagle_suspected and before is not None and before.nagle_suspected:
            log.info("broker probe: the round trip no longer looks like Nagle's algorithm")
        return verdict

    def start(self, interval_s: float, connect_timeout_s: float = 60.0) -> None:
        def run() -> None:
            waited = 0.0
            while not self._connected() and waited < connect_timeout_s:
                if self._stop.wait(0.2):
                    return
                waited += 0.2
            self.run_once()
            while interval_s > 0 and not self._stop.wait(interval_s):
                if self._connected():
                    self.run_once()

        self._thread = threading.Thread(target=run, name="broker-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
