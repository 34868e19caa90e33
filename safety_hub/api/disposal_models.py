"""The API's view of a disposal record (alarms/disposal.py; docs/api.md, "Disposal")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Category = Literal["real_release", "false_alarm", "maintenance", "instrument_fault", "other"]


class DisposalOut(BaseModel):
    category: Category = Field(
        description="real_release 真实泄漏 | false_alarm 误报 | maintenance 检维修 | "
        "instrument_fault 仪表故障 | other 其他"
    )
    text: str = Field(description="what was found and done")
    by: str = Field(description="the authenticated user who disposed it")
    at_ms: int = Field(description="clock time of the disposal")
    raised_ms: int = Field(description="the annunciation (episode) it closes")


class FalseAlarmsOut(BaseModel):
    enterprise: str
    tag: str = Field(description="the detector (tag; the zone or key for an alarm without tag)")
    count: int


class DisposalKpisOut(BaseModel):
    needed: int = Field(description="episodes of tier yellow or above annunciated in the window")
    disposed: int = Field(description="of those, disposed")
    rate_pct: float | None = Field(description="disposed / needed; null when none was needed")
    disposals: int = Field(description="disposal records made in the window")
    median_time_to_dispose_ms: float | None
    p90_time_to_dispose_ms: float | None
    false_alarms: list[FalseAlarmsOut] = Field(
        description="false_alarm disposals per detector in the window, most first"
    )
