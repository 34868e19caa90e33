"""Alarms: the list, counts, one alarm, operator actions, the journal, KPIs and flood episodes.

Reads need any role; an enterprise user sees only its enterprise's alarms (another
enterprise's alarm is a 404, like an alarm that does not exist). Actions need an operator or
admin, are rate limited per user, and record the token's user in the alarm journal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from safety_hub.alarms import Alarm, AlarmNotFound, AlarmService, IllegalTransition, InvalidAction
from safety_hub.alarms.model import DISPLAYED_STATES, AlarmState, JournalEntry, Priority
from safety_hub.alarms.service import DEFAULT_MAX_SHELVE_MS
from safety_hub.api.auth import Principal
from safety_hub.api.deps import (
    AUTH_RESPONSES,
    AlarmServiceDep,
    ClockDep,
    OperatorDep,
    ParkWideDep,
    PrincipalDep,
    decimal_alarm_id,
    error,
    scoped_enterprise,
)
from safety_hub.api.disposal_models import DisposalKpisOut, DisposalOut

router = APIRouter(
    prefix="/api/v1/alarms",
    tags=["alarms"],
    responses=AUTH_RESPONSES,
    dependencies=[Depends(decimal_alarm_id)],  # the routes with an {alarm_id}
)

MAX_MS = 2**53 - 1  # the largest integer a JavaScript client holds exactly
MAX_SHELVE_S = DEFAULT_MAX_SHELVE_MS // 1000
Tier = Literal["red", "orange", "yellow", "blue"]
TIERS: dict[Priority, Tier] = {
    Priority.CRITICAL: "red",
    Priority.HIGH: "orange",
    Priority.MEDIUM: "yellow",
    Priority.LOW: "blue",
}
WAITING_FOR_ACK = frozenset(
    {AlarmState.UNACKNOWLEDGED, AlarmState.RTN_UNACKNOWLEDGED, AlarmState.LATCHED}
)


def waits_for_ack(alarm: Alarm) -> bool:
    return alarm.state in WAITING_FOR_ACK and not alarm.acknowledged


def worst_tier(alarms: Iterable[Alarm]) -> Tier | None:
    """The tier of the highest priority among ``alarms`` shown in the alarm list."""
    shown = [a.priority for a in alarms if a.state in DISPLAYED_STATES]
    return TIERS[max(shown, key=lambda p: p.rank)] if shown else None


class ShelveOut(BaseModel):
    by: str
    reason: str
    since_ms: int
    until_ms: int


class OutOfServiceOut(BaseModel):
    by: str
    reason: str
    since_ms: int
    source: Literal["operator", "registry"] = Field(
        description="operator: the out-of-service action; registry: the tag is out of service "
        "in the plant registry (return it there)"
    )


class AlarmOut(BaseModel):
    id: int
    key: str = Field(description="stable identity: rule, enterprise, tag or zone")
    alert: str
    enterprise: str
    hazard_source: str = Field(description='"" when the alarm belongs to no hazard source')
    tag: str | None
    zone: str | None
    priority: Priority = Field(description="effective priority (after the hazard-grade rule)")
    rule_priority: Priority
    tier: Tier = Field(description="colour: critical red, high orange, medium yellow, low blue")
    alarm_class: str = Field(description="gas | process | fault | sis | comms | system")
    level: int | None
    state: AlarmState = Field(description="ISA-18.2 state, see docs/alarms.md")
    active: bool = Field(description="the condition is present")
    acknowledged: bool
    latched: bool
    latching: bool
    first_out: bool = Field(description="the first alarm of its hazard source's current episode")
    shelved: ShelveOut | None
    out_of_service: OutOfServiceOut | None
    suppressed_by: list[str]
    raised_ms: int | None
    first_raised_ms: int | None
    acknowledged_ms: int | None
    acknowledged_by: str | None
    cleared_ms: int | None
    active_since_ms: int | None
    changed_ms: int
    event_ts_ms: int
    value: float | None
    setpoint: float | None
    on_delay_s: float
    summary: str
    summary_en: str
    labels: dict[str, str]
    count: int = Field(description="annunciations so far")
    returns: int = Field(
        description="times the condition came back while the latch held, since the last "
        "annunciation (no new annunciation)"
    )
    last_active_ms: int | None = Field(
        description="source time the condition last became active (raise or return)"
    )
    arrived_ms: int | None = Field(
        description="clock time the current activation reached the hub; null while clear"
    )
    parent_id: int | None = Field(
        None,
        description="the alarm this one is grouped under (its root cause, e.g. the link-down "
        "alarm of its enterprise); null when none",
    )
    children_count: int = Field(
        0, description="alarms grouped under this one (GET /api/v1/alarms/{id}/children)"
    )
    disposal: DisposalOut | None = Field(None, description="this episode's disposal record")
    disposal_due_ms: int | None = Field(None, description="disposal time limit; null: none")
    disposal_overdue_ms: int | None = Field(None, description="when it went overdue")
    disposal_overdue: bool = Field(False, description="past its disposal limit, not disposed")
    age_ms: int | None = Field(None, description="clock time since the last annunciation")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(
        None,
        max_length=100,
        description="ignored: the journal records the user of the bearer token",
        json_schema_extra={"deprecated": True},
    )
    comment: str | None = Field(None, max_length=2000)


def _exactly_one_end(schema: dict[str, Any]) -> None:
    # The document says what the handler checks: exactly one of until_ms and duration_s.
    for name in ("until_ms", "duration_s"):
        prop = schema["properties"][name]
        plain = next(s for s in prop.pop("anyOf") if s.get("type") == "integer")
        prop.update(plain)
        prop.pop("default", None)
    schema["oneOf"] = [{"required": ["until_ms"]}, {"required": ["duration_s"]}]


class ShelveIn(ActionIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_end)
    reason: str = Field(min_length=1, max_length=500)
    until_ms: int | None = Field(
        None,
        ge=0,
        le=MAX_MS,
        description="epoch ms, within the maximum shelve time from now; or give duration_s",
    )
    duration_s: int | None = Field(
        None, ge=1, le=MAX_SHELVE_S, description="seconds from now (at most the maximum, 8 h)"
    )


class OutOfServiceIn(ActionIn):
    reason: str = Field(min_length=1, max_length=500)


class JournalEntryOut(BaseModel):
    id: int = Field(description="journal sequence number (the alarm event's seq)")
    alarm_id: int | None
    key: str
    ts_ms: int
    event_ts_ms: int | None
    action: str
    from_state: AlarmState | None
    to_state: AlarmState | None
    user: str | None = Field(description="who: the operator, or null for the system")
    comment: str | None
    value: float | None
    priority: Priority | None
    raised_ms: int | None
    annunciated: bool


class Counts(BaseModel):
    total: int = Field(description="alarms in the alarm list (not normal, not hidden)")
    unacknowledged: int = Field(description="of those, waiting for acknowledgement")
    by_priority: dict[Priority, int]


class EnterpriseCounts(Counts):
    enterprise: str
    worst_tier: Tier | None


class HazardSourceCounts(Counts):
    hazard_source: str
    enterprise: str
    worst_tier: Tier | None


class SummaryOut(Counts):
    by_state: dict[AlarmState, int] = Field(
        description="every alarm not normal, hidden ones (shelved, suppressed, out of service) too"
    )
    by_enterprise: list[EnterpriseCounts]
    by_hazard_source: list[HazardSourceCounts]


class AlarmCountOut(BaseModel):
    alarm_id: int
    key: str
    alert: str
    count: int


class StandingOut(BaseModel):
    alarm_id: int
    key: str
    alert: str
    active_since_ms: int


class KpisOut(BaseModel):
    operator_position: str | None
    window_start_ms: int
    window_end_ms: int
    annunciations: int
    rate_per_10min: float
    rate_per_hour: float
    rate_per_day: float
    peak_10min: int
    flood_time_pct: float
    chattering: list[AlarmCountOut]
    standing: list[StandingOut]
    bad_actors: list[AlarmCountOut]
    priority_mix_pct: dict[str, float]
    acknowledgements: int
    mean_time_to_ack_ms: float | None
    median_time_to_ack_ms: float | None
    disposal: DisposalKpisOut


class FloodOut(BaseModel):
    start_ms: int
    end_ms: int | None
    peak_count: int
    alarm_count: int


def first_outs(service: AlarmService, alarms: Iterable[Alarm]) -> set[int]:
    out = set()
    for source in {a.hazard_source for a in alarms if a.hazard_source}:
        pinned = service.first_out(source)
        if pinned is not None:
            out.add(pinned.id)
    return out


def alarm_out(alarm: Alarm, pinned: set[int], service: AlarmService | None = None) -> AlarmOut:
    data = alarm.as_json()
    data["tier"] = TIERS[alarm.priority]
    data["first_out"] = alarm.id in pinned
    if service is not None:
        data.update(family(service, alarm))
        if alarm.raised_ms is not None:
            data["age_ms"] = max(0, service.clock.now_ms() - alarm.raised_ms)
    return AlarmOut.model_validate(data)


def family(service: AlarmService, alarm: Alarm) -> dict[str, Any]:
    """The alarm's place in a root-cause group: ``parent_id`` and ``children_count``."""
    parent = service.parent(alarm)
    return {
        "parent_id": None if parent is None else parent.id,
        "children_count": service.children_count(alarm),
    }


def _visible(service: AlarmService, principal: Principal, alarm_id: int) -> Alarm:
    """The alarm, or 404 when it does not exist or lies outside the user's scope."""
    try:
        alarm = service.get(alarm_id)
    except AlarmNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    if not principal.sees(alarm.enterprise):
        raise HTTPException(404, f"no alarm {alarm_id} in enterprise {principal.enterprise!r}")
    return alarm


def _act(
    service: AlarmService, principal: Principal, alarm_id: int, action: Callable[[], Alarm]
) -> AlarmOut:
    _visible(service, principal, alarm_id)
    try:
        alarm = action()
    except AlarmNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except IllegalTransition as exc:
        raise HTTPException(409, str(exc)) from None
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    return alarm_out(alarm, first_outs(service, [alarm]), service)


def _all(service: AlarmService, **filters: Any) -> list[Alarm]:
    return service.list(limit=10**9, offset=0, **filters)


@router.get(
    "",
    response_model=list[AlarmOut],
    summary="The alarm list, first-outs pinned first; paginated (total in X-Total-Count)",
    responses={
        200: {
            "headers": {
                "X-Total-Count": {
                    "description": "alarms matching the filters, before limit/offset",
                    "schema": {"type": "integer"},
                }
            }
        }
    },
)
def list_alarms(
    service: AlarmServiceDep,
    principal: PrincipalDep,
    response: Response,
    state: AlarmState | None = None,
    priority: Priority | None = None,
    enterprise: str | None = None,
    hazard_source: str | None = None,
    include_normal: bool = False,
    overdue: Annotated[
        bool | None, Query(description="true: only warnings past their disposal limit")
    ] = None,
    parent_id: Annotated[
        int | None,
        Query(ge=0, le=MAX_MS, description="only the alarms grouped under this one, any state"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[AlarmOut]:
    alarms = _all(
        service,
        state=state,
        priority=priority,
        enterprise=scoped_enterprise(principal, enterprise),
        hazard_source=hazard_source,
        include_normal=include_normal or parent_id is not None,
    )
    if parent_id is not None:
        alarms = _grouped_under(service, alarms, parent_id)
    if overdue is not None:
        alarms = [a for a in alarms if a.disposal_overdue == overdue]
    response.headers["X-Total-Count"] = str(len(alarms))
    page = alarms[offset : offset + limit]
    pinned = first_outs(service, page)
    return [alarm_out(a, pinned, service) for a in page]


def _grouped_under(service: AlarmService, alarms: list[Alarm], parent_id: int) -> list[Alarm]:
    """Those of ``alarms`` grouped under alarm ``parent_id`` (none if there is no such alarm)."""
    try:
        wanted = {a.id for a in service.children(parent_id)}
    except AlarmNotFound:
        return []
    return [a for a in alarms if a.id in wanted]


def _counts(alarms: list[Alarm]) -> dict[str, Any]:
    shown = [a for a in alarms if a.state in DISPLAYED_STATES]
    by_priority = Counter(a.priority for a in shown)
    return {
        "total": len(shown),
        "unacknowledged": sum(1 for a in shown if waits_for_ack(a)),
        "by_priority": {p: by_priority.get(p, 0) for p in Priority},
    }


@router.get(
    "/summary",
    response_model=SummaryOut,
    summary="Alarm counts by priority, state, enterprise and hazard source",
)
def summary(
    service: AlarmServiceDep, principal: PrincipalDep, enterprise: str | None = None
) -> SummaryOut:
    alarms = _all(service, enterprise=scoped_enterprise(principal, enterprise))
    by_state = Counter(a.state for a in alarms)
    per_enterprise: dict[str, list[Alarm]] = {}
    per_source: dict[tuple[str, str], list[Alarm]] = {}
    for a in alarms:
        if a.state not in DISPLAYED_STATES:
            continue
        per_enterprise.setdefault(a.enterprise, []).append(a)
        if a.hazard_source:
            per_source.setdefault((a.enterprise, a.hazard_source), []).append(a)
    return SummaryOut(
        **_counts(alarms),
        by_state={s: by_state.get(s, 0) for s in AlarmState if s is not AlarmState.NORMAL},
        by_enterprise=[
            EnterpriseCounts(enterprise=ent, worst_tier=worst_tier(items), **_counts(items))
            for ent, items in sorted(per_enterprise.items())
        ],
        by_hazard_source=[
            HazardSourceCounts(
                enterprise=ent, hazard_source=hs, worst_tier=worst_tier(items), **_counts(items)
            )
            for (ent, hs), items in sorted(per_source.items())
        ],
    )


@router.get(
    "/kpis",
    response_model=KpisOut,
    summary="ISA-18.2 KPIs over a window (default: the last 24 h); park-wide users only",
)
def kpis(
    service: AlarmServiceDep,
    principal: ParkWideDep,
    window_s: Annotated[int, Query(ge=60, le=366 * 86_400)] = 86_400,
    operator_position: str | None = None,
) -> KpisOut:
    result = service.kpis(operator_position=operator_position, window_ms=window_s * 1000)
    return KpisOut.model_validate(result.as_json())


@router.get(
    "/floods",
    response_model=list[FloodOut],
    summary="Flood episodes (> 10 alarms in 10 min until < 5); park-wide users only",
)
def floods(
    service: AlarmServiceDep, principal: ParkWideDep, operator_position: str | None = None
) -> list[FloodOut]:
    return [FloodOut.model_validate(f.as_json()) for f in service.floods(operator_position)]


def _scoped_journal(
    service: AlarmService, enterprise: str, since_ms: int | None, limit: int
) -> list[JournalEntry]:
    """The journal rows of one enterprise's alarms, with the same since/limit meaning."""
    rows: list[JournalEntry] = []
    for alarm in _all(service, enterprise=enterprise, include_normal=True):
        rows.extend(service.journal(alarm_id=alarm.id, since_ms=since_ms, limit=limit))
    rows.sort(key=lambda e: e.id)
    return rows[:limit] if since_ms is not None else rows[-limit:]


@router.get(
    "/journal",
    response_model=list[JournalEntryOut],
    summary="The alarm journal, oldest first: from since_ms the first `limit` rows, else the last",
)
def journal(
    service: AlarmServiceDep,
    principal: PrincipalDep,
    since_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[JournalEntryOut]:
    if principal.enterprise is not None:
        rows = _scoped_journal(service, principal.enterprise, since_ms, limit)
    else:
        rows = service.journal(since_ms=since_ms, limit=limit)
    return [JournalEntryOut.model_validate(e.as_json()) for e in rows]


@router.get("/{alarm_id}", response_model=AlarmOut, responses={404: error("no such alarm")})
def get_alarm(service: AlarmServiceDep, principal: PrincipalDep, alarm_id: int) -> AlarmOut:
    alarm = _visible(service, principal, alarm_id)
    return alarm_out(alarm, first_outs(service, [alarm]), service)


@router.get(
    "/{alarm_id}/children",
    response_model=list[AlarmOut],
    summary="The alarms grouped under this one (its root-cause consequences), any state, by id",
    responses={404: error("no such alarm")},
)
def alarm_children(
    service: AlarmServiceDep, principal: PrincipalDep, alarm_id: int
) -> list[AlarmOut]:
    _visible(service, principal, alarm_id)
    children = [a for a in service.children(alarm_id) if principal.sees(a.enterprise)]
    pinned = first_outs(service, children)
    return [alarm_out(a, pinned, service) for a in children]


@router.get(
    "/{alarm_id}/journal",
    response_model=list[JournalEntryOut],
    summary="Every transition of one alarm: who, when, why",
    responses={404: error("no such alarm")},
)
def alarm_journal(
    service: AlarmServiceDep, principal: PrincipalDep, alarm_id: int
) -> list[JournalEntryOut]:
    _visible(service, principal, alarm_id)
    rows = service.journal(alarm_id=alarm_id, limit=10_000)
    return [JournalEntryOut.model_validate(e.as_json()) for e in rows]


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: error("the body is not JSON"),
    403: error("a viewer: actions need an operator or admin"),
    404: error("no such alarm (or not in the user's enterprise)"),
    409: error("not allowed in the alarm's state"),
    413: error("the body is larger than SAFETY_HUB_API_MAX_BODY_BYTES"),
    422: error("bad input, named (quoting at most a slice of it)"),
    429: {
        **error("too many actions by this user"),
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    },
}


@router.post("/{alarm_id}/acknowledge", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def acknowledge(
    service: AlarmServiceDep, user: OperatorDep, alarm_id: int, body: ActionIn
) -> AlarmOut:
    return _act(
        service, user, alarm_id, lambda: service.acknowledge(alarm_id, user.user, body.comment)
    )


@router.post("/{alarm_id}/reset", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def reset(service: AlarmServiceDep, user: OperatorDep, alarm_id: int, body: ActionIn) -> AlarmOut:
    return _act(service, user, alarm_id, lambda: service.reset(alarm_id, user.user, body.comment))


@router.post("/{alarm_id}/shelve", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def shelve(
    service: AlarmServiceDep, clock: ClockDep, user: OperatorDep, alarm_id: int, body: ShelveIn
) -> AlarmOut:
    _visible(service, user, alarm_id)
    if (body.until_ms is None) == (body.duration_s is None):
        raise HTTPException(422, "give exactly one of until_ms and duration_s")
    until = body.until_ms
    if until is None:
        assert body.duration_s is not None
        until = clock.now_ms() + body.duration_s * 1000
    return _act(
        service,
        user,
        alarm_id,
        lambda: service.shelve(alarm_id, user.user, body.reason, until, body.comment),
    )


@router.post("/{alarm_id}/unshelve", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def unshelve(
    service: AlarmServiceDep, user: OperatorDep, alarm_id: int, body: ActionIn
) -> AlarmOut:
    return _act(
        service, user, alarm_id, lambda: service.unshelve(alarm_id, user.user, body.comment)
    )


@router.post("/{alarm_id}/out-of-service", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def out_of_service(
    service: AlarmServiceDep, user: OperatorDep, alarm_id: int, body: OutOfServiceIn
) -> AlarmOut:
    return _act(
        service,
        user,
        alarm_id,
        lambda: service.remove_from_service(alarm_id, user.user, body.reason, body.comment),
    )


@router.post("/{alarm_id}/return-to-service", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def return_to_service(
    service: AlarmServiceDep, user: OperatorDep, alarm_id: int, body: ActionIn
) -> AlarmOut:
    return _act(
        service,
        user,
        alarm_id,
        lambda: service.return_to_service(alarm_id, user.user, body.comment),
    )
