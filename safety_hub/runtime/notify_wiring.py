"""Builds the hub's notifications from the settings (called by the composition root, which
hands in the people directory and the sender it built from the connectors)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from safety_hub.clock import Clock
from safety_hub.metrics import HubMetrics
from safety_hub.notify.contacts import Directory
from safety_hub.notify.loader import Known, TargetCheck, default_policy_path, load_policies
from safety_hub.notify.planner import Planner
from safety_hub.ports import NotificationSender
from safety_hub.registry import Plant
from safety_hub.rules import RulePack
from safety_hub.runtime.alarm_runtime import AlarmRuntime
from safety_hub.runtime.notifications import NotificationRuntime, NotifyOptions
from safety_hub.runtime.notify_outbox import NotificationOutbox, NotificationOutboxStore
from safety_hub.settings import Settings
from safety_hub.system_alarms import SystemAlarms

log = logging.getLogger("safety_hub.notify")

OUTBOX_FILE = "notifications.sqlite"


def notify_options(settings: Settings) -> NotifyOptions:
    return NotifyOptions(
        summary_window_ms=round(settings.notify_summary_window_s * 1000),
        retry_initial_ms=round(settings.notify_retry_initial_s * 1000),
        retry_max_ms=round(settings.notify_retry_max_s * 1000),
        max_attempts=settings.notify_max_attempts,
        base_url=settings.public_url,
    )


def build_notifications(
    settings: Settings,
    *,
    clock: Clock,
    alarms: AlarmRuntime,
    rules: RulePack,
    plant: Plant,
    metrics: HubMetrics,
    system_alarms: SystemAlarms,
    people: Directory | None,
    sender: NotificationSender | None,
    check_target: TargetCheck | None = None,
    outbox: Callable[[], NotificationOutboxStore] | None = None,
    recover: bool = True,
) -> NotificationRuntime | None:
    """The notification runtime, subscribed to the alarm service, with what a crash left
    unplanned planned again; None when notifications are off (``SAFETY_HUB_NOTIFY=off``) or
    there is no people directory or sender to use. ``outbox`` opens the notification outbox
    (default: the SQLite file in the data directory). ``recover`` False: plan nothing the
    outbox missed now (a standby of a redundant pair may not write; the hub calls
    ``NotificationRuntime.catch_up`` when the node takes the lease)."""
    if not settings.notify:
        log.info("notifications are off (SAFETY_HUB_NOTIFY=off)")
        return None
    if people is None or sender is None:
        log.warning("notifications are off: no people directory or no sender")
        return None
    known = Known(check_target, {rule.alert for rule in rules}, set(plant.enterprises))
    policies = load_policies(settings.notify_policies or default_policy_path(), known)
    store = outbox() if outbox is not None else NotificationOutbox(settings.data_dir / OUTBOX_FILE)
    runtime = NotificationRuntime(
        planner=Planner(policies, people),
        outbox=store,
        sender=sender,
        clock=clock,
        registry=metrics.registry,
        system_alarms=system_alarms,
        options=notify_options(settings),
    )
    if recover:
        runtime.catch_up(alarms.journal, alarms.service.get)
    alarms.service.subscribe(runtime.on_transition)
    log.info(
        "notifications on",
        extra={"policies": len(policies), "files": list(policies.files)},
    )
    return runtime
