"""Composition root: builds the hub from settings and wires the connectors to the core.

This module and ``runtime/state.py`` (the state stores) are the modules of ``safety_hub`` that
import ``connectors``; the domain modules (registry, ingest, rules, alarms, ...) only know the
Protocols in :mod:`safety_hub.ports` and the store protocols of their own packages.
Only the wiring imports this module: the CLI, the API app and ``runtime/`` (replay).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import cast

from safety_hub.alarms import Priority
from safety_hub.clock import Clock, WallClock
from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.sink import SinkWorker
from safety_hub.ingest.spool import Spool
from safety_hub.ingest.telemetry import (
    CRITICAL_SUBSCRIPTION,
    STATUS_SUBSCRIPTION,
    TELEMETRY_SUBSCRIPTION,
    DecodeLimits,
    parse_status,
)
from safety_hub.ingest.triage import Triage
from safety_hub.ingest.worker import IngestWorker, build_prefixes
from safety_hub.metrics import EngineCounters, HubMetrics
from safety_hub.people import PeopleDirectory, default_people_path, load_people
from safety_hub.ports import MessageSource, NotificationSender
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.registry.checks import GAS_KINDS, SIS_KINDS
from safety_hub.rules import RulePack, default_rules_path, load_rules
from safety_hub.runtime.alarm_runtime import AlarmRuntime
from safety_hub.runtime.broker_probe import BrokerProbe
from safety_hub.runtime.ha import HaNode, build_node
from safety_hub.runtime.hub_stats import HubStatsWriter
from safety_hub.runtime.interpreter import child_setup
from safety_hub.runtime.notifications import NotificationRuntime
from safety_hub.runtime.notify_wiring import build_notifications
from safety_hub.runtime.outbox import OutboxPublisher
from safety_hub.runtime.province import build_province
from safety_hub.runtime.sink_process import SinkProcess
from safety_hub.runtime.state import StateFence, build_state
from safety_hub.runtime.storage import Storage as Storage  # re-exported: tests, replay
from safety_hub.runtime.storage import build_storage as build_storage
from safety_hub.runtime.uplink import UplinkCollector, UplinkRuntime
from safety_hub.settings import Settings
from safety_hub.statefile import DiskReserve, free_bytes
from safety_hub.system_alarms import SystemAlarms
from safety_hub.uplink import Destination, UplinkTransport, load_uplink

log = logging.getLogger("safety_hub.hub")

START_MIN_FREE_BYTES = 4 * 1024**2
"""below this much free space at start the disk reserve is given up before stores open"""

CRITICAL_KINDS = GAS_KINDS | SIS_KINDS
"""tag kinds whose readings are safety-critical: evaluated ahead of bulk process data"""

STATS_INTERVAL_S = 10.0
"""how often the hub writes its own statistics (docs/storage.md, "Hub statistics")"""


UplinkParts = list[tuple[Destination, UplinkTransport]]


def build_uplink_transports(settings: Settings, plant: Plant) -> UplinkParts | None:
    """The uplink's destinations and transports (docs/uplink.md) when ``SAFETY_HUB_UPLINK``
    names its file; made before any store opens, so that a bad file or a missing secret stops
    the start with nothing left open."""
    if settings.uplink is None:
        return None
    from connectors.uplink import build_transport

    config = load_uplink(settings.uplink, plant)
    return [(d, build_transport(d, plant.park_code)) for d in config.destinations]


def build_uplink(hub: Hub, parts: UplinkParts | None) -> UplinkRuntime | None:
    if parts is None:
        return None
    runtime = UplinkRuntime(
        parts,
        plant=hub.plant,
        live=hub.live,
        journal=hub.alarms.journal,
        alarms=hub.alarms.service,
        clock=hub.clock,
        system_alarms=hub.system_alarms,
        queue=hub.state.uplink_queue(),
    )
    hub.metrics.registry.register(UplinkCollector(runtime))
    return runtime


def build_sender() -> NotificationSender:
    """The channels through apprise (connectors/notify/)."""
    from connectors.notify import AppriseSender

    return AppriseSender()


class Hub:
    """The running hub: ingest, spool, sink, live table, metrics. ``prioritise=False`` has it
    evaluate gas-detector and SIS telemetry in arrival order like the rest (bench/priority.py
    compares the two)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        plant: Plant | None = None,
        storage: Storage | None = None,
        source: MessageSource | None = None,
        rules: RulePack | None = None,
        durable_engine: bool = True,
        people: PeopleDirectory | None = None,
        notification_sender: NotificationSender | None = None,
        fence: StateFence | None = None,
        prioritise: bool = True,
    ) -> None:
        self.settings = settings
        self._prioritise = prioritise
        self.clock: Clock = clock or WallClock()
        self.plant = plant or load_plant(settings.plant or default_plant_path())
        self.people = people if people is not None else self._load_people()
        uplink_parts = build_uplink_transports(settings, self.plant)
        self.metrics = HubMetrics()
        self.system_alarms = SystemAlarms(self.clock, self.metrics)
        self.live = LiveTable()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Made before any store is opened: on a disk that is already full its space is what
        # lets the stores open and the alarm journal commit (docs/storage.md, "Full disk").
        self.disk_reserve = self._open_disk_reserve()
        self.ha: HaNode | None = None  # set at the end of __init__; the fence reads it
        self.state = build_state(settings, fence if fence is not None else self.fence)
        self.spool = self.state.spool
        self.storage = storage or build_storage(settings)
        self._storage_from_settings = storage is None  # the sink process builds the same
        self.decoder = TelemetryDecoder(
            self.plant.tags,
            set(self.plant.enterprises),
            self.clock.now_ms,
            DecodeLimits(
                max_payload_bytes=settings.max_payload_bytes,
                max_future_ms=settings.max_future_s * 1000,
                max_age_ms=settings.horizon_s * 1000,
            ),
        )
        self.ingest = self._build_ingest()
        self.sink_worker = self._build_sink_worker()
        self.rules = rules or load_rules(settings.rules or default_rules_path(), self.plant)
        self.outbox = self.state.outbox
        self.alarms = self._build_alarms(durable_engine)
        # Chunks of a batch are evaluated as they come; the snapshot is saved once per batch.
        self.ingest.add_listener(
            functools.partial(self.alarms.on_readings, save=False), self.alarms.save_snapshot
        )
        self.notifications = self._build_notifications(notification_sender)
        self.metrics.registry.register(EngineCounters(lambda: dict(self.alarms.engine.counters)))
        self.uplink = build_uplink(self, uplink_parts)
        self.province = build_province(settings, self.clock, self.metrics.registry, self.spool)
        self.stats = HubStatsWriter(
            plant=self.plant,
            rules=self.rules,
            metrics=self.metrics,
            spool=self.spool,
            live=self.live,
            alarms=self.alarms.service,
            clock=self.clock,
            extra=self.province.stats_lines if self.province is not None else None,
        )
        self._outbox_publisher: OutboxPublisher | None = None
        self._source = source
        self._source_used = False  # started once: a new active term builds a fresh one
        self._embedded_broker: object | None = None
        self.broker_probe: BrokerProbe | None = None
        self._probe_started = False
        self.mqtt_url: str | None = None
        self.started = False
        self._stopping = False
        # A redundant pair (SAFETY_HUB_HA=on): the hub acts only while it holds the lease.
        if settings.ha:
            self.ha = build_node(
                settings, self.metrics.registry, activate=self._act, deactivate=self._stop_acting
            )

    def _build_sink_worker(self) -> SinkWorker | SinkProcess:
        s = self.settings
        if (
            s.sink_process
            and self._storage_from_settings
            and not s.ha
            and isinstance(self.spool, Spool)
            and s.influx_endpoint() is not None
        ):
            return SinkProcess(
                settings=s,
                spool=self.spool,
                metrics=self.metrics,
                system_alarms=self.system_alarms,
                clock=self.clock,
            )
        return SinkWorker(
            spool=self.spool,
            sink=self.storage.sink,
            metrics=self.metrics,
            system_alarms=self.system_alarms,
            clock=self.clock,
            batch_readings=self.settings.sink_batch_readings,
        )

    @property
    def fence(self) -> Callable[[], int | None] | None:
        """The fencing-token callable for the shared-state stores, None without HA. Usable in
        ``__init__`` before the role machine exists: it reads the token at every call (None
        while this node does not act)."""
        return self.fence_token if self.settings.ha else None

    def fence_token(self) -> int | None:
        """This node's fencing token while it holds the lease. A node of a pair that does not
        hold it gets 0, a token no term ever has (they start at 1), so every shared-state write
        it tries is refused (``FencedError``) instead of going through unfenced."""
        token = None if self.ha is None else self.ha.token
        return token if token is not None else 0

    def _build_notifications(self, sender: NotificationSender | None) -> NotificationRuntime | None:
        """Notifications (docs/notifications.md): policies, outbox, dispatcher; None when off.
        The bundled sample people's contact points are examples: without SAFETY_HUB_PEOPLE the
        hub sends nothing through the channels (the demo and replay bring their own sender)."""
        if sender is None and self.settings.people is None and self.settings.notify:
            log.warning(
                "notifications off: the bundled sample people's contact points are examples; "
                "set SAFETY_HUB_PEOPLE to a people file of your own"
            )
            return None
        return build_notifications(
            self.settings,
            clock=self.clock,
            alarms=self.alarms,
            rules=self.rules,
            plant=self.plant,
            metrics=self.metrics,
            system_alarms=self.system_alarms,
            # an empty directory (another plant without SAFETY_HUB_PEOPLE): nobody to notify
            people=self.people if len(self.people) else None,
            sender=sender or build_sender(),
            check_target=self.people.check_target,
            outbox=self.state.notify_outbox,
            recover=not self.settings.ha,  # a pair's node catches up when it takes the lease
        )

    def _load_people(self) -> PeopleDirectory:
        """``SAFETY_HUB_PEOPLE`` checked against the plant (``PeopleError`` stops the start);
        unset: the sample people with the sample park, nobody with another plant."""
        codes = set(self.plant.enterprises)
        if self.settings.people is not None:
            return load_people(self.settings.people, codes)
        if self.plant.path.resolve() == default_plant_path().resolve():
            # the bundled sample, checked against the whole sample park by its tests; a
            # scenario may run a part of the park, so its scopes are not checked here
            return load_people(default_people_path())
        log.warning(
            "no people file (SAFETY_HUB_PEOPLE) for this plant: nobody is notified",
            extra={"plant": str(self.plant.path)},
        )
        return PeopleDirectory(self.plant.path.with_name("<no people file>"), {}, {})

    def _open_disk_reserve(self) -> DiskReserve:
        settings = self.settings
        reserve = DiskReserve(
            settings.data_dir, settings.disk_reserve_bytes, on_change=self._on_reserve_change
        )
        if reserve.released and settings.disk_reserve_bytes:
            self._on_reserve_change(False)
        if reserve.free_bytes() < START_MIN_FREE_BYTES and reserve.release():
            log.warning(
                "data directory nearly full at start: released the disk reserve",
                extra={"data_dir": str(settings.data_dir)},
            )
        return reserve

    def _build_ingest(self) -> IngestWorker:
        # Gas detectors and SIS tags: their messages are evaluated ahead of process data.
        self.triage = Triage(
            (key for key, tag in self.plant.tags.items() if tag.kind in CRITICAL_KINDS),
            self.settings.max_payload_bytes,
        )
        return IngestWorker(
            decoder=self.decoder,
            prefixes=build_prefixes(self.plant.tags),
            spool=self.spool,
            live=self.live,
            metrics=self.metrics,
            system_alarms=self.system_alarms,
            clock=self.clock,
            on_status=self._on_status,
            enterprises=self.plant.enterprises,
            disk_reserve=self.disk_reserve,
            urgent=self.triage.urgent if self._prioritise else None,
            non_critical=self.triage.non_critical,
        )

    def _build_alarms(self, durable_engine: bool) -> AlarmRuntime:
        return AlarmRuntime(
            plant=self.plant,
            pack=self.rules,
            data_dir=self.state.state_dir,
            clock=self.clock,
            spool=self.spool,
            outbox=self.outbox,
            durable_engine=durable_engine,
            max_lead_ms=round(self.settings.max_lead_s * 1000),
            disk_reserve=self.disk_reserve,
            on_write_problem=self._on_alarm_write_problem,
            disposal_limits={
                Priority(p): ms for p, ms in self.settings.disposal_limits_ms().items()
            },
            journal=self.state.journal,
            snapshots=self.state.snapshots,
            # A node of a pair writes nothing before it holds the lease; it recovers then.
            recover=not self.settings.ha,
        )

    @property
    def source(self) -> MessageSource | None:
        return self._source

    def _on_status(self, enterprise: str, payload: bytes, received_ms: int) -> None:
        online, detail = parse_status(payload)
        self.live.set_gateway(enterprise, online, received_ms, detail)
        self.metrics.gateway_online.labels(enterprise).set(1 if online else 0)
        self.alarms.on_gateway_status(enterprise, online, received_ms)
        log.info(
            "gateway status", extra={"enterprise": enterprise, "online": online, "detail": detail}
        )

    def _on_reserve_change(self, held: bool) -> None:
        free = free_bytes(self.settings.data_dir)
        self.system_alarms.set(
            "disk_full",
            not held,
            f"data directory {self.settings.data_dir} nearly full ({free} bytes free): the disk "
            "reserve is given up so that alarms can still be journaled"
            if not held
            else f"data directory has room again ({free} bytes free); disk reserve restored",
        )

    def _on_alarm_write_problem(self, problem: str | None) -> None:
        self.system_alarms.set(
            "alarm_write_error",
            problem is not None,
            problem or "alarm journal, outbox and snapshot are written again",
        )

    def problems(self) -> list[str]:
        """Why the hub is not making progress (for ``/readyz``); empty when it is."""
        out = self.ingest.problems()
        state_problem = self.state.problem()
        if state_problem is not None:
            out.append(state_problem)
        if self.ha is not None and not self.ha.active:
            status = self.ha.status()
            active = (
                f"node {status.active_node} is active ({status.active_api_url or 'no API URL'})"
                if status.active_node
                else "no node holds the lease"
            )
            out.insert(0, f"standby node {self.ha.node_id}: {active}")
        alarm_problem = self.alarms.write_problem
        if alarm_problem is not None:
            out.append(f"alarm state not written (alarms are still evaluated): {alarm_problem}")
        return out

    def _on_connection(self, connected: bool, detail: str) -> None:
        self.metrics.mqtt_connected.set(1 if connected else 0)
        if self._stopping or (self.ha is not None and not self.ha.active):
            return  # our own disconnect at shutdown or at a step-down is no alarm
        if connected:
            self.metrics.mqtt_reconnects.inc()
        self.system_alarms.set(
            "broker_disconnected",
            not connected,
            f"MQTT broker {self.mqtt_url}: {detail}",
        )

    def _build_source(self) -> MessageSource:
        from connectors.mqtt import (
            EMBEDDED_CATCH_ALL_USER,
            EmbeddedBroker,
            MqttConfig,
            MqttSessions,
            Retiring,
            RoundTripProbe,
            critical_lanes,
            enterprise_lanes,
            of_enterprises,
            packet_limit,
            sessions_for,
        )

        target = self.settings.mqtt_target()
        catch_all_user = self.settings.mqtt_catch_all_user
        if target is None:
            catch_all_user = catch_all_user or EMBEDDED_CATCH_ALL_USER  # its ACL fences it
            broker = self._embedded_broker = EmbeddedBroker(
                self.settings.data_dir / "broker",
                self.settings.embedded_mqtt_port,
                max_payload_bytes=self.settings.max_payload_bytes,
                fence=(catch_all_user, self.plant.enterprises),
            ).start()
            host, port, user, password, tls = broker.host, broker.port, None, None, False
        else:
            host, port = target.host, target.port
            user, password, tls = target.username, target.password, target.tls
        self.mqtt_url = f"mqtt{'s' if tls else ''}://{host}:{port}"
        base = MqttConfig(
            host=host,
            port=port,
            client_id=self.settings.mqtt_client_id,
            username=user,
            password=password,
            tls=tls,
            session_expiry_s=self.settings.mqtt_session_expiry_s,
            receive_maximum=self.settings.mqtt_receive_maximum,
            keepalive_s=self.settings.mqtt_keepalive_s,
            max_packet_bytes=packet_limit(self.settings.max_payload_bytes),
        )
        # One persistent session per enterprise (a flood backs up in the flooder's own broker
        # queue) and one per enterprise's critical topic, a catch-all for unregistered
        # enterprises, a publisher (connectors/mqtt/sessions.py); the single session of earlier
        # versions is emptied and ended.
        codes, most = frozenset(self.plant.enterprises), self.settings.mqtt_max_sessions
        lanes = [*enterprise_lanes(codes, most), *critical_lanes(codes, most)]
        everything = (TELEMETRY_SUBSCRIPTION, STATUS_SUBSCRIPTION)
        no_retained = (TELEMETRY_SUBSCRIPTION, CRITICAL_SUBSCRIPTION)
        sessions, publisher = sessions_for(
            base,
            lanes,
            ((*everything, CRITICAL_SUBSCRIPTION), no_retained, of_enterprises(codes)),
            catch_all_user,
        )
        source = MqttSessions(
            sessions,
            publisher,
            retiring=Retiring(replace(base, subscriptions=()), everything),
            on_connection=self._on_connection,
            in_processes=self.settings.mqtt_process,
            child_setup=self._child_setup(),
            priority=self.triage.urgent if self._prioritise else None,
        )
        self.metrics.mqtt_in_flight.set_function(source.in_flight)
        self.metrics.mqtt_in_flight_limit.set(source.in_flight_limit())
        self.metrics.mqtt_catch_all_copies.set_function(source.catch_all_copies)
        if self.broker_probe is None:  # one probe for the hub's life, whichever term's source
            probe = RoundTripProbe(base)
            self.broker_probe = BrokerProbe(
                probe.measure,
                lambda: self._source is not None and self._source.connected,
                self.metrics,
                self.clock,
                self.mqtt_url or "",
            )
        return source

    def _child_setup(self) -> Callable[[str], None]:
        """What a child process of this hub runs first, given its name (runtime/interpreter.py)."""
        s = self.settings
        return functools.partial(
            child_setup, level=s.log_level, fmt=s.log_format, secrets=s.secret_values()
        )

    def start(self) -> None:
        log.info(
            "hub starting",
            extra={
                "plant": self.plant.park_code,
                "enterprises": len(self.plant.enterprises),
                "tags": len(self.plant.tags),
                "storage": self.storage.description,
                "state": self.state.description,
                "spool_readings": self.spool.depth().readings,
            },
        )
        self.ingest.start()
        if self.ha is None:
            self.sink_worker.start()
            self._act()
        else:
            self.ha.start()  # calls _act once it holds the lease
        self.stats.start(STATS_INTERVAL_S)
        self.started = True

    def _act(self) -> None:
        """Start the parts that act on the world: the MQTT ingest sessions (and the publisher),
        the alarm outbox, the alarm timers, the notifications. At start, or when this node of a
        redundant pair takes the lease."""
        if self.ha is not None:
            # Only the active node empties the shared spool into InfluxDB, what the other node
            # spooled included.
            self.spool.recount()
            self.sink_worker.start()
        if self.ha is not None:
            # The other node wrote the shared state while this one stood by: read it again,
            # before the first reading comes in (a stale service would raise its alarms anew).
            self.alarms.take_over()
            if self.notifications is not None:
                self.notifications.catch_up(self.alarms.journal, self.alarms.service.get)
        if self._source is None or self._source_used:
            self._source = self._build_source()
        self._source_used = True
        self.ingest.attach(self._source)
        self._source.start(self.ingest.submit)
        self._outbox_publisher = OutboxPublisher(
            self.outbox,
            self._source.publish_confirmed,
            publish_many=getattr(self._source, "publish_confirmed_many", None),
            metrics=self.metrics,
            now_ms=self.clock.now_ms,
        )
        self._outbox_publisher.start()
        self.alarms.start()
        if self.notifications is not None:
            self.notifications.start()
        if self.uplink is not None:
            self.uplink.start()
        if self.province is not None:
            self.province.start(self.mqtt_url, self.settings.mqtt_target())
        if self.broker_probe is not None and not self._probe_started:
            self._probe_started = True  # measures on, standby or not, until the hub stops
            self.broker_probe.start(self.settings.mqtt_probe_interval_s)

    def _stop_acting(self, reason: str) -> None:
        """The node lost the lease: stop publishing, disconnect the ingest sessions without
        acknowledging (the broker keeps what is unacknowledged for the node that acts next),
        stop the alarm timers and the notifications. The stores stay open; the sink keeps
        writing what is already spooled."""
        # The connections first: the other node takes the same client ids over, and a session
        # of ours still up would take them back (and the publisher's wait for a PUBACK ends).
        if self._source is not None:
            self._source.stop()
        if self._outbox_publisher is not None:
            self._outbox_publisher.stop()
            self._outbox_publisher = None
        self.alarms.pause()
        self.sink_worker.stop(drain_timeout=0)  # the spool is shared: the active node drains it
        if self.notifications is not None:
            self.notifications.stop()
        if self.uplink is not None:
            self.uplink.stop()  # the active node sends, from the shared queue in a pair
        # The ingest sessions are the active node's now; the probe tells whether this node
        # reaches the broker (/api/v1/system ha.broker_reachable).
        self.system_alarms.set("broker_disconnected", False, f"standby: {reason}")
        log.warning("hub stopped acting", extra={"reason": reason})

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop taking messages, finish what was handed over, drain what the sink can, close."""
        self._stopping = True
        if self.broker_probe is not None:
            self.broker_probe.stop()
        if self.ha is not None:
            self.ha.stop()  # stops acting, then hands the lease over at once
        if self._outbox_publisher is not None:
            self._outbox_publisher.stop()
        if self._source is not None:
            self._source.stop()
        self.ingest.stop()
        self.stats.stop()
        if self.uplink is not None:
            self.uplink.stop()
        if self.notifications is not None:
            self.notifications.stop()
        self.alarms.stop()
        self.sink_worker.stop(drain_timeout)
        self.storage.sink.close()
        if self.storage.history is not cast(object, self.storage.sink):
            self.storage.history.close()
        self.spool.close()
        self.outbox.close()
        if self.uplink is not None:
            self.uplink.close()
        if self.province is not None:
            self.province.close()
        if self.notifications is not None:
            self.notifications.close()
        broker = self._embedded_broker
        if broker is not None:
            broker.stop()  # type: ignore[attr-defined]
        self.started = False
        log.info("hub stopped")
