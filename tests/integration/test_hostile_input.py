"""Issue 10's proof: hostile input through a real Mosquitto into a real ``safety-hub run``.

Every test ends the way the park needs it to: a real level-2 chlorine reading still raises its
alarm event within 10 s (GB 16808). The brokers have the size limits of the shipped
Mosquitto config (deploy/mosquitto/mosquitto.conf) unless a test says why not.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.processes import MosquittoProcess
from tests.integration.hostile import (
    DETECTORS,
    ENT,
    HAND_PICKED_COUNT,
    HIGH,
    LEVEL2,
    NORMAL,
    PAYLOAD_LIMIT,
    REJECTED,
    TELEMETRY,
    AlarmWatcher,
    Poison,
    Publisher,
    TopicCollector,
    assert_alarm_still_fires,
    back_to_normal,
    flood_qos1,
    hand_picked_poisons,
    hypothesis_poisons,
    mosquitto_pub_file,
    now_ms,
    raise_level2,
    reading,
    rejection_total,
    shipped_size_limits,
    subscriptions_logged,
    wait_ingesting,
)
from tests.integration.hubproc import HubProcess, metric_sum, wait_for

pytestmark = pytest.mark.integration

# The hub's session for ENT (SAFETY_HUB_MQTT_CLIENT_ID's default + "/" + the enterprise) and
# its telemetry subscription.
HUB_CLIENT_ID = f"safety-hub-ingest/{ENT}"
TELEMETRY_FILTER = f"hazard/v1/{ENT}/telemetry/#"
MiB = 1024 * 1024
REPORT_BOUND = 64 * 1024  # a rejection report, whatever the message it answers
ECHO_BOUND = 512  # characters of one detail or tag echoed in a report
UNKNOWN_COUNTER = "safety_hub_unknown_enterprise_messages_total"
HYPOTHESIS_EXAMPLES = 30


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoProcess]) -> MosquittoProcess:
    """A private Mosquitto with the shipped config's size limits."""
    return mosquitto_factory(extra_config=shipped_size_limits())


def start_hub(data_dir: Path, broker_url: str | None, **extra: str) -> HubProcess:
    env = {"SAFETY_HUB_SPOOL_SYNC": "normal", **extra}
    if broker_url is not None:
        env["SAFETY_HUB_MQTT_URL"] = broker_url
    hub = HubProcess(data_dir, env)
    hub.start()
    return hub


class Clients:
    """The hub plus the test's publisher, alarm watcher and rejection-report collector."""

    def __init__(self, hub: HubProcess, port: int) -> None:
        self.hub = hub
        self.pub = Publisher(port)
        self.watcher = AlarmWatcher(port)
        self.reports = TopicCollector(port, REJECTED)
        wait_ingesting(hub, self.pub)

    def close(self) -> None:
        for client in (self.pub, self.watcher, self.reports):
            client.close()
        self.hub.stop()


def check_report_bounded(raw: bytes) -> dict[str, Any]:
    """A rejection report obeys the contract's bounds; returns it decoded."""
    assert len(raw) < REPORT_BOUND, f"a rejection report of {len(raw)} bytes"
    report: dict[str, Any] = json.loads(raw)
    rejected = report["rejected"]
    assert len(rejected) <= 100, f"a report listing {len(rejected)} rejections"
    assert report["rejected_count"] >= len(rejected)
    assert report["truncated"] is (report["rejected_count"] > len(rejected))
    for entry in rejected:
        for key in ("detail", "tag"):
            text = entry.get(key)
            assert text is None or len(text) <= ECHO_BOUND, f"a {len(text)}-char {key} echoed"
    return report


def test_poison_messages_never_blind_the_park(broker: MosquittoProcess, tmp_path: Path) -> None:
    """After each hand-picked or generated poison, a level-2 reading still alarms within 10 s;
    every poison is rejected, counted and reported; after kill -9 no poison comes back."""
    hub = start_hub(tmp_path / "hub", broker.url)
    clients = Clients(hub, broker.port)
    pub, watcher, reports = clients.pub, clients.watcher, clients.reports
    try:
        rejections_before = rejection_total(hub)
        reports_before = reports.count()
        sent: list[Poison] = []
        for index in range(HAND_PICKED_COUNT):
            tag = DETECTORS[index % len(DETECTORS)]
            poison = hand_picked_poisons(tag, now_ms())[index]
            pub.publish(TELEMETRY, poison.payload)
            sent.append(poison)
            raise_level2(pub, watcher, hub, tag, f"poison {poison.name!r}")
            back_to_normal(pub, watcher, hub, tag)
        for index, payload in enumerate(hypothesis_poisons(HYPOTHESIS_EXAMPLES)):
            tag = DETECTORS[(HAND_PICKED_COUNT + index) % len(DETECTORS)]
            pub.publish(TELEMETRY, payload)
            sent.append(Poison(f"hypothesis #{index}", payload, True))
            raise_level2(pub, watcher, hub, tag, f"hypothesis poison #{index}: {payload[:200]!r}")
            back_to_normal(pub, watcher, hub, tag)

        must_reject = sum(1 for p in sent if p.rejected)
        may_reject = sum(1 for p in sent if p.rejected is not False)
        wait_for(
            lambda: reports.count() - reports_before >= must_reject,
            30,
            f"{must_reject} rejection reports (got {reports.count() - reports_before})",
        )
        got = reports.payloads(reports_before)
        assert len(got) <= may_reject, f"{len(got)} reports for {may_reject} rejectable poisons"
        decoded = [check_report_bounded(raw) for raw in got]
        assert any(r["rejected_count"] == 50_000 and r["truncated"] for r in decoded), (
            "no truncated report counting the 50,000 tiny readings"
        )
        assert rejection_total(hub) - rejections_before >= must_reject
        assert hub.get("/readyz").status_code == 200

        hub.kill9()
        hub.start()
        wait_ingesting(hub, pub)
        assert_alarm_still_fires(pub, watcher, hub, DETECTORS[0], "kill -9 and a restart")
        assert hub.get("/readyz").status_code == 200
    finally:
        clients.close()


def test_a_reading_295_s_ahead_does_not_make_current_readings_late(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """One reading stamped 295 s ahead (inside the 300 s limit): a current reading of the same
    detector at 8x its level-2 setpoint still raises level 2 within 10 s."""
    hub = start_hub(tmp_path / "hub", broker.url)
    clients = Clients(hub, broker.port)
    try:
        tag = DETECTORS[3]
        accepted = hub.metric("safety_hub_readings_accepted_total")
        clients.pub.publish(TELEMETRY, reading(tag, NORMAL, now_ms() + 295_000))
        wait_for(
            lambda: hub.metric("safety_hub_readings_accepted_total") > accepted,
            10,
            "the reading 295 s ahead to be accepted",
        )
        raise_level2(clients.pub, clients.watcher, hub, tag, "a reading of it 295 s ahead")
        back_to_normal(clients.pub, clients.watcher, hub, tag)
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[4], "a reading 295 s ahead"
        )
    finally:
        clients.close()


def test_100k_unknown_enterprises_leave_memory_and_metrics_flat(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """100,000 unregistered enterprises sending telemetry and status: /metrics and the hub's
    memory stay flat, unknown identities share one label, and alarms still fire."""
    hub = start_hub(tmp_path / "hub", broker.url)
    clients = Clients(hub, broker.port)
    pub = clients.pub
    telemetry = b'{"readings":[{"tag":"GT-1","v":1.0}]}'
    status = b'{"state":"online"}'

    def flood(prefix: str, count: int) -> None:
        def messages() -> Iterator[tuple[str, bytes]]:
            for i in range(count):
                yield f"hazard/v1/{prefix}{i}/telemetry", telemetry
                yield f"hazard/v1/{prefix}{i}/status", status

        flood_qos1(broker.port, messages())

    def unknown_seen(text: str) -> float:
        return metric_sum(text, UNKNOWN_COUNTER)

    def drain(expected: int, marker: str, timeout: float) -> str:
        """Wait until the hub counted ``expected`` unknown-enterprise messages; returns the last
        /metrics text. A hub without the counter is waited for by a level-2 reading of
        ``marker`` published after the flood (it alarms once the backlog before it is
        processed), so that its figures can still be printed."""
        since = clients.watcher.mark()
        pub.publish(TELEMETRY, reading(marker, HIGH, now_ms()))
        deadline = time.monotonic() + timeout
        while True:
            text = hub.metrics_text()
            if unknown_seen(text) >= expected or time.monotonic() > deadline:
                break
            if UNKNOWN_COUNTER not in text and clients.watcher.matching(since, "raise", marker):
                break
            time.sleep(0.5)
        return text

    try:
        # Warm up with a few unknown identities, so the shared labels exist before measuring.
        warmup, flood_size = 200, 100_000
        flood("w", warmup)
        drain(2 * warmup, DETECTORS[1], 60)
        back_to_normal(pub, clients.watcher, hub, DETECTORS[1])
        metrics_before = len(hub.metrics_text().encode())
        rss_before = hub.rss_bytes()
        started = time.monotonic()
        flood("u", flood_size)
        published_s = time.monotonic() - started
        expected = 2 * (warmup + flood_size)
        text = drain(expected, DETECTORS[2], 150)
        processed_s = time.monotonic() - started
        metrics_after = len(text.encode())
        rss_after = hub.rss_bytes()
        figures = (
            f"{flood_size:,} unknown enterprises x (telemetry + status): published in "
            f"{published_s:.1f} s, {UNKNOWN_COUNTER} {unknown_seen(text):,.0f} of {expected:,} "
            f"after {processed_s:.1f} s; /metrics {metrics_before:,} -> {metrics_after:,} bytes "
            f"({metrics_after - metrics_before:+,}); RSS {rss_before / MiB:.1f} -> "
            f"{rss_after / MiB:.1f} MiB ({(rss_after - rss_before) / MiB:+.1f})"
        )
        print(figures)
        assert unknown_seen(text) >= expected, f"not all flood messages counted: {figures}"
        assert metrics_after - metrics_before < 4096, figures
        assert rss_after - rss_before < 64 * MiB, figures
        assert re.search(r'enterprise="[uw]\d+"', text) is None, "an unknown enterprise's label"
        assert 'enterprise="_unknown"' in text
        gateways = hub.get("/api/v1/system").json()["gateways"]
        assert not [g for g in gateways if re.fullmatch(r"[uw]\d+", g["enterprise"])]
        back_to_normal(pub, clients.watcher, hub, DETECTORS[2])
        assert_alarm_still_fires(pub, clients.watcher, hub, DETECTORS[0], "the identity flood")
    finally:
        clients.close()


def big_file(tmp_path: Path, size: int) -> Path:
    """A telemetry-looking payload of ``size`` bytes (a valid start, then padding)."""
    path = tmp_path / f"payload-{size}.json"
    head = b'{"readings":[{"tag":"GT-1101","v":0.0}],"pad":"'
    path.write_bytes(head + b"x" * (size - len(head) - 2) + b'"}')
    return path


def assert_refused(port: int, tmp_path: Path) -> None:
    """The broker refuses payloads over the hub's limit to their sender: just over it with a
    failure reason code in the PUBACK (message_size_limit); 4 MiB never with a success (a
    broker that also sets max_packet_size announces it, and the client does not even send)."""
    just_over = mosquitto_pub_file(port, TELEMETRY, big_file(tmp_path, PAYLOAD_LIMIT + 1024))
    reason = just_over.puback_reason
    assert reason is not None and reason >= 0x80, just_over.output
    far_over = mosquitto_pub_file(port, TELEMETRY, big_file(tmp_path, 4 * MiB))
    assert far_over.puback_reason != 0, far_over.output


def test_payload_over_the_limit_is_refused_to_the_sender(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """With the shipped broker limits, payloads over 1 MiB (up to 4 MiB) are refused to their
    publisher, never reach the hub (its memory does not jump), and alarms still fire."""
    hub = start_hub(tmp_path / "hub", broker.url)
    clients = Clients(hub, broker.port)
    try:
        too_large = 'safety_hub_messages_rejected_total{enterprise="e01-chloralkali",reason="payload_too_large"}'
        assert f"message_size_limit {PAYLOAD_LIMIT}" in shipped_size_limits().splitlines()
        hub.reset_peak_rss()
        peak_before = hub.peak_rss_bytes()
        assert_refused(broker.port, tmp_path)
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[0], "refused payloads over the limit"
        )
        assert hub.metric(too_large) == 0, "the hub received the payload the broker refused"
        assert hub.peak_rss_bytes() - peak_before < 16 * MiB
    finally:
        clients.close()


def test_hub_announces_its_maximum_packet_size(
    mosquitto_factory: Callable[..., MosquittoProcess], tmp_path: Path
) -> None:
    """Against a broker without a size limit (not ours to configure), the hub's MQTT 5 Maximum
    Packet Size keeps a 32 MiB message away from it; alarms still fire."""
    open_broker = mosquitto_factory()  # no message_size_limit: the hub must protect itself
    hub = start_hub(tmp_path / "hub", open_broker.url)
    clients = Clients(hub, open_broker.port)
    try:
        too_large = 'safety_hub_messages_rejected_total{enterprise="e01-chloralkali",reason="payload_too_large"}'
        hub.reset_peak_rss()
        peak_before = hub.peak_rss_bytes()
        sent = mosquitto_pub_file(open_broker.port, TELEMETRY, big_file(tmp_path, 32 * MiB))
        assert sent.puback_reason == 0, sent.output  # this broker takes it
        # Published after the big one on the same topic: once it alarms, the big one had its turn.
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[0], "a 32 MiB message to an open broker"
        )
        peak_growth = hub.peak_rss_bytes() - peak_before
        assert hub.metric(too_large) == 0, (
            f"the hub received a 32 MiB packet (peak RSS {peak_growth / MiB:+.1f} MiB)"
        )
        assert peak_growth < 16 * MiB
        assert "Dropping too large outgoing PUBLISH for " + HUB_CLIENT_ID in (
            open_broker.log_path.read_text(errors="replace")
        )
    finally:
        clients.close()


def test_embedded_broker_refuses_a_payload_over_the_limit(tmp_path: Path) -> None:
    """Local mode: the embedded Mosquitto refuses payloads over the hub's limit to their sender;
    alarms still fire through it."""
    hub = start_hub(tmp_path / "hub", None, SAFETY_HUB_EMBEDDED_MQTT_PORT="0")
    clients: Clients | None = None
    try:
        urls = [
            json.loads(line)["url"]
            for line in hub.log_lines()
            if line.startswith("{") and "embedded broker started" in line
        ]
        assert urls, f"no 'embedded broker started' line in the log\n{hub.log_tail()}"
        port = int(urls[-1].rsplit(":", 1)[1])
        clients = Clients(hub, port)
        assert_refused(port, tmp_path)
        assert_alarm_still_fires(
            clients.pub,
            clients.watcher,
            hub,
            DETECTORS[0],
            "a 4 MiB payload to the embedded broker",
        )
    finally:
        if clients is not None:
            clients.close()
        hub.stop()


def test_a_message_of_46000_unknown_tags_gets_a_bounded_report(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """A 1 MiB message of ~46,000 unknown tags: a report under 64 KiB that counts them all and
    says it is truncated, at most a couple of log lines, and alarms still fire."""
    hub = start_hub(tmp_path / "hub", broker.url)
    clients = Clients(hub, broker.port)
    try:
        items = [b'{"tag":"X%04x","v":1}' % i for i in range(46_000)]
        payload = b'{"readings":[' + b",".join(items) + b"]}"
        assert len(payload) <= PAYLOAD_LIMIT
        rejected_before = hub.metric("safety_hub_readings_rejected_total")
        log_start = hub.log_line_count()
        reports_before = clients.reports.count()
        clients.pub.publish(TELEMETRY, payload)
        wait_for(
            lambda: clients.reports.count() > reports_before,
            10,
            f"the rejection report (the broker saw the hub subscribe "
            f"{subscriptions_logged(broker.log_path, HUB_CLIENT_ID, TELEMETRY_FILTER)} times)",
        )
        raw = clients.reports.payloads(reports_before)[0]
        report = check_report_bounded(raw)
        assert report["rejected_count"] == 46_000 and report["truncated"] is True
        assert report["total"] == 46_000 and report["accepted"] == 0
        assert hub.metric("safety_hub_readings_rejected_total") - rejected_before == 46_000
        lines = [
            line
            for line in hub.log_lines(log_start)
            if "reject" in line.lower() or "unknown_tag" in line
        ]
        assert len(lines) <= 2, f"{len(lines)} log lines for one message:\n" + "\n".join(
            line[:300] for line in lines[:5]
        )
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[0], "a message of 46,000 unknown tags"
        )
    finally:
        clients.close()


def test_retained_telemetry_raises_once_and_not_again_after_a_restart(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """Retained level-2 telemetry without ts raises once; after it returns to normal and is
    acknowledged and reset, a hub restart does not raise it again."""
    hub = start_hub(tmp_path / "hub", broker.url)
    clients = Clients(hub, broker.port)
    pub, watcher = clients.pub, clients.watcher
    tag = DETECTORS[6]
    try:
        since = watcher.mark()
        pub.publish(TELEMETRY, reading(tag, HIGH), retain=True)  # no ts: the hub's receive time
        wait_for(lambda: bool(watcher.matching(since, "raise", tag)), 10, f"{tag} raised")
        back_to_normal(pub, watcher, hub, tag)
        alarms = hub.get(f"/api/v1/alarms?enterprise={ENT}&include_normal=true").json()
        mine = [a for a in alarms if a["tag"] == tag and a["alert"].startswith("ToxicGasLevel")]
        assert {a["alert"] for a in mine} == {"ToxicGasLevel1", LEVEL2}
        for alarm in mine:
            hub.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", {}).raise_for_status()
            reset = hub.post(f"/api/v1/alarms/{alarm['id']}/reset", {})
            reset.raise_for_status()
            assert reset.json()["state"] == "normal"
        assert len(watcher.matching(since, "raise", tag)) == 1, "the live copy raised twice"

        subscribed = subscriptions_logged(broker.log_path, HUB_CLIENT_ID, TELEMETRY_FILTER)
        assert subscribed >= 1, "the broker log shows no telemetry subscription of the hub"
        after_restart = watcher.mark()
        hub.kill9()
        hub.start()
        wait_for(
            lambda: (
                subscriptions_logged(broker.log_path, HUB_CLIENT_ID, TELEMETRY_FILTER) > subscribed
            ),
            20,
            "the restarted hub to subscribe again",
        )
        # Anything the subscription replayed reaches the hub before this reading.
        assert_alarm_still_fires(pub, watcher, hub, DETECTORS[9], "a hub restart")
        for alert in ("ToxicGasLevel1", LEVEL2):
            assert not watcher.matching(after_restart, "raise", tag, alert), (
                f"retained telemetry raised {alert} of {tag} again after the restart"
            )
        level2 = next(a for a in mine if a["alert"] == LEVEL2)
        assert hub.get(f"/api/v1/alarms/{level2['id']}").json()["state"] == "normal"
        raises = [
            e for e in hub.journal() if e["alarm_id"] == level2["id"] and e["action"] == "raise"
        ]
        assert len(raises) == 1
    finally:
        clients.close()


def test_a_flood_of_bad_messages_logs_a_bounded_number_of_lines(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """5,000 undecodable messages: all rejected and counted, a bounded number of log lines per
    10 s plus a "suppressed" summary, and alarms still fire."""
    hub = start_hub(tmp_path / "hub", broker.url)
    clients = Clients(hub, broker.port)
    pub = clients.pub
    malformed = (
        'safety_hub_messages_rejected_total{enterprise="e01-chloralkali",reason="malformed_json"}'
    )
    try:
        log_start = hub.log_line_count()
        started = time.monotonic()
        for _ in range(5000):
            pub.send(TELEMETRY, b"not json")
        pub.wait_all_acked(60)
        wait_for(lambda: hub.metric(malformed) >= 5000, 120, "5,000 malformed_json rejections")
        elapsed = time.monotonic() - started
        flood_lines = hub.log_lines(log_start)
        # The contract bounds lines per 10 s window; 50 per window is a generous reading of it.
        windows = math.ceil(elapsed / 10) + 1
        assert len(flood_lines) <= 50 * windows, (
            f"{len(flood_lines)} log lines for 5,000 bad messages in {elapsed:.1f} s:\n"
            + "\n".join(line[:200] for line in flood_lines[:5])
        )

        def summary_logged() -> bool:
            pub.publish(TELEMETRY, b"still not json")  # for a limiter that reports lazily
            return any("suppress" in line.lower() for line in hub.log_lines(log_start))

        wait_for(summary_logged, 25, "a 'suppressed N' log line", interval=1)
        assert_alarm_still_fires(pub, clients.watcher, hub, DETECTORS[0], "5,000 bad messages")
    finally:
        clients.close()
