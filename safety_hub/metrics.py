"""Prometheus metrics of one hub instance (own registry, so tests can run several hubs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_received = Counter(
            "safety_hub_mqtt_messages_received", "MQTT telemetry messages received", registry=r
        )
        self.readings_received = Counter(
            "safety_hub_readings_received",
            "Readings received (accepted + rejected)",
            ["enterprise"],
            registry=r,
        )
        self.readings_accepted = Counter(
            "safety_hub_readings_accepted",
            "Readings accepted into the spool",
            ["enterprise"],
            registry=r,
        )
        self.readings_rejected = Counter(
            "safety_hub_readings_rejected",
            "Readings (or whole messages) rejected, by reason",
            ["enterprise", "reason"],
            registry=r,
        )
        self.readings_skewed = Counter(
            "safety_hub_readings_skewed",
            "Readings accepted with a skewed timestamp (stamped more than "
            "SAFETY_HUB_MAX_FUTURE_S ahead of the hub's clock), stored at the receive time",
            ["enterprise"],
            registry=r,
        )
        self.messages_rejected = Counter(
            "safety_hub_messages_rejected",
            "Whole messages rejected before any reading could be read, by reason",
            ["enterprise", "reason"],
            registry=r,
        )
        self.critical_topic_messages = Counter(
            "safety_hub_critical_topic_messages",
            "Telemetry messages received on an enterprise's critical topic (contract v1.1: gas "
            "detectors and SIS, read on sessions of their own)",
            ["enterprise"],
            registry=r,
        )
        self.critical_topic_other_readings = Counter(
            "safety_hub_critical_topic_other_readings",
            "Readings accepted from an enterprise's critical topic whose tag is neither a gas "
            "detector nor SIS: they belong on its telemetry topic",
            ["enterprise"],
            registry=r,
        )
        self.unknown_enterprise_messages = Counter(
            "safety_hub_unknown_enterprise_messages",
            "Messages (telemetry or status) on topics of enterprises the plant registry does not "
            "know; their metrics share the enterprise label _unknown",
            registry=r,
        )
        self.qos0_dropped = Counter(
            "safety_hub_qos0_dropped",
            "QoS 0 messages the hub dropped, by enterprise and reason (intake_full: the "
            "enterprise's intake lane was full; spool_blocked: held too long while the spool "
            "could not write)",
            ["enterprise", "reason"],
            registry=r,
        )
        self.rejection_reports_suppressed = Counter(
            "safety_hub_rejection_reports_suppressed",
            "Rejection reports not published because the enterprise exceeded its report rate",
            ["enterprise"],
            registry=r,
        )
        self.log_lines_suppressed = Counter(
            "safety_hub_log_lines_suppressed",
            "Log lines held back by a rate limit, by kind",
            ["what"],
            registry=r,
        )
        self.ingest_queued = Gauge(
            "safety_hub_ingest_queued_messages",
            "Messages handed over by the transport and waiting for the ingest worker",
            registry=r,
        )
        self.ingest_held = Gauge(
            "safety_hub_ingest_held_messages",
            "Messages processed (alarms evaluated) but held unacknowledged because the spool "
            "cannot take them",
            registry=r,
        )
        self.rejection_reports_failed = Counter(
            "safety_hub_rejection_reports_failed",
            "Rejection reports that could not be published to the enterprise",
            registry=r,
        )
        self.spool_readings = Gauge(
            "safety_hub_spool_readings", "Readings waiting in the spool", registry=r
        )
        self.spool_batches = Gauge("safety_hub_spool_batches", "Batches in the spool", registry=r)
        self.spool_bytes = Gauge(
            "safety_hub_spool_bytes", "Bytes of line protocol spooled", registry=r
        )
        self.spool_age = Gauge(
            "safety_hub_spool_age_seconds", "Age of the oldest spooled batch", registry=r
        )
        self.spool_full = Gauge(
            "safety_hub_spool_full", "1 while the spool is full and ingest is held back", registry=r
        )
        self.dead_letters = Gauge(
            "safety_hub_spool_dead_letters", "Batches the database refused (4xx)", registry=r
        )
        self.sink_written = Counter(
            "safety_hub_sink_readings_written", "Readings the database accepted", registry=r
        )
        self.sink_errors = Counter(
            "safety_hub_sink_errors",
            "Failed writes, by kind (outage = retried, bad_data = dead-lettered, crash = the sink "
            "process died and was restarted)",
            ["kind"],
            registry=r,
        )
        self.sink_up = Gauge(
            "safety_hub_sink_up", "1 when the last write to the database succeeded", registry=r
        )
        self.write_latency = Histogram(
            "safety_hub_sink_write_seconds",
            "Time of one write request to the database",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.alarm_event_delay = Histogram(
            "safety_hub_alarm_event_delay_seconds",
            "From an alarm event's outbox commit (right after the rule engine's decision and "
            "the journal) to the broker's acknowledgement of it",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300),
            registry=r,
        )
        self.alarm_events_published = Counter(
            "safety_hub_alarm_events_published",
            "Alarm events the broker acknowledged (hazard/v1/<enterprise>/alarms)",
            registry=r,
        )
        self.alarm_outbox_events = Gauge(
            "safety_hub_alarm_outbox_events",
            "Alarm events committed and not yet acknowledged by the broker",
            registry=r,
        )
        self.alarm_outbox_age = Gauge(
            "safety_hub_alarm_outbox_age_seconds",
            "Age of the oldest alarm event waiting for the broker (0 when none waits)",
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "safety_hub_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.mqtt_in_flight = Gauge(
            "safety_hub_mqtt_in_flight_messages",
            "QoS 1 messages the hub has taken in and not acknowledged yet, over all sessions; "
            "at most safety_hub_mqtt_in_flight_limit (a broker that sends more waits)",
            registry=r,
        )
        self.mqtt_in_flight_limit = Gauge(
            "safety_hub_mqtt_in_flight_limit",
            "The sum of the Receive Maximum the hub sets on its persistent sessions",
            registry=r,
        )
        self.mqtt_round_trip = Gauge(
            "safety_hub_mqtt_round_trip_seconds",
            "Median of the latest broker round trips (publish to the hub's probe topic and "
            "its delivery back); NaN before the first",
            registry=r,
        )
        self.mqtt_round_trip.set(float("nan"))
        self.mqtt_nagle_suspected = Gauge(
            "safety_hub_mqtt_nagle_suspected",
            "1 when the broker round trip looks like Nagle's algorithm on the broker "
            "(set_tcp_nodelay true is missing)",
            registry=r,
        )
        self.mqtt_catch_all_copies = FunctionCounter(
            "safety_hub_mqtt_catch_all_copies",
            "Messages of registered enterprises that the catch-all session received and "
            "dropped (their own sessions take them): copies the broker sends when the "
            "catch-all's user is not fenced off their topics (docs/deploy.md); 0 when it is",
        )
        r.register(self.mqtt_catch_all_copies)
        self.mqtt_reconnects = Counter(
            "safety_hub_mqtt_connects", "Successful connections to the broker", registry=r
        )
        self.system_alarm = Gauge(
            "safety_hub_system_alarm",
            "1 while a system alarm is active",
            ["name"],
            registry=r,
        )
        self.gateway_online = Gauge(
            "safety_hub_gateway_online",
            "1 when the enterprise's gateway last reported online",
            ["enterprise"],
            registry=r,
        )


class EngineCounters(Collector):
    """The rule engine's own counters as ``safety_hub_engine_events_total{kind}``: readings
    evaluated, late, duplicate, stamped far ahead of the hub clock, bad quality, out of range,
    gateway statuses. Read at scrape time, so the engine's hot path does no metrics work."""

    def __init__(self, counters: Callable[[], Mapping[str, int]]) -> None:
        self._counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "safety_hub_engine_events",
            "Rule engine counters by kind (late and ahead readings name a gateway's clock)",
            labels=["kind"],
        )
        for kind, value in sorted(self._counters().items()):
            family.add_metric([kind], value)
        yield family

    def describe(self) -> Iterator[CounterMetricFamily]:
        return iter(())


class FunctionCounter(Collector):
    """A counter read from a function at scrape time (``set_function``; 0 before one is set),
    for counts kept where the hot path runs, e.g. in a child process."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self._read: Callable[[], float] = lambda: 0

    def set_function(self, read: Callable[[], float]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())

    def describe(self) -> Iterator[CounterMetricFamily]:
        return iter(())
