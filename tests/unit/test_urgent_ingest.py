"""Safety-critical telemetry ahead of bulk process data: triage on arrival, urgent intake lanes,
and urgent messages served (evaluated, spooled, acknowledged) in the middle of a bulk batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_hub.clock import VirtualClock
from safety_hub.ingest import worker as worker_module
from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.intake import IntakeLanes
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.spool import Spool
from safety_hub.ingest.telemetry import Reading
from safety_hub.ingest.triage import Triage
from safety_hub.ingest.worker import IngestWorker, build_prefixes
from safety_hub.metrics import HubMetrics
from safety_hub.ports import InboundMessage
from safety_hub.system_alarms import SystemAlarms
from tests.unit.fakes import MemorySource, fake_tags

NOW = 1_790_000_000_000
TRIAGE = Triage([("e1", "GT-1"), ("e2", "GT-2")], max_payload_bytes=64 * 1024)


def body(*tags: str, ts: int = NOW) -> bytes:
    return json.dumps({"readings": [{"tag": t, "v": 1.0, "ts": ts} for t in tags]}).encode()


def message(enterprise: str, payload: bytes, token: object = None) -> InboundMessage:
    return InboundMessage(f"hazard/v1/{enterprise}/telemetry", payload, NOW, token=token)


@pytest.mark.parametrize(
    ("topic", "payload", "urgent"),
    [
        ("hazard/v1/e1/telemetry", body("GT-1"), True),
        ("hazard/v1/e1/telemetry", body("PT-1", "PT-2", "GT-1"), True),  # mixed: urgent whole
        ("hazard/v1/e1/telemetry", body("PT-1", "PT-2"), False),
        ("hazard/v1/e1/telemetry", body("GT-2"), False),  # e2's detector, sent by e1
        ("hazard/v1/e3/telemetry", body("GT-1"), False),  # no critical tags there
        ("hazard/v1/e1/status", b'{"state":"online"}', False),
        ("hazard/v2/e1/telemetry", body("GT-1"), False),
        ("hazard/v1/e1/telemetry", b'{"readings":[{"tag":"GT-1"', False),  # malformed
        ("hazard/v1/e1/telemetry", b'{"readings":[{"tag":7}]}', False),
        ("hazard/v1/e1/telemetry", b"\xff\xfe", False),
        ("hazard/v1/e1/telemetry", body("GT-1") + b" " * 64 * 1024, False),  # too large
        ("hazard/v1/e1/telemetry/unit-3", body("GT-1"), True),  # a sub-topic
        ("hazard/v1/e1/telemetry/unit-3", body("PT-1"), False),
        # the critical topic (contract v1.1) is urgent by its name, whatever it carries
        ("hazard/v1/e1/critical", body("GT-1"), True),
        ("hazard/v1/e3/critical", body("PT-1"), True),
        ("hazard/v1/e1/critical/unit-3", b"not json", True),
        ("hazard/v1//critical", body("GT-1"), False),
        ("hazard/v2/e1/critical", body("GT-1"), False),
        ("hazard/v1/e1/criticals", body("GT-1"), False),
    ],
)
def test_triage_finds_critical_tags_and_never_raises(
    topic: str, payload: bytes, urgent: bool
) -> None:
    assert TRIAGE.urgent(topic, payload) is urgent


def test_urgent_lane_is_taken_first_and_round_robin() -> None:
    lanes = IntakeLanes(["e1", "e2"])
    bulk = [message("e1", body("PT-1"), i) for i in range(3)]
    for m in bulk:
        lanes.put(m)
    urgent = [message("e1", body("GT-1"), "u1a"), message("e1", body("GT-1"), "u1b")]
    urgent.append(message("e2", body("GT-2"), "u2"))
    for m in urgent:
        lanes.put(m, urgent=True)
    assert lanes.urgent_waiting
    assert lanes.depth() == 6
    assert lanes.depths() == {"e1": 5, "e2": 1}
    taken = lanes.take_urgent(2)
    assert {m.token for m in taken} == {"u1a", "u2"}  # one per enterprise per round
    assert lanes.urgent_waiting  # one left
    assert [m.token for m in lanes.take_urgent(10)] == ["u1b"]
    assert not lanes.urgent_waiting
    assert lanes.take_urgent(10) == []
    assert [m.token for m in lanes.take(10)] == [0, 1, 2]


def test_an_unregistered_enterprise_has_no_urgent_lane() -> None:
    lanes = IntakeLanes(["e1"])
    lanes.put(message("e9", body("GT-1"), "x"), urgent=True)
    assert not lanes.urgent_waiting
    assert [m.token for m in lanes.take(10)] == ["x"]


class Rig:
    def __init__(self, tmp_path: Path, max_batch: int = 256) -> None:
        clock = VirtualClock(NOW)
        metrics = HubMetrics()
        tags = fake_tags({"e1": ["GT-1", "PT-1", "PT-2"], "e2": ["GT-2"]})
        self.source = MemorySource()
        self.spool = Spool(tmp_path / "spool.sqlite")
        self.worker = IngestWorker(
            decoder=TelemetryDecoder(tags, {"e1", "e2"}, clock.now_ms),
            prefixes=build_prefixes(tags),
            spool=self.spool,
            live=LiveTable(),
            metrics=metrics,
            system_alarms=SystemAlarms(clock, metrics),
            clock=clock,
            urgent=TRIAGE.urgent,
            max_batch_messages=max_batch,
        )
        self.worker.attach(self.source)
        self.seen: list[list[Reading]] = []
        self.settled: list[int] = []  # how many chunks had been seen at each settle call
        self.worker.add_listener(self.seen.append, lambda: self.settled.append(len(self.seen)))


def test_an_urgent_message_is_evaluated_and_acked_in_the_middle_of_a_bulk_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gas reading that arrives while a bulk batch is being evaluated is evaluated right
    after the current chunk, spooled and acknowledged before the bulk batch is."""
    monkeypatch.setattr(worker_module, "FAN_OUT_CHUNK", 2)
    rig = Rig(tmp_path)
    gas = message("e1", body("GT-1", ts=NOW + 5), "gas")

    def arrives_during_first_chunk(readings: list[Reading]) -> None:
        if len(rig.seen) == 1:
            rig.worker.submit(gas)  # on the transport's thread, in the hub

    rig.worker.add_listener(arrives_during_first_chunk)
    bulk = [message("e1", body("PT-1", "PT-2", ts=NOW + i), f"bulk{i}") for i in range(3)]
    rig.worker.process(bulk)

    tags = [[r.tag for r in chunk] for chunk in rig.seen]
    assert tags == [["PT-1", "PT-2"], ["GT-1"], ["PT-1", "PT-2"], ["PT-1", "PT-2"]]
    assert [m.token for m in rig.source.acked] == ["gas", "bulk0", "bulk1", "bulk2"]
    # the urgent batch settled once after its own reading, the bulk batch once at its end
    assert rig.settled == [2, 4]
    assert rig.spool.depth().readings == 7  # all of them stored


def test_urgent_messages_waiting_are_taken_before_bulk_ones(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.worker.submit(message("e1", body("PT-1"), "bulk"))
    rig.worker.submit(message("e2", body("GT-2"), "gas"))
    rig.worker.start()
    try:
        with rig.source.ack_event:
            assert rig.source.ack_event.wait_for(lambda: len(rig.source.acked) == 2, 10)
    finally:
        rig.worker.stop()
    assert [m.token for m in rig.source.acked] == ["gas", "bulk"]
    assert [[r.tag for r in chunk] for chunk in rig.seen] == [["GT-2"], ["PT-1"]]


def test_a_stream_of_urgent_messages_does_not_starve_bulk_ones(tmp_path: Path) -> None:
    """Urgent first, but not twice in a row while a bulk message waits: the bulk batch is
    taken next, and serves one urgent batch (of one message here) at its first checkpoint."""
    rig = Rig(tmp_path, max_batch=1)  # one message per batch makes the order visible
    rig.worker.submit(message("e1", body("PT-1"), "bulk"))
    for i in range(3):
        rig.worker.submit(message("e2", body("GT-2", ts=NOW + i), f"gas{i}"))
    rig.worker.start()
    try:
        with rig.source.ack_event:
            assert rig.source.ack_event.wait_for(lambda: len(rig.source.acked) == 4, 10)
    finally:
        rig.worker.stop()
    assert [m.token for m in rig.source.acked] == ["gas0", "gas1", "bulk", "gas2"]
