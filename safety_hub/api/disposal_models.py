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
