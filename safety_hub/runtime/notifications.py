"""Notifications inside the hub: the planner fed with alarm transitions, the durable outbox, and
a dispatcher thread that sends what is due through the ``NotificationSender``.

- Every transition is planned (``safety_hub.notify.planner``) and committed to the outbox with
  its journal sequence number; at start the transitions the outbox missed (a crash between the
  journal commit and the plan's commit) are planned again from the journal.
- The dispatcher wakes at least every ``POLL_S``, takes the notifications due on the hub's
  clock and groups them by person and contact point: a group whose contact point got a message
  less than the summary window ago waits for the window to end, then goes as one message listing
  its alarms (a flood is one message, not N).
- A send that fails with a retryable ``NotificationError`` is tried again after an exponential
  backoff (``retry_initial_ms`` doubling up to ``retry_max_ms``, at most ``max_attempts``
  tries); other rows, later escalation steps among them, go on their own schedule. A channel
  whose sends fail ``failures_for_alarm`` times in a row raises the system alarm
  ``notification_channel_<channel>``; its next successful send clears it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from safety_hub.alarms import Alarm, JournalEntry, Transition
from safety_hub.alarms.journal import JournalStore
from safety_hub.clock import Clock
from safety_hub.errors import NotificationError
from safety_hub.notify.contacts import OutgoingMessage
from safety_hub.notify.planner import Planner
from safety_hub.notify.render import Item, render
from safety_hub.ports import NotificationSender
from safety_hub.runtime.notify_outbox import (
    FAILED,
    PENDING,
    SENT,
    NotificationOutboxStore,
    Row,
)
from safety_hub.system_alarms import SystemAlarms

log = logging.getLogger("safety_hub.notify")

POLL_S = 0.5
PRUNE_EVERY_MS = 3_600_000


@dataclass(frozen=True)
class NotifyOptions:
    summary_window_ms: int = 30_000
    retry_initial_ms: int = 2_000
    retry_max_ms: int = 60_000
    max_attempts: int = 30
    failures_for_alarm: int = 3
    base_url: str | None = None
    retention_ms: int = 30 * 86_400_000
    recovery_horizon_ms: int = 3_600_000
    """at start, journal rows the outbox missed are planned again only if this recent: a hub
    that ran with notifications off (or was down) for long does not notify old alarms"""


def backoff_ms(attempts: int, options: NotifyOptions) -> int:
    """The wait before try ``attempts + 1`` after ``attempts`` failed ones."""
    return int(min(options.retry_max_ms, options.retry_initial_ms * 2 ** max(0, attempts - 1)))


def channel_alarm(channel: str) -> str:
    return f"notification_channel_{channel}"


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry, pending: Callable[[], dict[str, int]]) -> None:
        self.sent = Counter(
            "safety_hub_notifications_sent",
            "Notifications delivered (each alarm in a summary counts), by channel",
            ["channel"],
            registry=registry,
        )
        self.messages = Counter(
            "safety_hub_notification_messages_sent",
            "Messages delivered (a summary of N alarms is one), by channel",
            ["channel"],
            registry=registry,
        )
        self.failed = Counter(
            "safety_hub_notifications_failed",
            "Notifications given up (not retryable, or out of attempts), by channel",
            ["channel"],
            registry=registry,
        )
        self.retries = Counter(
            "safety_hub_notification_retries",
            "Failed sends that will be tried again, by channel",
            ["channel"],
            registry=registry,
        )
        registry.register(_Pending(pending))


class _Pending(Collector):
    def __init__(self, pending: Callable[[], dict[str, int]]) -> None:
        self._pending = pending

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "safety_hub_notifications_pending",
            "Notifications planned and not yet sent (escalation steps to come included)",
            labels=["channel"],
        )
        for channel, count in sorted(self._pending().items()):
            family.add_metric([channel], count)
        yield family


def transition_of(entry: JournalEntry, alarm: Alarm) -> Transition | None:
    """A journal row as the transition it recorded (the alarm as it is now); None for a
    suppression note without an alarm."""
    if entry.alarm_id is None or entry.from_state is None or entry.to_state is None:
        return None
    return Transition(
        seq=entry.id,
        alarm=alarm,
        action=entry.action,
        from_state=entry.from_state,
        to_state=entry.to_state,
        ts_ms=entry.ts_ms,
        user=entry.user,
        comment=entry.comment,
    )


def digest_id(rows: Iterable[Row]) -> str:
    ids = sorted(r.id for r in rows)
    if len(ids) == 1:
        return ids[0]
    return "summary/" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:20]


class NotificationRuntime:
    def __init__(
        self,
        *,
        planner: Planner,
        outbox: NotificationOutboxStore,
        sender: NotificationSender,
        clock: Clock,
        registry: CollectorRegistry,
        system_alarms: SystemAlarms,
        options: NotifyOptions | None = None,
    ) -> None:
        self.planner = planner
        self.outbox = outbox
        self._sender = sender
        self._clock = clock
        self._alarms = system_alarms
        self.options = options or NotifyOptions()
        self.metrics = NotifyMetrics(registry, outbox.pending_by_channel)
        self._failures: dict[str, int] = {}  # channel -> failed sends in a row
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_ms = 0
        self.plan_errors = 0

    # -- planning ----------------------------------------------------------------------------
    def on_transition(self, t: Transition) -> None:
        """An alarm service listener: plan and commit (after the journal commit)."""
        plan = self.planner.plan(t)
        self.outbox.apply(plan, t.seq, self._clock.now_ms())
        if plan.schedule:
            self._wake.set()

    def catch_up(self, journal: JournalStore, alarm_of: Callable[[int], Alarm]) -> int:
        """Plan what the journal has after the outbox's marker (:meth:`recover`); a new outbox
        starts at the journal's end (what happened before it is not notified now). At start,
        or, on a node of a redundant pair, when it takes the lease: a standby may not write,
        and the other node wrote the shared journal and outbox meanwhile."""
        marker = self.outbox.marker()
        if marker is None:
            newest = journal.entries(limit=1, newest=True)
            self.outbox.set_marker(newest[0].id if newest else 0)
            return 0
        return self.recover(journal.entries(after_id=marker), alarm_of)

    def recover(self, entries: Iterable[JournalEntry], alarm_of: Callable[[int], Alarm]) -> int:
        """Plan the journal rows after the outbox's marker again (a crash between the journal
        commit and the plan's); returns how many notifications were new."""
        added = 0
        oldest = self._clock.now_ms() - self.options.recovery_horizon_ms
        for entry in entries:
            t = None if entry.alarm_id is None else transition_of(entry, alarm_of(entry.alarm_id))
            plan = self.planner.plan(t) if t is not None and entry.ts_ms >= oldest else None
            if plan is None:
                self.outbox.set_marker(entry.id)
                continue
            added += self.outbox.apply(plan, entry.id, self._clock.now_ms())
        if added:
            log.warning("planned %d notifications the outbox missed before a crash", added)
        return added

    # -- dispatching -------------------------------------------------------------------------
    def dispatch(self) -> int:
        """Send what is due now; returns how many messages went out."""
        now = self._clock.now_ms()
        groups: dict[tuple[str, str], list[Row]] = {}
        for row in self.outbox.due(now):
            groups.setdefault((row.person_id, row.contact.url), []).append(row)
        sent = 0
        window = self.options.summary_window_ms
        for (person, url), rows in groups.items():
            last = self.outbox.last_sent_ms(person, url)
            if last is not None and window > 0 and now < last + window:
                continue  # summarised once the window since the last message ends
            sent += self._send(rows, now)
        if now - self._pruned_ms >= PRUNE_EVERY_MS:
            self._pruned_ms = now
            self.outbox.prune(now - self.options.retention_ms)
        return sent

    def _send(self, rows: list[Row], now: int) -> int:
        contact = rows[0].contact
        channel = contact.channel
        rendered = render([Item(r.kind, r.facts) for r in rows], base_url=self.options.base_url)
        message_id = digest_id(rows)
        message = OutgoingMessage(message_id, contact, rendered.title, rendered.body)
        try:
            self._sender.send(message)
        except NotificationError as exc:
            self._failed(rows, now, exc.detail, retryable=exc.retryable)
            return 0
        except Exception as exc:  # a sender bug must not stop the dispatcher
            log.exception("notification sender failed on %s", message_id)
            self._failed(rows, now, f"{type(exc).__name__}", retryable=True)
            return 0
        self.outbox.mark((r.id for r in rows), SENT, now, message_id=message_id)
        self.metrics.sent.labels(channel).inc(len(rows))
        self.metrics.messages.labels(channel).inc()
        self._failures[channel] = 0
        self._alarms.set(channel_alarm(channel), False, f"{channel}: messages go out again")
        log.info(
            "notification sent",
            extra={
                "notification_id": message_id,
                "channel": channel,
                "contact": contact.redacted(),
                "alarms": len(rows),
            },
        )
        return 1

    def _failed(self, rows: list[Row], now: int, detail: str, *, retryable: bool) -> None:
        options = self.options
        channel = rows[0].contact.channel
        for row in rows:
            attempts = row.attempts + 1
            if retryable and attempts < options.max_attempts:
                self.outbox.mark(
                    [row.id],
                    PENDING,
                    now,
                    error=detail,
                    next_ms=now + backoff_ms(attempts, options),
                )
                self.metrics.retries.labels(channel).inc()
            else:
                self.outbox.mark([row.id], FAILED, now, error=detail)
                self.metrics.failed.labels(channel).inc()
        failures = self._failures[channel] = self._failures.get(channel, 0) + 1
        log.warning(
            "notification not sent",
            extra={
                "channel": channel,
                "contact": rows[0].contact.redacted(),
                "detail": detail,
                "retryable": retryable,
                "failures_in_a_row": failures,
            },
        )
        if failures >= options.failures_for_alarm:
            self._alarms.set(
                channel_alarm(channel),
                True,
                f"{channel}: {failures} sends in a row failed, last: {detail}",
            )

    # -- reading -----------------------------------------------------------------------------
    def recent(
        self,
        *,
        alarm_id: int | None = None,
        status: str | None = None,
        enterprise: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest notifications as the API shows them (contact URLs redacted)."""
        rows = self.outbox.rows(
            alarm_id=alarm_id, status=status, enterprise=enterprise, limit=limit
        )
        return [{**row.as_json(), "enterprise": row.facts.get("enterprise")} for row in rows]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()  # again after stop(): a redundant pair's node acting again
        self._thread = threading.Thread(target=self._run, name="notify-dispatch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.dispatch()
            except Exception:
                log.exception("notification dispatcher: pass failed")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def close(self) -> None:
        self.outbox.close()
