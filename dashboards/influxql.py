"""InfluxQL pieces for panel queries: identifiers, literals, variable filters.

Every query names its measurement and columns from the constants the hub writes with, so a
rename in the hub breaks the build here, not a board in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from safety_hub.ingest.lineproto import READING_MEASUREMENT
from safety_hub.runtime.alarm_runtime import ALARM_EVENT_MEASUREMENT
from safety_hub.runtime.hub_stats import (
    ALARM_ACKS,
    ALARM_DISPOSALS,
    ENTERPRISE_STATS,
    HAZARD_SOURCE_STATS,
    HUB_STATS,
    REJECTIONS,
)
from safety_hub.uplink.province_points import (
    PROVINCE_PARK_STATS,
    PROVINCE_READING,
    PROVINCE_REFUSALS,
    PROVINCE_STATS,
)

READING = READING_MEASUREMENT
ALARM_EVENT = ALARM_EVENT_MEASUREMENT
__all__ = [
    "ALARM_ACKS",
    "ALARM_DISPOSALS",
    "ALARM_EVENT",
    "ENTERPRISE_STATS",
    "HAZARD_SOURCE_STATS",
    "HUB_STATS",
    "PROVINCE_PARK_STATS",
    "PROVINCE_READING",
    "PROVINCE_REFUSALS",
    "PROVINCE_STATS",
    "READING",
    "REJECTIONS",
    "ident",
    "one_of",
    "string",
    "var_match",
]


def ident(name: str) -> str:
    """A double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string(value: str) -> str:
    """A single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def var_match(column: str, variable: str) -> str:
    """``"column" =~ /^${variable:regex}$/``: Grafana's ``regex`` format escapes the selected
    values and joins several (or every value, for All) as ``(a|b)``; a code with ``(``, ``+``,
    ``.`` or ``/`` in it still matches only itself, single-valued variables included."""
    return f"{ident(column)} =~ /^${{{variable}:regex}}$/"


def one_of(column: str, values: Iterable[str]) -> str:
    """``"column" =~ /^(a|b|c)$/`` for a fixed set (regex-escaped)."""
    alternatives = "|".join(re.escape(v).replace("/", r"\/") for v in sorted(set(values)))
    return f"{ident(column)} =~ /^({alternatives})$/"
