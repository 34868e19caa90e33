"""A scenario's operator actions (``ack``, ``reset``, ``shelve``, ``unshelve``,
``out_of_service``, ``return_to_service``, ``dispose``) carried out on an alarm service, as the API would,
and checked against ``expect_refused``.

Used by replay (``safety_hub.runtime.replay``) and by a scenario played into the demo. The
caller holds whatever lock the hub needs around the service.
"""

from __future__ import annotations

from safety_hub.alarms import (
    Alarm,
    AlarmError,
    AlarmNotFound,
    AlarmService,
    IllegalTransition,
    InvalidAction,
)
from safety_hub.scenarios import schema as s
from safety_hub.scenarios.expectations import subject_keys
from safety_hub.scenarios.loader import Scenario

OperatorEvent = s.AnyOperatorEvent


def refusal_texts(exc: AlarmError) -> tuple[str, str]:
    """``code: reason`` and ``code: message`` of a refusal (``expect_refused`` may match
    either); the codes are those of the API's answers: ``illegal_transition`` (409),
    ``invalid_action`` (422), ``not_found`` (404)."""
    if isinstance(exc, IllegalTransition):
        code, reason = "illegal_transition", exc.reason
    elif isinstance(exc, InvalidAction):
        code, reason = "invalid_action", exc.reason
    elif isinstance(exc, AlarmNotFound):
        code, reason = "not_found", str(exc)
    else:
        code, reason = "refused", str(exc)
    return f"{code}: {reason}", f"{code}: {exc}"


def _targets(service: AlarmService, scenario: Scenario, e: OperatorEvent) -> list[Alarm]:
    """The existing alarms the action names: by key, or with ``alert: "*"`` every alarm of the
    subject (every alarm of the simulated enterprises without one)."""
    if e.alert != "*":
        keys = subject_keys(scenario, e) or []
        return [a for a in (service.find(k) for k in keys) if a is not None]
    ents = set(scenario.plant.enterprises) if e.enterprise is None else {e.enterprise}
    return [
        a
        for a in service.list(include_normal=True, limit=10**9)
        if a.enterprise in ents
        and (e.tag is None or a.tag == e.tag)
        and (e.zone is None or a.zone == e.zone)
        and (e.hazard_source is None or a.hazard_source == e.hazard_source)
    ]


def _act(service: AlarmService, alarm: Alarm, e: OperatorEvent, now_ms: int, speed: float) -> None:
    if isinstance(e, s.Acknowledge):
        service.acknowledge(alarm.id, e.user, e.comment)
    elif isinstance(e, s.Reset):
        service.reset(alarm.id, e.user, e.comment)
    elif isinstance(e, s.Shelve):
        until = now_ms + round(e.duration / speed)
        service.shelve(alarm.id, e.user, e.reason, until, e.comment)
    elif isinstance(e, s.Unshelve):
        service.unshelve(alarm.id, e.user, e.comment)
    elif isinstance(e, s.RemoveFromService):
        service.remove_from_service(alarm.id, e.user, e.reason, e.comment)
    elif isinstance(e, s.ReturnToService):
        service.return_to_service(alarm.id, e.user, e.comment)
    elif isinstance(e, s.Dispose):
        service.dispose(alarm.id, e.user, e.category, e.text)
    else:  # pragma: no cover - the schema lists every operator event
        raise TypeError(f"not an operator action: {e.type}")


def operate(
    service: AlarmService,
    scenario: Scenario,
    e: OperatorEvent,
    now_ms: int,
    *,
    speed: float = 1.0,
) -> list[str]:
    """Carry out ``e`` on every alarm it names; what went against the scenario, as texts.

    Without ``expect_refused`` a refusal (or no alarm to act on) is a problem; with it, the
    action must be refused on every alarm it names, each refusal's ``code: message``
    containing the expected text (case-insensitive). ``speed`` shortens a shelve's duration
    when the scenario plays faster than real time.
    """
    expected = e.expect_refused
    alarms = _targets(service, scenario, e)
    if not alarms:
        if e.alert == "*":
            text = "no such alarm exists (no alarm of that subject)"
        else:
            text = (
                f"no such alarm exists (keys tried: {', '.join(subject_keys(scenario, e) or [])})"
            )
        if expected is not None and expected.lower() in f"not_found: {text}".lower():
            return []
        return [f"{e.type} {e.alert}: {text}" + _wanted(expected)]
    problems: list[str] = []
    for alarm in alarms:
        before = alarm.state.value
        try:
            _act(service, alarm, e, now_ms, speed)
        except AlarmError as exc:
            texts = refusal_texts(exc)
            if expected is None:
                problems.append(f"{e.type} refused: {exc}")
            elif not any(expected.lower() in x.lower() for x in texts):
                problems.append(f"{e.type} refused with {texts[1]!r}{_wanted(expected)}")
            continue
        if expected is not None:
            after = service.get(alarm.id).state.value
            problems.append(
                f"expected {e.type} of {alarm.key} to be refused ({expected!r}); "
                f"it was carried out: {before} -> {after}"
            )
    return problems


def _wanted(expected: str | None) -> str:
    return "" if expected is None else f"; expected a refusal containing {expected!r}"
