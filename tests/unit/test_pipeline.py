"""Pipeline with in-memory transport and storage: ack after spool, back-pressure, outages."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from safety_hub.clock import VirtualClock
from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.sink import SinkWorker
from safety_hub.ingest.spool import Spool
from safety_hub.ingest.worker import IngestWorker, build_prefixes
from safety_hub.metrics import HubMetrics
from safety_hub.ports import InboundMessage
from safety_hub.system_alarms import SystemAlarms
from tests.unit.fakes import MemorySink, MemorySource, fake_tags

NOW = 1_790_000_000_000


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Rig:
    def __init__(self, tmp_path: Path, *, max_readings: int = 1_000_000) -> None:
        self.clock = VirtualClock(NOW)
        self.metrics = HubMetrics()
        self.alarms = SystemAlarms(self.clock, self.metrics)
        self.tags = fake_tags({"e1": ["T1", "T 2,x=y"], "e2": ["T3"]})
        self.spool = Spool(tmp_path / "spool.sqlite", max_readings=max_readings)
        self.live = LiveTable()
        self.source = MemorySource()
        self.sink = MemorySink()
        decoder = TelemetryDecoder(self.tags, {"e1", "e2"}, self.clock.now_ms)
        self.ingest = IngestWorker(
            decoder=decoder,
            prefixes=build_prefixes(self.tags),
            spool=self.spool,
            live=self.live,
            metrics=self.metrics,
            system_alarms=self.alarms,
            clock=self.clock,
        )
        self.ingest.attach(self.source)
        self.sink_worker = SinkWorker(
            spool=self.spool,
            sink=self.sink,
            metrics=self.metrics,
            system_alarms=self.alarms,
            clock=self.clock,
            batch_readings=50,
            min_backoff_s=0.01,
            max_backoff_s=0.05,
        )

    def message(
        self, enterprise: str, readings: list[dict[str, object]], n: int = 0
    ) -> InboundMessage:
        body = json.dumps({"seq": n, "readings": readings}).encode()
        return InboundMessage(f"hazard/v1/{enterprise}/telemetry", body, NOW, token=n)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_accepted_readings_are_spooled_acked_and_live(rig: Rig) -> None:
    """A valid message is spooled as line protocol, acked, and shows in the live table."""
    msg = rig.message(
        "e1", [{"tag": "T1", "v": 1.5, "ts": NOW - 10}, {"tag": "T 2,x=y", "v": 2, "ts": NOW - 5}]
    )
    rig.ingest.process([msg])
    assert rig.source.acked == [msg]
    batch = rig.spool.peek(100)
    assert len(batch) == 1
    assert batch[0].lines.split("\n") == [
        f'reading,enterprise=e1,equipment=EQ1,hazard_source=HS-e1,kind=pressure,park=park,tag=T1,unit=U1 value=1.5,quality="good" {NOW - 10}',
        f'reading,enterprise=e1,equipment=EQ1,hazard_source=HS-e1,kind=pressure,park=park,tag=T\\ 2\\,x\\=y,unit=U1 value=2.0,quality="good" {NOW - 5}',
    ]
    latest = rig.live.latest("e1", "T1")
    assert latest is not None and latest.value == 1.5
    assert rig.metric("safety_hub_readings_accepted_total", enterprise="e1") == 2


def test_rejections_are_reported_to_the_enterprise_and_counted(rig: Rig) -> None:
    """Bad readings go to hazard/v1/<e>/rejected with index and reason; the rest is stored."""
    msg = rig.message(
        "e1", [{"tag": "T1", "v": 1}, {"tag": "T3", "v": 2}, {"tag": "T1", "v": "x"}], n=42
    )
    rig.ingest.process([msg])
    assert rig.spool.depth().readings == 1
    assert rig.source.acked == [msg]
    [(topic, payload)] = rig.source.published
    assert topic == "hazard/v1/e1/rejected"
    report = json.loads(payload)
    assert report["seq"] == 42
    assert report["accepted"] == 1 and report["total"] == 3
    assert [(r["index"], r["reason"]) for r in report["rejected"]] == [
        (1, "wrong_enterprise"),
        (2, "invalid_reading"),
    ]
    assert (
        rig.metric("safety_hub_readings_rejected_total", enterprise="e1", reason="wrong_enterprise")
        == 1
    )
    assert (
        rig.metric("safety_hub_readings_rejected_total", enterprise="e1", reason="invalid_reading")
        == 1
    )


def test_a_wholly_bad_message_is_still_acked_and_reported(rig: Rig) -> None:
    """Malformed JSON is acked (redelivery would not fix it), counted and reported."""
    msg = InboundMessage("hazard/v1/e2/telemetry", b"{oops", NOW, token=1)
    rig.ingest.process([msg])
    assert rig.source.acked == [msg]
    assert rig.spool.depth().batches == 0
    assert json.loads(rig.source.published[0][1])["rejected"][0]["reason"] == "malformed_json"
    assert (
        rig.metric("safety_hub_messages_rejected_total", enterprise="e2", reason="malformed_json")
        == 1
    )


def test_full_spool_holds_back_acks_and_raises_a_system_alarm(tmp_path: Path) -> None:
    """With the spool full nothing is acked (the broker keeps it) until the sink makes room."""
    rig = Rig(tmp_path, max_readings=2)
    rig.ingest.start()
    rig.ingest.submit(
        rig.message(
            "e1",
            [{"tag": "T1", "v": 0, "ts": NOW - 100}, {"tag": "T1", "v": 1, "ts": NOW - 99}],
            n=0,
        )
    )
    wait_until(lambda: len(rig.source.acked) == 1)
    for i in range(2, 6):
        rig.ingest.submit(rig.message("e1", [{"tag": "T1", "v": i, "ts": NOW - 100 + i}], n=i))
    wait_until(lambda: any(a.name == "spool_full" for a in rig.alarms.active()))
    time.sleep(0.2)  # give a wrongly eager ack the chance to show
    assert len(rig.source.acked) == 1
    assert rig.metric("safety_hub_spool_full") == 1
    rig.sink_worker.start()
    wait_until(lambda: len(rig.source.acked) == 5)
    wait_until(lambda: len(rig.sink.lines) == 6)
    assert not any(a.name == "spool_full" for a in rig.alarms.active())
    rig.ingest.stop()
    rig.sink_worker.stop(1)


def test_storage_outage_keeps_data_in_the_spool_and_drains_after(rig: Rig) -> None:
    """During an outage writes are retried; nothing leaves the spool until storage is back."""
    rig.sink.down = True
    rig.sink_worker.start()
    rig.ingest.process(
        [rig.message("e1", [{"tag": "T1", "v": i, "ts": NOW - 1000 + i}], n=i) for i in range(30)]
    )
    wait_until(lambda: rig.sink.calls >= 3)
    assert rig.spool.depth().readings == 30
    assert any(a.name == "storage_unavailable" for a in rig.alarms.active())
    assert rig.metric("safety_hub_sink_errors_total", kind="outage") >= 3
    rig.sink.down = False
    wait_until(lambda: rig.spool.depth().readings == 0)
    assert len(rig.sink.lines) == 30
    assert not any(a.name == "storage_unavailable" for a in rig.alarms.active())
    rig.sink_worker.stop(1)


def test_bad_data_is_isolated_and_dead_lettered(rig: Rig) -> None:
    """A batch storage refuses (4xx) goes to dead letters; the batches around it are written."""
    rig.sink.refuse_containing = "value=666.0"
    msgs = [
        rig.message("e1", [{"tag": "T1", "v": v, "ts": NOW - 100 + i}], n=i)
        for i, v in enumerate([1, 666, 3])
    ]
    rig.ingest.process(msgs)
    rig.sink_worker.start()
    wait_until(lambda: rig.spool.depth().batches == 0)
    assert len(rig.sink.lines) == 2
    assert rig.spool.depth().dead_letters == 1
    assert "400" in str(rig.spool.dead_letters()[0]["error"])
    assert any(a.name == "dead_letters" for a in rig.alarms.active())
    rig.sink_worker.stop(1)


def test_listeners_see_accepted_readings_in_order(rig: Rig) -> None:
    """Downstream listeners (the rule engine) get every accepted reading once."""
    seen: list[float] = []
    lock = threading.Lock()

    def listen(readings: list[object]) -> None:
        with lock:
            seen.extend(r.value for r in readings)  # type: ignore[attr-defined]

    rig.ingest.add_listener(listen)
    rig.ingest.process([rig.message("e1", [{"tag": "T1", "v": float(i)}], n=i) for i in range(10)])
    assert seen == [float(i) for i in range(10)]


def test_status_messages_update_gateway_state_in_order(rig: Rig) -> None:
    """A gateway's last-will on its status topic is handled and acked like telemetry."""
    got: list[tuple[str, bytes]] = []
    rig.ingest._on_status = lambda ent, payload, ts: got.append((ent, payload))
    status = InboundMessage("hazard/v1/e1/status", b'{"state":"offline"}', NOW, token=9)
    rig.ingest.process([status])
    assert got == [("e1", b'{"state":"offline"}')]
    assert rig.source.acked == [status]
    assert rig.source.published == []


class ExplodingDecoder(TelemetryDecoder):
    """A decoder with a bug: any payload containing b"boom" makes it raise."""

    def decode(self, topic: str, payload: bytes) -> Any:
        if b"boom" in payload:
            raise RecursionError("maximum recursion depth exceeded while deserializing")
        return super().decode(topic, payload)


def test_a_decoder_exception_costs_only_its_own_message(rig: Rig) -> None:
    """A message the decoder chokes on is rejected, acked and reported; the rest of the batch is
    spooled and evaluated, and nothing is retried."""
    rig.ingest._decoder = ExplodingDecoder(rig.tags, {"e1", "e2"}, rig.clock.now_ms)
    seen: list[Any] = []
    rig.ingest.add_listener(seen.extend)
    poison = InboundMessage("hazard/v1/e1/telemetry", b'{"boom": 1}', NOW, token=1)
    good = rig.message("e2", [{"tag": "T3", "v": 7.0, "ts": NOW - 5}], n=2)
    rig.ingest.process([poison, good])
    assert rig.source.acked == [poison, good]
    assert [r.value for r in seen] == [7.0]
    assert rig.spool.depth().readings == 1
    report = json.loads(rig.source.published[0][1])
    assert report["rejected"][0]["reason"] == "malformed_json"
    assert "RecursionError" in report["rejected"][0]["detail"]
    assert (
        rig.metric("safety_hub_messages_rejected_total", enterprise="e1", reason="malformed_json")
        == 1
    )


def test_poison_in_the_worker_thread_does_not_stop_ingest(rig: Rig) -> None:
    """With the worker running, a poison message is acked once and the next message flows."""
    rig.ingest._decoder = ExplodingDecoder(rig.tags, {"e1", "e2"}, rig.clock.now_ms)
    rig.ingest.start()
    poison = InboundMessage("hazard/v1/e1/telemetry", b'{"boom": 1}', NOW, token=1)
    rig.ingest.submit(poison)
    good = rig.message("e1", [{"tag": "T1", "v": 1.0, "ts": NOW - 5}], n=2)
    rig.ingest.submit(good)
    wait_until(lambda: rig.source.acked == [poison, good])
    assert rig.ingest.problems() == []
    rig.ingest.stop()


class BrokenSpool(Spool):
    """A spool whose appends fail while ``broken`` is set (as on a failing disk)."""

    broken = True

    def append(self, batches: Any, created_ms: int) -> None:
        if self.broken:
            raise OSError(5, "Input/output error")
        super().append(batches, created_ms)


def test_alarms_are_evaluated_while_the_spool_cannot_write(tmp_path: Path) -> None:
    """A failing spool holds acks back but not evaluation: listeners see new readings at once,
    readiness names the reason, and everything held is spooled and acked in order later."""
    rig = Rig(tmp_path)
    spool = BrokenSpool(tmp_path / "broken.sqlite")
    rig.ingest._spool = spool
    seen: list[float] = []
    rig.ingest.add_listener(lambda readings: seen.extend(r.value for r in readings))
    rig.ingest.start()
    msgs = [
        rig.message("e1", [{"tag": "T1", "v": float(i), "ts": NOW - 100 + i}], n=i)
        for i in range(3)
    ]
    for msg in msgs[:2]:
        rig.ingest.submit(msg)
    wait_until(lambda: seen == [0.0, 1.0])
    wait_until(lambda: any(a.name == "spool_error" for a in rig.alarms.active()))
    rig.ingest.submit(msgs[2])
    wait_until(lambda: seen == [0.0, 1.0, 2.0])
    assert rig.source.acked == []
    [problem] = rig.ingest.problems()
    assert "spool write failed" in problem and "Input/output error" in problem
    assert "3 message(s) held" in problem
    assert rig.metric("safety_hub_ingest_held_messages") == 3
    spool.broken = False
    wait_until(lambda: rig.source.acked == msgs, timeout=15)
    assert [b.lines.rsplit(" ", 1)[1] for b in spool.peek(100)] == [
        str(NOW - 100 + i) for i in range(3)
    ]
    assert rig.ingest.problems() == []
    assert not any(a.name == "spool_error" for a in rig.alarms.active())
    rig.ingest.stop()


def test_a_flooding_enterprise_does_not_delay_another(rig: Rig) -> None:
    """Intake is fair: with 5,000 messages of e1 waiting, e2's message is in the first batch."""
    for i in range(5000):
        rig.ingest.submit(rig.message("e1", [{"tag": "T1", "v": 1.0, "ts": NOW - 10_000 + i}], n=i))
    late = rig.message("e2", [{"tag": "T3", "v": 9.0, "ts": NOW - 1}], n=1)
    rig.ingest.submit(late)
    first = rig.ingest._lanes.take(2000)
    assert late in first
    assert len(first) == 2000
    assert [m.topic for m in first].count("hazard/v1/e1/telemetry") == 1999


def test_qos0_beyond_the_lane_bound_is_dropped_and_counted(tmp_path: Path) -> None:
    """QoS 0 messages past an enterprise's lane bound are dropped with a counter; QoS 1 never."""
    rig = Rig(tmp_path)
    rig.ingest._lanes._qos0_limit = 10
    for i in range(15):
        rig.ingest.submit(InboundMessage("hazard/v1/e1/telemetry", b"{}", NOW, token=i, qos=0))
    for i in range(15):
        rig.ingest.submit(InboundMessage("hazard/v1/e1/telemetry", b"{}", NOW, token=i, qos=1))
    assert rig.ingest._lanes.depth() == 25
    assert rig.metric("safety_hub_qos0_dropped_total", enterprise="e1", reason="intake_full") == 5


def test_unknown_enterprises_share_one_label_and_grow_nothing(rig: Rig) -> None:
    """1,000 unregistered enterprises (telemetry and status) count under the label _unknown;
    no label, lane or listener call per identity."""
    statuses: list[str] = []
    rig.ingest._on_status = lambda ent, payload, ts: statuses.append(ent)
    msgs = []
    for i in range(1000):
        msgs.append(InboundMessage(f"hazard/v1/u{i}/telemetry", b'{"readings":[]}', NOW, token=i))
        msgs.append(InboundMessage(f"hazard/v1/u{i}/status", b"online", NOW, token=i))
    rig.ingest.process(msgs)
    assert statuses == []
    assert rig.metric("safety_hub_unknown_enterprise_messages_total") == 2000
    assert (
        rig.metric(
            "safety_hub_messages_rejected_total", enterprise="_unknown", reason="unknown_enterprise"
        )
        == 1000
    )
    exported = generate_latest(rig.metrics.registry).decode()
    assert "u17" not in exported and "u999" not in exported
    assert len(rig.ingest._report_budgets) == 1
    # Reports to unknown enterprises share one budget (a burst of 100, then 20/s): the rest are
    # counted, none is silently lost.
    published = len(rig.source.published)
    assert 100 <= published < 150
    suppressed = rig.metric("safety_hub_rejection_reports_suppressed_total", enterprise="_unknown")
    assert published + suppressed == 1000


def test_a_report_lists_at_most_100_rejections_and_logs_one_line(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """5,000 unknown tags give one bounded report (rejected_count, truncated) and one log line."""
    readings = [{"tag": f"X-{i}", "v": 1.0} for i in range(5000)]
    with caplog.at_level(logging.WARNING, logger="safety_hub.pipeline"):
        rig.ingest.process([rig.message("e1", readings, n=3)])
    [(_, payload)] = rig.source.published
    report = json.loads(payload)
    assert report["rejected_count"] == 5000
    assert report["truncated"] is True
    assert len(report["rejected"]) == 100
    assert [r["index"] for r in report["rejected"]] == list(range(100))
    assert len(payload) < 20_000
    assert [r.message for r in caplog.records] == ["message rejected"]


def test_rejection_log_lines_are_rate_limited(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """A flood of 500 bad messages logs at most 20 lines per window; the rest are counted."""
    with caplog.at_level(logging.WARNING, logger="safety_hub.pipeline"):
        rig.ingest.process(
            [InboundMessage("hazard/v1/e1/telemetry", b"{oops", NOW, token=i) for i in range(500)]
        )
    assert len(caplog.records) == 20
    assert rig.metric("safety_hub_log_lines_suppressed_total", what="rejection") == 480


def test_a_batch_is_bounded_by_bytes_so_large_messages_do_not_hold_up_others(rig: Rig) -> None:
    """Ten 1 MiB messages of one enterprise are taken a few at a time; e2's message is in the
    first batch."""
    big = b" " * 1024 * 1024
    for i in range(10):
        rig.ingest.submit(InboundMessage("hazard/v1/e1/telemetry", big, NOW, token=i))
    other = rig.message("e2", [{"tag": "T3", "v": 1.0, "ts": NOW - 1}], n=99)
    rig.ingest.submit(other)
    first = rig.ingest._lanes.take(2000)
    assert other in first
    assert 1 <= len(first) - 1 <= 2


def test_a_retained_replay_of_telemetry_is_rejected_not_evaluated(rig: Rig) -> None:
    """Over MQTT 3.1.1 the broker replays retained telemetry at every subscribe: the replay is
    acked, counted and reported as `retained`, and no reading of it reaches the listeners."""
    seen: list[Any] = []
    rig.ingest.add_listener(seen.extend)
    body = json.dumps({"readings": [{"tag": "T1", "v": 5.0}]}).encode()
    replay = InboundMessage("hazard/v1/e1/telemetry", body, NOW, token=1, retained=True)
    rig.ingest.process([replay])
    assert seen == [] and rig.source.acked == [replay]
    assert json.loads(rig.source.published[0][1])["rejected"][0]["reason"] == "retained"
    assert rig.metric("safety_hub_messages_rejected_total", enterprise="e1", reason="retained") == 1
