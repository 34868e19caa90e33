"""The people and rosters file: validation with positions, roles and scopes, duty rosters and
the Directory contract."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from safety_hub.errors import PeopleError
from safety_hub.notify.contacts import ContactPoint
from safety_hub.people import PeopleDirectory, default_people_path, load_people, parse_people
from safety_hub.registry import default_plant_path, load_plant

SHANGHAI = ZoneInfo("Asia/Shanghai")
ENTERPRISES = {"e01-chloralkali", "e02-sodium"}

GOOD = """\
version: 1
people:
  - id: e01-safety
    name: 王建国
    roles: [enterprise_safety_officer]
    scope: e01-chloralkali
    contacts:
      - {channel: email, url: "mailto://smtp.example.com?to=a@example.com"}
  - id: e02-safety
    name: 李秀英
    roles: [enterprise_safety_officer]
    scope: [e02-sodium]
    contacts:
      - {channel: webhook, url: "json://hooks.example.com/e02"}
  - id: duty-a
    name: 赵磊
    roles: [park_duty_officer]
    scope: park
    contacts:
      - {channel: dingtalk, url: "dingtalk://TOKEN-A/"}
  - id: duty-b
    name: 孙丽
    roles: [park_duty_officer]
    scope: park
    contacts:
      - {channel: sms, url: "jsons://sms.example.com/send"}
rosters:
  - name: park-duty
    shifts:
      - {name: day, start: "08:00", end: "20:00"}
      - {name: night, start: "20:00", end: "08:00"}
    rota:
      anchor: 2026-01-05
      cycle:
        - {day: [duty-a], night: [duty-b]}
        - {day: [duty-b], night: [duty-a]}
    overrides:
      - {date: 2026-01-07, shift: night, people: [duty-b], reason: 调班}
"""


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=SHANGHAI).timestamp() * 1000)


def load(text: str = GOOD) -> PeopleDirectory:
    return parse_people(text, "people.yaml", ENTERPRISES)


def errors_of(text: str) -> list[str]:
    with pytest.raises(PeopleError) as info:
        load(text)
    return info.value.errors


def test_sample_file_loads_against_the_sample_park() -> None:
    plant = load_plant(default_plant_path())
    directory = load_people(default_people_path(), set(plant.enterprises))
    officers = directory.resolve("role:enterprise_safety_officer", enterprise=None, at_ms=0)
    assert officers == []  # enterprise people do not cover a park-wide alarm
    for code in plant.enterprises:
        found = directory.resolve("role:enterprise_safety_officer", enterprise=code, at_ms=0)
        assert len(found) == 1, code
    assert len(directory.resolve("role:park_duty_officer", enterprise=None, at_ms=0)) == 4
    assert [r.name for r in directory.resolve("role:regulator", enterprise="e02-sodium", at_ms=0)]
    assert directory.check_target("roster:park-duty") is None


def test_roles_cover_their_enterprise_and_park_wide_people_cover_all() -> None:
    d = load()
    e01 = d.resolve("role:enterprise_safety_officer", enterprise="e01-chloralkali", at_ms=0)
    assert [r.person_id for r in e01] == ["e01-safety"]
    assert e01[0].contacts[0].channel == "email"
    duty = d.resolve("role:park_duty_officer", enterprise="e01-chloralkali", at_ms=0)
    assert [r.person_id for r in duty] == ["duty-a", "duty-b"]
    assert d.resolve("person:duty-b", enterprise=None, at_ms=0)[0].name == "孙丽"
    assert d.resolve("person:nobody", enterprise=None, at_ms=0) == []
    assert d.resolve("roster:nothing", enterprise=None, at_ms=0) == []
    assert [p.id for p in d.visible_to("e02-sodium")] == ["e02-safety", "duty-a", "duty-b"]


def test_the_duty_officer_changes_at_0800_and_2000_shanghai_time() -> None:
    d = load()
    # 2026-01-05 is cycle day 0: day duty-a, night duty-b (until 08:00 on the 6th)
    assert d.on_duty("park-duty", ms(2026, 1, 5, 7, 59)).slot.people == ("duty-a",)  # day 1 night
    at_8 = d.on_duty("park-duty", ms(2026, 1, 5, 8, 0))
    assert (at_8.slot.shift, at_8.slot.people) == ("day", ("duty-a",))
    assert at_8.slot.start_ms == ms(2026, 1, 5, 8, 0)
    assert at_8.next.start_ms == ms(2026, 1, 5, 20, 0)
    assert at_8.next.people == ("duty-b",)
    at_3am = d.on_duty("park-duty", ms(2026, 1, 6, 3, 0))
    assert (at_3am.slot.shift, at_3am.slot.date.isoformat()) == ("night", "2026-01-05")
    assert at_3am.slot.end_ms == ms(2026, 1, 6, 8, 0)
    assert [
        r.person_id
        for r in d.resolve("roster:park-duty", enterprise=None, at_ms=ms(2026, 1, 6, 3, 0))
    ] == ["duty-b"]
    # the next day rotates: day duty-b
    assert d.on_duty("park-duty", ms(2026, 1, 6, 12, 0)).slot.people == ("duty-b",)
    # 2026-01-07 night would be duty-b by the cycle (day 2 = day 0) and is overridden to duty-b
    # anyway; 2026-01-08 night is cycle day 1: duty-a
    night7 = d.on_duty("park-duty", ms(2026, 1, 7, 23, 0)).slot
    assert night7.override is not None and night7.override.reason == "调班"
    assert d.on_duty("park-duty", ms(2026, 1, 8, 23, 0)).slot.people == ("duty-a",)


def test_an_override_swaps_a_shift() -> None:
    d = load(GOOD.replace("date: 2026-01-07, shift: night", "date: 2026-01-06, shift: day"))
    assert d.on_duty("park-duty", ms(2026, 1, 6, 9, 0)).slot.people == ("duty-b",)
    d2 = load(GOOD.replace("people: [duty-b], reason", "people: [duty-a], reason"))
    assert d2.on_duty("park-duty", ms(2026, 1, 7, 21, 0)).slot.people == ("duty-a",)


def test_every_error_has_its_position_and_a_hint() -> None:
    bad = (
        GOOD.replace("scope: e01-chloralkali", "scope: e01-chloralkaly")
        .replace(
            "roles: [park_duty_officer]\n    scope: park\n    contacts:\n      - {channel: sms",
            "roles: [park_duty_oficer]\n    scope: park\n    contacts:\n      - {channel: sms",
        )
        .replace('url: "json://hooks.example.com/e02"', 'url: "mailto://x.example.com"')
        .replace("night: [duty-b]}", "night: [duty-c]}")
        .replace("shift: night, people", "shift: nite, people")
    )
    errors = errors_of(bad)
    text = "\n".join(errors)
    assert (
        'people.yaml:6:5: people[0] "e01-safety": unknown enterprise "e01-chloralkaly"; did you mean \'e01-chloralkali\'?'
        in text
    )
    assert "did you mean 'park_duty_officer'" in text
    assert "scheme mailto:// does not fit channel webhook: use json:// or jsons://" in text
    assert (
        "unknown person \"duty-c\"; did you mean 'duty-a'?" in text
        or "did you mean 'duty-b'" in text
    )
    assert "unknown shift \"nite\"; did you mean 'night'?" in text
    assert all(e.startswith("people.yaml:") for e in errors)
    assert len(errors) == 5, errors


def test_gaps_and_overlaps_in_shifts_are_errors() -> None:
    gap = errors_of(GOOD.replace('end: "20:00"', 'end: "19:00"'))
    assert any("gap from 19:00 to 20:00 after shift day" in e for e in gap), gap
    overlap = errors_of(
        GOOD.replace('start: "20:00", end: "08:00"', 'start: "20:00", end: "09:00"')
    )
    assert any("shift night (20:00-09:00) overlaps shift day" in e for e in overlap), overlap
    unquoted = errors_of(GOOD.replace('start: "20:00", end', "start: 20:00, end"))
    assert any("quote it in YAML" in e for e in unquoted), unquoted


def test_roles_must_fit_the_scope_and_ids_be_unique() -> None:
    bad = GOOD.replace(
        "roles: [enterprise_safety_officer]\n    scope: e01-chloralkali",
        "roles: [regulator]\n    scope: e01-chloralkali",
    )
    assert any("role regulator is park-wide" in e for e in errors_of(bad))
    bad = GOOD.replace("- id: duty-b", "- id: duty-a")
    assert any('duplicate person id "duty-a" (first at line 15)' in e for e in errors_of(bad))
    bad = GOOD.replace("{day: [duty-b], night: [duty-a]}", "{day: [duty-b]}")
    assert any("cycle day 1: nobody on shift night (20:00-08:00)" in e for e in errors_of(bad))


def test_contact_errors_never_quote_the_url() -> None:
    bad = GOOD.replace('"dingtalk://TOKEN-A/"', '"json://s3cret-host/x"')
    errors = errors_of(bad)
    assert any("scheme json:// does not fit channel dingtalk" in e for e in errors)
    assert not any("s3cret" in e for e in errors)


def test_check_target_names_what_is_unknown() -> None:
    d = load()
    assert d.check_target("role:park_duty_officer") is None
    assert d.check_target("person:duty-a") is None
    assert "did you mean 'regulator'" in (d.check_target("role:regulatr") or "")
    assert d.check_target("role:regulator") == "nobody in people.yaml has role 'regulator'"
    assert "did you mean 'park-duty'" in (d.check_target("roster:park-dty") or "")
    assert "did you mean 'duty-a'" in (d.check_target("person:duty-aa") or "")
    assert "write one of role:NAME" in (d.check_target("group:x") or "")


def test_an_unreadable_file_is_a_people_error() -> None:
    with pytest.raises(PeopleError, match="cannot read"):
        load_people("/nonexistent/people.yaml")
    with pytest.raises(PeopleError, match=r"people\.yaml:1:1: the file is empty"):
        parse_people("", "people.yaml")


def test_redacted_contacts_hide_passwords_and_bot_tokens() -> None:
    mail = ContactPoint("email", "mailtos://user:s3cret@smtp.example.com?to=a@example.com")
    assert mail.redacted() == "mailtos://smtp.example.com/***"
    bot = ContactPoint("dingtalk", "dingtalk://SECRET@BOT-TOKEN/")
    assert bot.redacted() == "dingtalk:///***"
    assert "TOKEN" not in ContactPoint("wecom", "wecombot://BOT-TOKEN").redacted()
    assert ContactPoint("webhook", "json://[::1/x").redacted() == "***"
