"""Alarm service: the ISA-18.2 / IEC 62682 lifecycle of the rule engine's conditions.

Pure and deterministic: the clock is injected, the journal (SQLite) is the durable state.
See docs/alarms.md.
"""

from safety_hub.alarms.errors import (
    AlarmError,
    AlarmNotFound,
    IllegalTransition,
    InvalidAction,
    InvalidCondition,
)
from safety_hub.alarms.journal import AlarmJournal
from safety_hub.alarms.kpis import AlarmCount, FloodEpisode, Kpis, StandingAlarm
from safety_hub.alarms.model import (
    Action,
    Alarm,
    AlarmClass,
    AlarmState,
    Condition,
    JournalEntry,
    OutOfService,
    Priority,
    Shelve,
    Transition,
)
from safety_hub.alarms.service import AlarmService

__all__ = [
    "Action",
    "Alarm",
    "AlarmClass",
    "AlarmCount",
    "AlarmError",
    "AlarmJournal",
    "AlarmNotFound",
    "AlarmService",
    "AlarmState",
    "Condition",
    "FloodEpisode",
    "IllegalTransition",
    "InvalidAction",
    "InvalidCondition",
    "JournalEntry",
    "Kpis",
    "OutOfService",
    "Priority",
    "Shelve",
    "StandingAlarm",
    "Transition",
]
