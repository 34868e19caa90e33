"""Alarm system performance (ISA-18.2 / EEMUA 191): alarms per 10 minutes, time in flood,
chattering alarms, top bad actors, priority mix, time to acknowledge, standing alarms; and the
closed loop (预警处置闭环): disposal rate, time to dispose, overdue warnings, false alarms per
detector (they feed alarm rationalisation)."""

from __future__ import annotations

from dashboards.boards.common import (
    INTERVAL,
    TAGS,
    TIME_FILTER,
    enterprise_variable,
    stat,
    table,
    timeseries,
)
from dashboards.boards.overview import RATE_STEPS, alarm_rate_query
from dashboards.influxql import (
    ALARM_ACKS,
    ALARM_DISPOSALS,
    ALARM_EVENT,
    HUB_STATS,
    ident,
    string,
    var_match,
)
from dashboards.model import Dashboard, Override, Panel, Row, Step, Target
from safety_hub.registry import Plant
from safety_hub.rules import RulePack

UID = "safety-hub-alarm-performance"
ENT = var_match("enterprise", "enterprise")
ANNUNCIATED = f"{ident('annunciated')} = true"
PRIORITY_COLORS = {"critical": "red", "high": "orange", "medium": "yellow", "low": "blue"}


def build(plant: Plant, pack: RulePack) -> Dashboard:
    items: list[Panel | Row] = [
        Row("报警负荷 Alarm load"),
        timeseries(
            "每10分钟报警数 Alarms per 10 min",
            [Target(alarm_rate_query(), alias="annunciations / 10 min")],
            bars=True,
            steps=RATE_STEPS,
            threshold_style="dashed",
            width=16,
            description="Annunciations per 10-minute bucket; lines at 1 (acceptable), 2 "
            "(maximum manageable) and 10 (flood).",
        ),
        stat(
            "泛滥时间占比 Time in flood",
            f"SELECT mean({ident('in_flood')}) * 100 FROM {ident(HUB_STATS)} WHERE {TIME_FILTER}",
            unit="percent",
            steps=[Step("green"), Step("red", 1)],
            width=8,
            height=8,
            description="Share of the range the alarm system was in flood (more than 10 "
            "annunciations in 10 minutes until fewer than 5 remain). Target < 1 %.",
        ),
        timeseries(
            "滑动10分钟报警数 Annunciations in the sliding 10 minutes",
            [
                Target(
                    f"SELECT max({ident('annunciations_10min')}) FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="last 10 min",
                ),
                Target(
                    f"SELECT max({ident('in_flood')}) * 10 FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    ref_id="B",
                    alias="in flood (10 = yes)",
                ),
            ],
            steps=[Step("green"), Step("orange", 5), Step("red", 10)],
            threshold_style="dashed",
            width=24,
        ),
        stat(
            "振荡报警 Chattering alarms (last 10 min)",
            f"SELECT last({ident('alarms_chattering')}) FROM {ident(HUB_STATS)} "
            f"WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("red", 1)],
            width=8,
            height=8,
            description="Alarms that chattered in the last 10 minutes: 3 or more transitions "
            "into or out of alarm within 60 s (ISA-18.2 / EEMUA 191; target 0). A latched gas "
            "alarm whose gas comes and goes counts here although it annunciates once.",
        ),
        timeseries(
            "振荡报警数 Chattering alarms over time",
            [
                Target(
                    f"SELECT max({ident('alarms_chattering')}) FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="chattering (last 10 min)",
                )
            ],
            steps=[Step("green"), Step("red", 1)],
            threshold_style="dashed",
            width=16,
        ),
        Row("报警构成 Alarm composition"),
        table(
            "最频繁报警 Top bad actors",
            [
                Target(
                    f"SELECT count({ident('alarm_id')}) AS {ident('annunciations')} "
                    f"FROM {ident(ALARM_EVENT)} WHERE {ANNUNCIATED} AND {ENT} AND {TIME_FILTER} "
                    f"GROUP BY {ident('alert')}, {ident('enterprise')}, {ident('tag')}, "
                    f"{ident('zone')}",
                    result_format="table",
                )
            ],
            width=12,
            height=10,
            description="The 10 alarms that annunciated most often in the range.",
            transformations=[
                {"id": "sortBy", "options": {"sort": [{"field": "annunciations", "desc": True}]}},
                {"id": "limit", "options": {"limitField": 10}},
                {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            ],
        ),
        Panel(
            "piechart",
            "优先级构成 Priority mix",
            [
                Target(
                    f"SELECT count({ident('alarm_id')}) FROM {ident(ALARM_EVENT)} "
                    f"WHERE {ANNUNCIATED} AND {ENT} AND {TIME_FILTER} GROUP BY {ident('priority')}",
                    alias="$tag_priority",
                )
            ],
            width=12,
            height=10,
            description="Annunciations by effective priority; ISA-18.2 aims at about 80 % low, "
            "15 % medium, 5 % high.",
            overrides=[
                Override(p, {"color": {"mode": "fixed", "fixedColor": c}})
                for p, c in PRIORITY_COLORS.items()
            ],
            options={
                "reduceOptions": {"calcs": ["sum"], "fields": "", "values": False},
                "pieType": "donut",
                "displayLabels": ["name", "percent"],
                "legend": {
                    "displayMode": "table",
                    "placement": "right",
                    "values": ["value", "percent"],
                },
            },
        ),
        Row("响应 Response"),
        stat(
            "平均确认时间 Mean time to acknowledge",
            f"SELECT mean({ident('time_to_ack_s')}) FROM {ident(ALARM_ACKS)} "
            f"WHERE {ENT} AND {TIME_FILTER}",
            unit="s",
            steps=[Step("green"), Step("orange", 300), Step("red", 900)],
            width=6,
        ),
        stat(
            "确认时间中位数 Median time to acknowledge",
            f"SELECT median({ident('time_to_ack_s')}) FROM {ident(ALARM_ACKS)} "
            f"WHERE {ENT} AND {TIME_FILTER}",
            unit="s",
            steps=[Step("green"), Step("orange", 300), Step("red", 900)],
            width=6,
        ),
        stat(
            "长期报警 Standing alarms (> 24 h)",
            f"SELECT last({ident('alarms_standing')}) FROM {ident(HUB_STATS)} WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("orange", 1), Step("red", 5)],
            width=6,
            description="Alarms in service whose condition has been active for more than "
            "24 h. Target < 5.",
        ),
        stat(
            "当前报警 Alarms shown",
            f"SELECT last({ident('alarms_shown')}) FROM {ident(HUB_STATS)} WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("orange", 1)],
            width=6,
        ),
        timeseries(
            "确认时间（按优先级） Time to acknowledge by priority",
            [
                Target(
                    f"SELECT mean({ident('time_to_ack_s')}) FROM {ident(ALARM_ACKS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('priority')} fill(none)",
                    alias="$tag_priority",
                )
            ],
            unit="s",
            width=12,
            bars=True,
        ),
        timeseries(
            "长期报警数 Standing alarms",
            [
                Target(
                    f"SELECT max({ident('alarms_standing')}) FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="standing",
                )
            ],
            steps=[Step("green"), Step("red", 5)],
            threshold_style="dashed",
            width=12,
        ),
        *closed_loop_panels(),
    ]
    return Dashboard(
        uid=UID,
        title="报警管理绩效 Alarm performance",
        description="ISA-18.2 / EEMUA 191 alarm KPIs of the park's alarm system.",
        tags=[*TAGS, "alarms"],
        items=items,
        variables=[enterprise_variable()],
        time_from="now-24h",
        refresh="1m",
    )


def closed_loop_panels() -> list[Panel | Row]:
    """Disposal rate, time to dispose, overdue warnings, false alarms per detector."""
    ttd = ident("time_to_dispose_s")
    where = f"FROM {ident(ALARM_DISPOSALS)} WHERE {ENT} AND {TIME_FILTER}"
    return [
        Row("处置闭环 Closed loop (disposal)"),
        stat(
            "处置率 Disposal rate",
            f"SELECT sum({ident('disposals')}) / sum({ident('disposals_needed')}) * 100 "
            f"FROM {ident(HUB_STATS)} WHERE {TIME_FILTER}",
            unit="percent",
            steps=[Step("red"), Step("orange", 80), Step("green", 95)],
            description="Disposal records made in the range per warning episode of tier "
            "yellow or above annunciated in it (the whole park).",
        ),
        stat(
            "处置时间中位数 Median time to dispose",
            f"SELECT median({ttd}) {where}",
            unit="s",
            steps=[Step("green"), Step("orange", 1800), Step("red", 7200)],
            description="From the annunciation to the disposal record, of the records made "
            "in the range.",
        ),
        stat(
            "处置时间P90 90th percentile time to dispose",
            f"SELECT percentile({ttd}, 90) {where}",
            unit="s",
            steps=[Step("green"), Step("orange", 1800), Step("red", 7200)],
        ),
        stat(
            "超时未处置 Overdue red/orange warnings",
            f"SELECT last({ident('alarms_disposal_overdue')}) FROM {ident(HUB_STATS)} "
            f"WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("red", 1)],
            description="Red and orange warnings past their disposal time limit, not disposed.",
        ),
        table(
            "误报最多的探测器 False alarms per detector",
            [
                Target(
                    f"SELECT count({ident('alarm_id')}) AS {ident('false_alarms')} "
                    f"FROM {ident(ALARM_DISPOSALS)} WHERE {ident('category')} = "
                    f"{string('false_alarm')} AND {ENT} AND {TIME_FILTER} "
                    f"GROUP BY {ident('enterprise')}, {ident('tag')}",
                    result_format="table",
                )
            ],
            width=24,
            height=8,
            description="Disposals recorded as false alarm (误报) per detector: candidates "
            "for recalibration, relocation or a setpoint review (alarm rationalisation).",
            transformations=[
                {"id": "sortBy", "options": {"sort": [{"field": "false_alarms", "desc": True}]}},
                {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            ],
        ),
    ]
