"""Data quality: stale tags, rejected readings by reason and enterprise, bad quality, spool."""

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
from dashboards.influxql import (
    ALARM_EVENT,
    ENTERPRISE_STATS,
    HUB_STATS,
    READING,
    REJECTIONS,
    ident,
    one_of,
    var_match,
)
from dashboards.model import Dashboard, Panel, Row, Step, Target
from safety_hub.registry import Plant
from safety_hub.rules import RulePack

UID = "safety-hub-data-quality"
ENT = var_match("enterprise", "enterprise")


def stale_alerts(pack: RulePack) -> list[str]:
    """The alerts of the pack that report stale tags (condition type ``stale``)."""
    return sorted(r.alert for r in pack if r.type == "stale")


def build(plant: Plant, pack: RulePack) -> Dashboard:
    stale = stale_alerts(pack)
    items: list[Panel | Row] = [
        Row("数据时效 Stale data"),
        timeseries(
            "超时位号 Stale tags by enterprise",
            [
                Target(
                    f"SELECT last({ident('tags_stale')}) FROM {ident(ENTERPRISE_STATS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('enterprise')} fill(none)",
                    alias="$tag_enterprise",
                )
            ],
            stack=True,
            description="Tags whose stale-data alarm ("
            + ", ".join(stale)
            + ") is active: nothing received for the rule's number of expected intervals.",
        ),
        table(
            "超时位号列表 Stale tags now",
            [
                Target(
                    f"SELECT last({ident('active')}) AS {ident('active')}, "
                    f"last({ident('state')}) AS {ident('state')} FROM {ident(ALARM_EVENT)} "
                    f"WHERE {one_of('alert', stale)} AND {ENT} AND {TIME_FILTER} "
                    f"GROUP BY {ident('enterprise')}, {ident('tag')}, {ident('alert')}",
                    result_format="table",
                )
            ],
            description="The latest event of each stale-data alarm in the range; only those "
            "still active are listed.",
            transformations=[
                {
                    "id": "filterByValue",
                    "options": {
                        "type": "include",
                        "match": "any",
                        "filters": [
                            {
                                "fieldName": "active",
                                "config": {"id": "equal", "options": {"value": True}},
                            }
                        ],
                    },
                },
                {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            ],
        ),
        Row("拒收数据 Rejected readings"),
        timeseries(
            "拒收原因 Rejected readings by reason",
            [
                Target(
                    f"SELECT sum({ident('readings')}) FROM {ident(REJECTIONS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('reason')} fill(none)",
                    alias="$tag_reason",
                )
            ],
            bars=True,
            stack=True,
            description="Readings (or whole messages) the hub rejected, by reason "
            "(docs/mqtt-contract.md); each enterprise is told why on its rejected topic.",
        ),
        table(
            "拒收（按企业与原因） Rejected readings by enterprise and reason",
            [
                Target(
                    f"SELECT sum({ident('readings')}) AS {ident('readings')}, "
                    f"sum({ident('messages')}) AS {ident('messages')} FROM {ident(REJECTIONS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} GROUP BY {ident('enterprise')}, {ident('reason')}",
                    result_format="table",
                )
            ],
            transformations=[
                {"id": "sortBy", "options": {"sort": [{"field": "readings", "desc": True}]}},
                {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            ],
        ),
        timeseries(
            "接收与入库 Readings accepted per enterprise",
            [
                Target(
                    f"SELECT sum({ident('readings_accepted')}) FROM {ident(ENTERPRISE_STATS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('enterprise')} fill(none)",
                    alias="$tag_enterprise",
                )
            ],
            stack=True,
        ),
        timeseries(
            "关键主题 Messages on the critical topic (gas and SIS, contract v1.1)",
            [
                Target(
                    f"SELECT sum({ident('critical_messages')}) FROM {ident(ENTERPRISE_STATS)} "
                    f"WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('enterprise')} fill(none)",
                    alias="$tag_enterprise",
                ),
                Target(
                    f"SELECT sum({ident('critical_other_readings')}) "
                    f"FROM {ident(ENTERPRISE_STATS)} WHERE {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('enterprise')} fill(none)",
                    ref_id="B",
                    alias="$tag_enterprise misplaced readings",
                ),
            ],
            description="Messages each enterprise sends on hazard/v1/<enterprise>/critical, "
            "which the hub reads apart from process data so that no backlog delays a gas "
            "reading (an enterprise with none still sends everything on telemetry, as a v1.0 "
            "gateway does), and readings there that are neither gas detectors nor SIS: taken, "
            "but they belong on telemetry (docs/mqtt-contract.md).",
        ),
        timeseries(
            "质量异常读数 Readings of bad or uncertain quality",
            [
                Target(
                    f"SELECT count({ident('value')}) FROM {ident(READING)} "
                    f"WHERE {ident('quality')} != 'good' AND {ENT} AND {TIME_FILTER} "
                    f"GROUP BY time({INTERVAL}), {ident('enterprise')} fill(none)",
                    alias="$tag_enterprise",
                )
            ],
            bars=True,
            stack=True,
        ),
        Row("缓冲与存储 Spool and storage"),
        timeseries(
            "缓冲深度 Spool depth",
            [
                Target(
                    f"SELECT max({ident('spool_readings')}) FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="readings waiting",
                )
            ],
            description="Readings waiting in the hub's on-disk spool for the database. It "
            "grows during a database outage and drains after it.",
            width=12,
        ),
        timeseries(
            "缓冲时长 Age of the oldest spooled batch",
            [
                Target(
                    f"SELECT max({ident('spool_age_s')}) FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="age",
                )
            ],
            unit="s",
            width=6,
        ),
        stat(
            "死信 Dead letters",
            f"SELECT last({ident('dead_letters')}) FROM {ident(HUB_STATS)} WHERE {TIME_FILTER}",
            steps=[Step("green"), Step("red", 1)],
            width=6,
            height=8,
            description="Spooled batches the database refused as bad data (GET /api/v1/system "
            "lists them).",
        ),
        timeseries(
            "告警待发 Alarm events waiting for the broker",
            [
                Target(
                    f"SELECT max({ident('alarm_outbox_events')}) FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="events waiting",
                )
            ],
            description="Alarm events the hub has committed and the MQTT broker has not "
            "acknowledged yet (hazard/v1/<enterprise>/alarms). Zero but for moments; it grows "
            "while the broker is away, and the events go out in order once it is back.",
            width=12,
        ),
        timeseries(
            "告警待发时长 Age of the oldest waiting alarm event",
            [
                Target(
                    f"SELECT max({ident('alarm_outbox_age_s')}) FROM {ident(HUB_STATS)} "
                    f"WHERE {TIME_FILTER} GROUP BY time({INTERVAL}) fill(none)",
                    alias="age",
                )
            ],
            unit="s",
            width=12,
        ),
    ]
    return Dashboard(
        uid=UID,
        title="数据质量 Data quality",
        description="Stale tags, rejected readings, bad quality and the hub's spool.",
        tags=[*TAGS, "data-quality"],
        items=items,
        variables=[enterprise_variable()],
        time_from="now-6h",
        refresh="30s",
    )
