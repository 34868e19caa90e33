"""One module per board; each has ``UID`` and ``build(plant, pack) -> Dashboard``."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from dashboards.boards import alarm_performance, data_quality, hazard_source, overview, province
from dashboards.model import Dashboard
from safety_hub.registry import Plant
from safety_hub.rules import RulePack

BOARDS: tuple[ModuleType, ...] = (
    overview,
    hazard_source,
    alarm_performance,
    data_quality,
    province,
)
Builder = Callable[[Plant, RulePack], Dashboard]
