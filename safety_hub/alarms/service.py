"""The alarm service: ISA-18.2 lifecycle of the rule engine's conditions, journaled durably.

Each public call takes effect at the injected clock's time, runs one pure lifecycle function per
alarm it touches (`safety_hub.alarms.lifecycle`), writes every resulting transition and the new
current state in one journal transaction, and only then hands the transitions to the listeners
(MQTT, InfluxDB, SSE outputs). The journal is the durable state: a new service on the same file
comes back with the same alarms, suppressions and first-outs.
"""

from __future__ import annotations

import builtins  # AlarmService.list shadows the builtin inside the class
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from safety_hub.alarms import disposal, lifecycle
from safety_hub.alarms import kpis as kpi
from safety_hub.alarms.errors import AlarmNotFound, InvalidAction
from safety_hub.alarms.first_out import first_out_changes
from safety_hub.alarms.grouping import Children, parent_key
from safety_hub.alarms.journal import JournalBatch, JournalStore
from safety_hub.alarms.kpis import FloodEpisode, Kpis
from safety_hub.alarms.model import (
    OOS_REGISTRY,
    REGISTRY_OOS_CAUSE,
    Action,
    Alarm,
    AlarmState,
    Condition,
    Disposal,
    JournalEntry,
    OutOfService,
    Priority,
    Transition,
    is_annunciation,
)
from safety_hub.clock import Clock

log = logging.getLogger("safety_hub.alarms")

DEFAULT_MAX_SHELVE_MS = 8 * 3_600_000

Listener = Callable[[Transition], None]


@dataclass(frozen=True, slots=True)
class _Step:
    """One alarm's change within a call, before it is journaled."""

    before: Alarm | None
    after: Alarm
    action: Action
    user: str | None
    comment: str | None
    event_ts_ms: int | None = None

    @property
    def from_state(self) -> AlarmState:
        """A new alarm instance counts as coming from normal."""
        return AlarmState.NORMAL if self.before is None else self.before.state

    @property
    def annunciated(self) -> bool:
        return is_annunciation(self.from_state, self.after.state, self.action)


class AlarmService:
    """Thread-safe; every call is atomic with respect to the others and to the journal."""

    def __init__(
        self,
        journal: JournalStore,
        clock: Clock,
        hazard_grades: Mapping[str, int | None],
        *,
        max_shelve_ms: int = DEFAULT_MAX_SHELVE_MS,
        registry_out_of_service: Mapping[tuple[str, str], OutOfService] | None = None,
        disposal_limits: Mapping[Priority, int | None] | None = None,
    ) -> None:
        """``registry_out_of_service``: (enterprise, tag) -> who, why and since of the tags the
        plant registry holds out of service; their alarms whose rule names the plant state
        ``out_of_service`` (cause ``REGISTRY_OOS_CAUSE``) show them in ``out_of_service``."""
        if max_shelve_ms <= 0:
            raise ValueError(f"max_shelve_ms={max_shelve_ms}: must be positive")
        self._journal = journal
        self._clock = self.clock = clock  # public: readers compute ages on the same clock
        self._grades = dict(hazard_grades)
        self._registry_oos = dict(registry_out_of_service or {})
        self.max_shelve_ms = max_shelve_ms
        self.disposal_limits = dict(disposal_limits or disposal.DEFAULT_LIMITS_MS)  # ms, None: none
        self._lock = threading.RLock()  # re-entrant: a listener may read the service
        self._listeners: builtins.list[Listener] = []
        self.listener_errors = 0
        self.reload()

    def reload(self) -> None:
        """(Re-)read the alarms from the journal: at start, and when a standby of a redundant
        pair takes over a journal the other node wrote (docs/deploy.md, "Redundancy")."""
        with self._lock:
            state = self._journal.load()
            self._alarms: dict[int, Alarm] = {a.id: a for a in state.alarms}
            self._by_key: dict[str, int] = {a.key: a.id for a in state.alarms}
            self._by_source: dict[str, set[int]] = {}
            for alarm in state.alarms:
                self._by_source.setdefault(alarm.hazard_source, set()).add(alarm.id)
            self._suppressions: dict[str, tuple[str, ...]] = dict(state.suppressions)
            self._first_out: dict[str, int] = dict(state.first_out)
            self._next_id = max(self._alarms, default=0) + 1
            self._children = Children(state.alarms)  # root-cause groups (alarms/grouping.py)

    # -- inputs -------------------------------------------------------------------------------

    def apply(self, condition: Condition) -> builtins.list[Transition]:
        """A condition change from the rule engine; [] when it changes nothing."""
        return self.apply_all([condition])

    def apply_all(self, conditions: Iterable[Condition]) -> builtins.list[Transition]:
        """Condition changes of one engine call, in order, journaled in one transaction (one
        sync for a level-1 and level-2 raised by one reading); [] when they change nothing."""
        with self._lock:
            now = self._clock.now_ms()
            steps: builtins.list[_Step] = []
            staged: dict[str, Alarm] = {}  # a key's alarm after the steps before, in this call
            next_id = self._next_id
            for condition in conditions:
                before = staged.get(condition.key) or self._find(condition.key)
                result = lifecycle.on_condition(
                    before,
                    condition,
                    new_id=next_id,
                    now_ms=now,
                    grade=self._grades.get(condition.hazard_source),
                    suppressed_by=self._design_causes(condition.key),
                    out_of_service=self._registry_hold(
                        condition.key, condition.enterprise, condition.tag, now
                    ),
                )
                if result is None:
                    continue
                after, action = result
                next_id = max(next_id, after.id + 1)
                staged[condition.key] = after
                steps.append(_Step(before, after, action, None, None, condition.ts_ms))
            return self._commit(now, steps) if steps else []

    def acknowledge(self, alarm_id: int, user: str, comment: str | None = None) -> Alarm:
        with self._lock:
            now = self._clock.now_ms()
            before = self.get(alarm_id)
            after = lifecycle.acknowledge(before, user=user, now_ms=now)
            return self._commit_one(now, _Step(before, after, Action.ACK, user, comment))

    def reset(self, alarm_id: int, user: str, comment: str | None = None) -> Alarm:
        """Release an acknowledged latch; while the condition persists it re-annunciates."""
        with self._lock:
            now = self._clock.now_ms()
            before = self.get(alarm_id)
            after = lifecycle.reset(before, user=user, now_ms=now)
            return self._commit_one(now, _Step(before, after, Action.RESET, user, comment))

    def shelve(
        self, alarm_id: int, user: str, reason: str, until_ms: int, comment: str | None = None
    ) -> Alarm:
        with self._lock:
            now = self._clock.now_ms()
            before = self.get(alarm_id)
            after = lifecycle.shelve(
                before,
                user=user,
                reason=reason,
                until_ms=until_ms,
                now_ms=now,
                max_shelve_ms=self.max_shelve_ms,
            )
            text = reason if comment is None else f"{reason}: {comment}"
            return self._commit_one(now, _Step(before, after, Action.SHELVE, user, text))

    def unshelve(self, alarm_id: int, user: str, comment: str | None = None) -> Alarm:
        with self._lock:
            now = self._clock.now_ms()
            before = self.get(alarm_id)
            after = lifecycle.unshelve(before, user=user, now_ms=now, action=Action.UNSHELVE)
            return self._commit_one(now, _Step(before, after, Action.UNSHELVE, user, comment))

    def remove_from_service(
        self, alarm_id: int, user: str, reason: str, comment: str | None = None
    ) -> Alarm:
        with self._lock:
            now = self._clock.now_ms()
            before = self.get(alarm_id)
            after = lifecycle.remove_from_service(before, user=user, reason=reason, now_ms=now)
            text = reason if comment is None else f"{reason}: {comment}"
            return self._commit_one(now, _Step(before, after, Action.OUT_OF_SERVICE, user, text))

    def return_to_service(self, alarm_id: int, user: str, comment: str | None = None) -> Alarm:
        with self._lock:
            now = self._clock.now_ms()
            before = self.get(alarm_id)
            after = lifecycle.return_to_service(before, user=user, now_ms=now)
            step = _Step(before, after, Action.RETURN_TO_SERVICE, user, comment)
            return self._commit_one(now, step)

    def dispose(self, alarm_id: int, user: str, category: str, text: str) -> Alarm:
        """Record how the current episode was dealt with (docs/alarms.md, "Disposal")."""
        with self._lock:
            now = self._clock.now_ms()
            before = self.get(alarm_id)
            record = disposal.dispose(before, category=category, text=text, by=user, now_ms=now)
            after = disposal.with_disposal(before, record, now)
            comment = disposal.comment(record)
            return self._commit_one(now, _Step(before, after, Action.DISPOSE, user, comment))

    def suppress(self, cause: str, keys: Iterable[str]) -> builtins.list[Transition]:
        """Suppression by design: ``cause`` (e.g. ``"SIS trip SIF-101"``) holds these alarm keys.

        A key may have no alarm yet: it is suppressed from its first activation. An alarm stays
        suppressed while any cause holds it. Suppressing again with the same cause changes
        nothing.
        """
        with self._lock:
            return self._change_suppression(cause, builtins.list(keys), hold=True)

    def release(self, cause: str, keys: Iterable[str] | None = None) -> builtins.list[Transition]:
        """``cause`` no longer holds these keys (None: every key it holds).

        An alarm that no longer has any cause shows its true state: annunciated again if its
        condition is still active. Releasing what the cause does not hold changes nothing.
        """
        with self._lock:
            if keys is None:
                held = sorted(k for k, causes in self._suppressions.items() if cause in causes)
            else:
                held = builtins.list(keys)
            return self._change_suppression(cause, held, hold=False)

    def tick(self) -> builtins.list[Transition]:
        """Clock-driven work: shelves expire; warnings past their disposal limit go overdue."""
        with self._lock:
            now = self._clock.now_ms()
            steps = []
            for alarm in self._alarms.values():
                if disposal.falls_overdue(alarm, now):
                    after = disposal.mark_overdue(alarm, now)
                    steps.append(_Step(alarm, after, Action.DISPOSAL_OVERDUE, None, None))
                if alarm.shelved is not None and alarm.shelved.until_ms <= now:
                    after = lifecycle.unshelve(
                        alarm, user=None, now_ms=now, action=Action.SHELVE_EXPIRED
                    )
                    steps.append(_Step(alarm, after, Action.SHELVE_EXPIRED, None, None))
            return self._commit(now, steps) if steps else []

    def subscribe(self, listener: Listener) -> None:
        """``listener`` gets every transition, in order, after it is in the journal."""
        with self._lock:
            self._listeners.append(listener)

    # -- queries ------------------------------------------------------------------------------

    def get(self, alarm_id: int) -> Alarm:
        with self._lock:
            try:
                return self._alarms[alarm_id]
            except KeyError:
                raise AlarmNotFound(alarm_id) from None

    def disposals(
        self, since_ms: int | None = None, until_ms: int | None = None
    ) -> builtins.list[tuple[Alarm, Disposal]]:
        """Every disposal record in the journal between the times (inclusive), oldest first."""
        rows = self._journal.entries(since_ms=since_ms, until_ms=until_ms, action=Action.DISPOSE)
        with self._lock:
            return disposal.records(rows, self._alarms)

    def find(self, key: str) -> Alarm | None:
        with self._lock:
            return self._find(key)

    def suppressions(self) -> dict[str, tuple[str, ...]]:
        """Alarm key -> the causes that hold it."""
        with self._lock:
            return dict(self._suppressions)

    def list(
        self,
        state: AlarmState | str | None = None,
        priority: Priority | str | None = None,
        enterprise: str | None = None,
        hazard_source: str | None = None,
        include_normal: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[Alarm]:
        """The alarm list: first-outs pinned on top, then by last annunciation, oldest first.

        Normal alarms only with ``include_normal`` or ``state="normal"``.
        """
        wanted_state = None if state is None else AlarmState(state)
        wanted_priority = None if priority is None else Priority(priority)
        with self._lock:
            pinned = set(self._first_out.values())
            chosen = [
                a
                for a in self._alarms.values()
                if (wanted_state is None or a.state is wanted_state)
                and (include_normal or wanted_state is not None or a.state is not AlarmState.NORMAL)
                and (wanted_priority is None or a.priority is wanted_priority)
                and (enterprise is None or a.enterprise == enterprise)
                and (hazard_source is None or a.hazard_source == hazard_source)
            ]
        chosen.sort(key=lambda a: (a.id not in pinned, _list_time(a), a.id))
        return chosen[offset : offset + limit]

    def children(self, alarm_id: int) -> builtins.list[Alarm]:
        """The alarms grouped under this one (its root-cause consequences), any state, by id."""
        with self._lock:
            parent = self.get(alarm_id)
            return [self._alarms[i] for i in sorted(self._children.of(parent.key))]

    def children_count(self, alarm: Alarm) -> int:
        """How many alarms are grouped under ``alarm``."""
        with self._lock:
            return len(self._children.of(alarm.key))

    def parent(self, alarm: Alarm) -> Alarm | None:
        """The alarm ``alarm`` is grouped under (its root cause), if any."""
        key = parent_key(alarm)
        with self._lock:
            return None if key is None else self._find(key)

    def first_out(self, hazard_source: str) -> Alarm | None:
        """The first alarm of the hazard source's current episode (pinned until it ends)."""
        with self._lock:
            alarm_id = self._first_out.get(hazard_source)
            return None if alarm_id is None else self._alarms[alarm_id]

    def journal(
        self, alarm_id: int | None = None, since_ms: int | None = None, limit: int = 1000
    ) -> builtins.list[JournalEntry]:
        """Journal rows, oldest first: from ``since_ms`` on the first ``limit``, else the last."""
        return self._journal.entries(
            alarm_id=alarm_id, since_ms=since_ms, limit=limit, newest=since_ms is None
        )

    def kpis(
        self,
        now_ms: int | None = None,
        operator_position: str | None = None,
        *,
        window_ms: int = kpi.DAY_MS,
    ) -> Kpis:
        """KPIs over the ``window_ms`` before ``now_ms`` (default: the clock, the last 24 h)."""
        if window_ms <= 0:
            raise InvalidAction("compute kpis", f"window_ms {window_ms} must be positive")
        now = self._clock.now_ms() if now_ms is None else now_ms
        with self._lock:
            alarms = dict(self._alarms)
        ids = kpi.alarms_of_position(alarms.values(), operator_position)
        if ids is not None:
            alarms = {i: a for i, a in alarms.items() if i in ids}
        entries = [
            e
            for e in self._journal.entries(since_ms=now - window_ms - kpi.TEN_MIN_MS, until_ms=now)
            if ids is None or e.alarm_id in ids
        ]
        return kpi.compute_kpis(
            entries=entries,
            all_annunciation_times=self._annunciation_times(now, ids),
            alarms=alarms,
            window_ms=window_ms,
            now_ms=now,
            operator_position=operator_position,
        )

    def floods(self, operator_position: str | None = None) -> builtins.list[FloodEpisode]:
        """Every flood episode in the journal up to now, oldest first."""
        now = self._clock.now_ms()
        with self._lock:
            ids = kpi.alarms_of_position(self._alarms.values(), operator_position)
        return kpi.flood_episodes(self._annunciation_times(now, ids), now_ms=now)

    def prune(self, older_than_ms: int) -> int:
        """Delete journal rows older than ``older_than_ms``, which must be ≥ 366 days ago."""
        return self._journal.prune(older_than_ms, now_ms=self._clock.now_ms())

    # -- internals ----------------------------------------------------------------------------

    def _find(self, key: str) -> Alarm | None:
        alarm_id = self._by_key.get(key)
        return None if alarm_id is None else self._alarms[alarm_id]

    def _annunciation_times(self, now_ms: int, ids: Iterable[int] | None) -> builtins.list[int]:
        wanted = None if ids is None else set(ids)
        return [
            ts
            for ts, alarm_id in self._journal.annunciations(until_ms=now_ms)
            if wanted is None or alarm_id in wanted
        ]

    def _change_suppression(
        self, cause: str, keys: builtins.list[str], *, hold: bool
    ) -> builtins.list[Transition]:
        action = Action.SUPPRESS if hold else Action.UNSUPPRESS
        if not cause.strip():
            raise InvalidAction(action, "cause is required")
        now = self._clock.now_ms()
        batch = JournalBatch()
        steps: builtins.list[_Step] = []
        updated: dict[str, tuple[str, ...]] = {}
        for key in dict.fromkeys(keys):  # each key once, in the given order
            causes = self._suppressions.get(key, ())
            before = self._find(key)
            if (cause in causes) == hold and not lifecycle.registry_cause_as_design(before, cause):
                continue
            if hold:
                updated[key] = tuple(sorted({*causes, cause}))
                batch.suppressed.append((key, cause, now))
            else:
                updated[key] = tuple(c for c in causes if c != cause)
                batch.released.append((key, cause))
            if before is not None:
                steps.append(self._suppression_step(before, cause, updated[key], hold, now))
            else:  # no alarm yet: the journal still records what was suppressed, when and why
                batch.entries.append(
                    JournalEntry(
                        id=0,
                        alarm_id=None,
                        key=key,
                        ts_ms=now,
                        event_ts_ms=None,
                        action=action,
                        from_state=None,
                        to_state=None,
                        user=None,
                        comment=cause,
                        value=None,
                        priority=None,
                        raised_ms=None,
                    )
                )
        if not updated:
            return []
        return self._commit(now, steps, batch, suppressions=updated)

    def _design_causes(self, key: str, causes: Iterable[str] | None = None) -> tuple[str, ...]:
        """The suppression-by-design causes of ``key`` (the registry's is out of service)."""
        held = self._suppressions.get(key, ()) if causes is None else causes
        return tuple(c for c in held if c != REGISTRY_OOS_CAUSE)

    def _registry_hold(
        self, key: str, enterprise: str, tag: str | None, now: int
    ) -> OutOfService | None:
        """The registry's out of service of ``key``'s tag while its cause holds the key."""
        if REGISTRY_OOS_CAUSE not in self._suppressions.get(key, ()):
            return None
        return self._registry_entry(enterprise, tag, now)

    def _registry_entry(self, enterprise: str, tag: str | None, now: int) -> OutOfService:
        """The registry's who, why and since for the tag (a generic one if it was not given)."""
        known = self._registry_oos.get((enterprise, tag or ""))
        if known is not None:
            return known
        return OutOfService("registry", "out of service in the plant registry", now, OOS_REGISTRY)

    def _suppression_step(
        self, before: Alarm, cause: str, causes: tuple[str, ...], hold: bool, now: int
    ) -> _Step:
        """One alarm's change when ``cause`` now holds it (``hold``) or no longer does."""
        design = self._design_causes(before.key, causes)
        if cause != REGISTRY_OOS_CAUSE:
            after = lifecycle.set_suppressed_by(before, design, now_ms=now)
            return _Step(before, after, Action.SUPPRESS if hold else Action.UNSUPPRESS, None, cause)
        oos = self._registry_entry(before.enterprise, before.tag, now) if hold else None
        after = lifecycle.set_registry_out_of_service(before, oos, design, now_ms=now)
        if oos is not None:
            return _Step(before, after, Action.OUT_OF_SERVICE, oos.by, f"registry: {oos.reason}")
        return _Step(before, after, Action.RETURN_TO_SERVICE, None, "registry: back in service")

    def _commit_one(self, now: int, step: _Step) -> Alarm:
        self._commit(now, [step])
        return self._alarms[step.after.id]

    def _commit(
        self,
        now: int,
        steps: builtins.list[_Step],
        batch: JournalBatch | None = None,
        *,
        suppressions: Mapping[str, tuple[str, ...]] | None = None,
    ) -> builtins.list[Transition]:
        """Journal the steps (plus ``batch``) in one transaction, then update memory, then tell.

        ``suppressions`` are the keys whose causes ``batch`` changes, with their new causes.
        """
        batch = batch or JournalBatch()
        new = disposal.new_episode  # every annunciation starts a disposal episode
        steps = [
            replace(s, after=new(s.after, self.disposal_limits)) if s.annunciated else s
            for s in steps
        ]
        journaled: builtins.list[tuple[_Step, int]] = []  # step, index of its entry in the batch
        for step in steps:
            journaled.append((step, len(batch.entries)))
            batch.entries.append(
                JournalEntry(
                    id=0,
                    alarm_id=step.after.id,
                    key=step.after.key,
                    ts_ms=now,
                    event_ts_ms=step.event_ts_ms,
                    action=step.action,
                    from_state=step.from_state,
                    to_state=step.after.state,
                    user=step.user,
                    comment=step.comment,
                    value=step.after.value,
                    priority=step.after.priority,
                    raised_ms=step.after.raised_ms,
                )
            )
            batch.alarms.append(step.after)
        batch.first_out = first_out_changes(
            self._first_out, self._by_source, self._alarms, now, steps
        )
        stored = self._journal.write(batch)  # raises before anything in memory changed

        for step in steps:
            if step.before is not None and step.before.hazard_source != step.after.hazard_source:
                self._by_source[step.before.hazard_source].discard(step.before.id)
            self._by_source.setdefault(step.after.hazard_source, set()).add(step.after.id)
            self._alarms[step.after.id] = step.after
            self._by_key[step.after.key] = step.after.id
            self._children.update(step.before, step.after)
            self._next_id = max(self._next_id, step.after.id + 1)
        for source, pinned in batch.first_out.items():
            if pinned is None:
                self._first_out.pop(source, None)
            else:
                self._first_out[source] = pinned[0]
        for key, causes in (suppressions or {}).items():
            if causes:
                self._suppressions[key] = causes
            else:
                self._suppressions.pop(key, None)

        transitions = [
            Transition(
                seq=stored[index].id,
                alarm=step.after,
                action=step.action,
                from_state=step.from_state,
                to_state=step.after.state,
                ts_ms=now,
                user=step.user,
                comment=step.comment,
            )
            for step, index in journaled
        ]
        self._notify(transitions)
        return transitions

    def _notify(self, transitions: builtins.list[Transition]) -> None:
        for transition in transitions:
            for listener in self._listeners:
                try:
                    listener(transition)
                except Exception:
                    # Already journaled: a failing output must not undo or block the alarm.
                    self.listener_errors += 1
                    log.exception(
                        "alarm listener %r failed on transition %d", listener, transition.seq
                    )


def _list_time(alarm: Alarm) -> int:
    return alarm.changed_ms if alarm.raised_ms is None else alarm.raised_ms
