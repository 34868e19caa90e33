"""Notification messages: Chinese and English, local time, console link, bounded length."""

from __future__ import annotations

from safety_hub.notify.render import BODY_MAX, LIST_MAX, TITLE_MAX, Item, render

FACTS = {
    "alarm_id": 7,
    "alert": "ToxicGasLevel2",
    "summary": "氯气浓度二级报警 GT-1101",
    "summary_en": "Chlorine level-2 alarm GT-1101",
    "priority": "critical",
    "tier": "red",
    "enterprise": "e01-chloralkali",
    "hazard_source": "HS-E01-CL2",
    "tag": "GT-1101",
    "zone": None,
    "level": 2,
    "value": 2.4,
    "setpoint": 2.0,
    "raised_ms": 1_790_000_000_000,  # 2026-09-21 14:13:20 UTC
}


def test_one_alarm_reads_in_both_languages_with_local_time_and_link() -> None:
    msg = render([Item("escalation", FACTS)], base_url="https://hub.example.org/")
    assert msg.title.startswith("【红色预警升级(未确认)】e01-chloralkali GT-1101 氯气浓度二级报警")
    assert "red warning escalated" in msg.title
    assert "Chlorine level-2 alarm GT-1101" in msg.body
    assert "数值 Value: 2.4 / 设定值 Setpoint: 2" in msg.body
    assert "2026-09-21 22:13:20 (Asia/Shanghai)" in msg.body
    assert "https://hub.example.org/console/#alarm=7" in msg.body
    assert "Console" not in render([Item("alarm", FACTS)]).body


def test_a_flood_is_one_bounded_message_listing_the_alarms() -> None:
    items = [
        Item("alarm", {**FACTS, "alarm_id": i, "tag": f"GT-{i}", "tier": "orange"})
        for i in range(40)
    ]
    items.append(Item("alarm", {**FACTS, "summary": "长" * 5000}))
    msg = render(items)
    assert msg.title.startswith("【红色预警汇总】41 条报警 | 41 alarms (red highest)")
    assert msg.body.count("\n[") == LIST_MAX
    assert f"另有 {41 - LIST_MAX} 条 / and {41 - LIST_MAX} more" in msg.body
    assert len(msg.title) <= TITLE_MAX and len(msg.body) <= BODY_MAX
    long = render([Item("alarm", {**FACTS, "summary": "长" * 5000})])
    assert len(long.title) <= TITLE_MAX and len(long.body) <= BODY_MAX and long.body.endswith("…")
