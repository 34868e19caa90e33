"""Messages in Chinese and English, bounded in length (docs/notifications.md, "Messages").

A message names the tier (红色/橙色/黄色/蓝色 warning), the alarm's summary, the enterprise, the
tag (or zone), the value against its setpoint, the local time (Asia/Shanghai) and a console link
when the API's public base URL is known. Several alarms due to the same person and channel within
the summary window go as one message listing them (at most ``LIST_MAX`` lines, then "and N
more"). Pure: the facts come from the planner, the time zone from the argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
TITLE_MAX = 120
BODY_MAX = 2000
LIST_MAX = 10

TIER_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
KIND_ZH = {
    "alarm": "预警",
    "escalation": "预警升级(未确认)",
    "repeat": "预警提醒(仍未确认)",
    "clear": "预警解除",
    "overdue": "预警处置超时",
}
KIND_EN = {
    "alarm": "warning",
    "escalation": "warning escalated (not acknowledged)",
    "repeat": "reminder (still not acknowledged)",
    "clear": "back to normal",
    "overdue": "warning not disposed in time",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Item:
    """One alarm's part of a message: what it says (``facts``) and why (``kind``)."""

    kind: str
    facts: Mapping[str, Any]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def local_time(ms: int | None, tz: ZoneInfo = LOCAL_TZ) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):g}"


def _where(f: Mapping[str, Any]) -> str:
    return str(f.get("tag") or f.get("zone") or f.get("hazard_source") or "-")


def _link(base_url: str | None, alarm_id: Any) -> str | None:
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/console/#alarm={alarm_id}"


def _one_line(item: Item, base_url: str | None) -> str:
    f = item.facts
    tier = str(f.get("tier", ""))
    return (
        f"[{TIER_ZH.get(tier, tier)}/{tier}] {f.get('enterprise')} {_where(f)}: "
        f"{f.get('summary') or f.get('alert')} / {f.get('summary_en') or f.get('alert')} "
        f"({local_time(f.get('raised_ms'))})"
    )


def render(items: Sequence[Item], *, base_url: str | None = None) -> Rendered:
    """One message for one alarm, or a summary listing several."""
    if len(items) == 1:
        return _single(items[0], base_url)
    return _summary(items, base_url)


def _single(item: Item, base_url: str | None) -> Rendered:
    f = item.facts
    tier = str(f.get("tier", ""))
    zh_tier = TIER_ZH.get(tier, tier)
    where = _where(f)
    title = (
        f"【{zh_tier}{KIND_ZH.get(item.kind, '预警')}】{f.get('enterprise')} {where} "
        f"{f.get('summary') or f.get('alert')} | {tier} {KIND_EN.get(item.kind, 'warning')}"
    )
    lines = [
        f"{zh_tier}{KIND_ZH.get(item.kind, '预警')}: {f.get('summary') or f.get('alert')}",
        f"{tier.capitalize()} {KIND_EN.get(item.kind, 'warning')}: "
        f"{f.get('summary_en') or f.get('alert')}",
        f"企业 Enterprise: {f.get('enterprise')}",
        f"位号 Tag: {where}",
        f"报警 Alert: {f.get('alert')} ({f.get('priority')})",
        f"数值 Value: {_number(f.get('value'))} / 设定值 Setpoint: {_number(f.get('setpoint'))}",
        f"时间 Time: {local_time(f.get('raised_ms'))} (Asia/Shanghai)",
    ]
    link = _link(base_url, f.get("alarm_id"))
    if link:
        lines.append(f"控制台 Console: {link}")
    return Rendered(clip(title, TITLE_MAX), clip("\n".join(lines), BODY_MAX))


def _summary(items: Sequence[Item], base_url: str | None) -> Rendered:
    n = len(items)
    tiers = [str(i.facts.get("tier", "")) for i in items]
    order = ["red", "orange", "yellow", "blue"]
    worst = min(tiers, key=lambda t: order.index(t) if t in order else len(order))
    title = f"【{TIER_ZH.get(worst, worst)}预警汇总】{n} 条报警 | {n} alarms ({worst} highest)"
    lines = [f"{n} 条报警 / {n} alarms:"]
    lines.extend(_one_line(item, base_url) for item in items[:LIST_MAX])
    if n > LIST_MAX:
        lines.append(f"…… 另有 {n - LIST_MAX} 条 / and {n - LIST_MAX} more")
    if base_url:
        lines.append(f"控制台 Console: {base_url.rstrip('/')}/console/")
    return Rendered(clip(title, TITLE_MAX), clip("\n".join(lines), BODY_MAX))
