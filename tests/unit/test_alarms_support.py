"""Shared builders for the alarm tests (no tests here): a service on a virtual clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safety_hub.alarms import Alarm, AlarmJournal, AlarmService, Condition, Transition
from safety_hub.clock import VirtualClock

T0 = 1_790_000_000_000
SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

ENTERPRISE = "e01-chloralkali"
CL2_SOURCE = "HS-E01-CL2"  # chlorine storage: a grade-1 major hazard source
TANK_SOURCE = "HS-E02-TANK"  # grade 3
GRADES: dict[str, int | None] = {CL2_SOURCE: 1, TANK_SOURCE: 3, "HS-E03-NEW": None}


class Rig:
    """An `AlarmService` on a virtual clock that records what its listeners were given."""

    def __init__(
        self,
        path: Path | str = ":memory:",
        *,
        start_ms: int = T0,
        grades: dict[str, int | None] | None = None,
        **options: Any,
    ) -> None:
        self.clock = VirtualClock(start_ms)
        self.journal: Any = options.pop("journal", None) or AlarmJournal(path)
        self.svc = AlarmService(
            self.journal, self.clock, GRADES if grades is None else grades, **options
        )
        self.events: list[Transition] = []
        self.svc.subscribe(self.events.append)

    def condition(self, key: str, active: bool, **fields: Any) -> Condition:
        """A condition for ``key`` (``Alert|enterprise|tag``) at the clock's time."""
        alert, _, tag = key.split("|")
        defaults: dict[str, Any] = {
            "key": key,
            "alert": alert,
            "active": active,
            "ts_ms": self.clock.now_ms(),
            "enterprise": ENTERPRISE,
            "hazard_source": CL2_SOURCE,
            "tag": tag,
            "zone": None,
            "priority": "medium",
            "alarm_class": "process",
            "latch": False,
        }
        return Condition(**{**defaults, **fields})

    def on(self, key: str, **fields: Any) -> list[Transition]:
        return self.svc.apply(self.condition(key, True, **fields))

    def off(self, key: str, **fields: Any) -> list[Transition]:
        return self.svc.apply(self.condition(key, False, **fields))

    def alarm(self, key: str) -> Alarm:
        alarm = self.svc.find(key)
        assert alarm is not None, f"no alarm for {key}"
        return alarm

    def advance(self, ms: int) -> int:
        return self.clock.advance(ms)


def gas(level: int, tag: str = "GT-1101", **fields: Any) -> dict[str, Any]:
    """Fields of a chlorine level-1/level-2 gas alarm condition (they latch)."""
    return {
        "alarm_class": "gas",
        "latch": True,
        "level": level,
        "setpoint": {1: 1.0, 2: 2.0}[level],  # mg/m³: 100 % and 200 % of the OEL (MAC 1)
        "summary": f"氯气浓度{'一' if level == 1 else '二'}级报警 {tag}",
        "summary_en": f"Chlorine level-{level} alarm {tag}",
        **fields,
    }
