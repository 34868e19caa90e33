"""Park simulator: every enterprise's gateway publishing its registry tags.

Two modes: ``interval`` (each tag at its expected publishing interval, what the demo shows)
and ``rate`` (a fixed total of readings per second, for load and benchmarks). Tags can be paused
while something else publishes them (a scenario played into the demo): two sources for one tag
would make its alarms flap between their values.

The gateways speak contract revision 1.1 unless ``critical_topic=False``: the readings of gas
detectors and SIS tags go on each enterprise's critical topic (``simulators.gateway.Gateway``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from safety_hub.registry import Plant
from simulators.gateway import CRITICAL_KINDS, Gateway, SimTag, normal_band, normal_value

log = logging.getLogger("simulators.park")


@dataclass
class SimStats:
    messages: int = 0
    readings: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.readings / elapsed if elapsed > 0 else 0.0


def sim_tags(
    plant: Plant, enterprises: int | None = None, tags: int | None = None
) -> dict[str, list[SimTag]]:
    out: dict[str, list[SimTag]] = {}
    for code in sorted(plant.enterprises)[:enterprises]:
        chosen = [
            SimTag(
                t.tag,
                t.kind,
                t.range_lo,
                t.range_hi,
                t.interval_s,
                *normal_band(t.range_lo, t.range_hi, dict(t.setpoints)),
            )
            for t in plant.tags_of(code)
            if t.in_service
        ]
        out[code] = chosen[:tags] if tags else chosen
    return out


class ParkSimulator:
    def __init__(
        self,
        plant: Plant,
        host: str,
        port: int,
        *,
        enterprises: int | None = None,
        tags: int | None = None,
        rate: float | None = None,
        batch: int = 100,
        speed: float = 1.0,
        seed: int = 1,
        username: str | None = None,
        password: str | None = None,
        critical_topic: bool = True,
    ) -> None:
        self.tags = sim_tags(plant, enterprises, tags)
        self.critical_topic = critical_topic
        self.host, self.port = host, port
        self.rate = rate
        self.batch = batch
        self.speed = speed
        self.rng = random.Random(seed)
        self.stats = SimStats()
        self._stop = threading.Event()
        self._username, self._password = username, password
        self._gateways: dict[str, Gateway] = {}
        # (enterprise, tag) not published for now; replaced whole, never mutated, so the
        # publishing loop reads a consistent set without a lock
        self._paused: frozenset[tuple[str, str]] = frozenset()

    def stop(self) -> None:
        self._stop.set()

    def pause(self, keys: Iterable[tuple[str, str]]) -> None:
        """Stop publishing these (enterprise, tag) until :meth:`resume`; the gateways stay
        connected, so the enterprises' links stay up."""
        self._paused = self._paused | frozenset(keys)

    def resume(self, keys: Iterable[tuple[str, str]]) -> None:
        """Publish these tags again. Each enterprise that had paused tags announces itself
        ``online`` again: whatever published them meanwhile may have left an ``offline``
        status retained at the broker."""
        resumed = self._paused & frozenset(keys)
        self._paused = self._paused - resumed
        for code in sorted({code for code, _ in resumed}):
            gateway = self._gateways.get(code)
            if gateway is not None:
                gateway.announce_online()

    def connect(self, timeout: float = 10.0) -> None:
        for code, tags in self.tags.items():
            self._gateways[code] = Gateway(
                self.host,
                self.port,
                code,
                username=self._username,
                password=self._password,
                critical_tags=[t.tag for t in tags if t.kind in CRITICAL_KINDS],
                critical_topic=self.critical_topic,
                batch=self.batch,
            )
        for code, gw in self._gateways.items():
            if not gw.wait_connected(timeout):
                raise ConnectionError(
                    f"simulator: gateway {code} could not connect to {self.host}:{self.port}"
                )

    def run(
        self,
        duration_s: float | None = None,
        progress: Callable[[SimStats], None] | None = None,
        progress_every_s: float = 5.0,
    ) -> SimStats:
        if not self._gateways:
            self.connect()
        end = None if duration_s is None else time.monotonic() + duration_s
        next_progress = time.monotonic() + progress_every_s
        try:
            if self.rate:
                self._run_rate(end, progress, progress_every_s)
            else:
                while not self._stop.is_set() and (end is None or time.monotonic() < end):
                    self._tick()
                    if progress and time.monotonic() >= next_progress:
                        progress(self.stats)
                        next_progress += progress_every_s
                    self._stop.wait(max(0.05, 1.0 / self.speed))
        finally:
            for gw in self._gateways.values():
                gw.close()
        return self.stats

    def _tick(self) -> None:
        """One second: every tag due at this second publishes (each at its own interval,
        spread over the interval so that a gateway does not publish everything at once); the
        due readings of an enterprise are one sample, which its gateway splits and batches."""
        now_ms = time.time_ns() // 1_000_000
        second = int(now_ms / 1000)
        paused = self._paused
        for code, tags in self.tags.items():
            due = [
                t
                for i, t in enumerate(tags)
                if second % max(1, round(t.interval_s)) == i % max(1, round(t.interval_s))
                and (code, t.tag) not in paused
            ]
            if not due:
                continue
            readings: list[dict[str, object]] = [
                {"tag": t.tag, "v": normal_value(t, now_ms / 1000, self.rng), "ts": now_ms}
                for t in due
            ]
            self.stats.messages += len(self._gateways[code].publish(readings))
            self.stats.readings += len(readings)

    def _run_rate(
        self,
        end: float | None,
        progress: Callable[[SimStats], None] | None,
        progress_every_s: float,
    ) -> None:
        assert self.rate
        flat = [(code, t) for code, tags in self.tags.items() for t in tags]
        if not flat:
            raise ValueError("simulator: no tags to publish")
        per_second_msgs = max(1.0, self.rate / self.batch)
        interval = 1.0 / per_second_msgs
        next_at = time.monotonic()
        next_progress = next_at + progress_every_s
        i = 0
        cycle_ts = 0
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            by_code: dict[str, list[dict[str, object]]] = {}
            paused = self._paused
            for _ in range(self.batch):
                if i % len(flat) == 0:
                    # a new round over the tags: a later timestamp, so no reading overwrites another
                    cycle_ts = max(time.time_ns() // 1_000_000, cycle_ts + 1)
                code, tag = flat[i % len(flat)]
                i += 1
                if (code, tag.tag) in paused:
                    continue
                by_code.setdefault(code, []).append(
                    {
                        "tag": tag.tag,
                        "v": normal_value(tag, cycle_ts / 1000, self.rng),
                        "ts": cycle_ts,
                    }
                )
            for code, readings in by_code.items():
                self.stats.messages += len(self._gateways[code].publish(readings))
                self.stats.readings += len(readings)
            if progress and time.monotonic() >= next_progress:
                progress(self.stats)
                next_progress += progress_every_s
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
