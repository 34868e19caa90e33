"""Load and validate a people and rosters file (docs/people.md).

Three passes, every problem of all three reported at once as ``file:line:col: message``
(``PeopleError``), like the plant registry:

1. YAML with positions (``safety_hub.yamlfile``);
2. the pydantic models (``schema``); a person or roster that holds an error is left out and
   the rest validated again;
3. what relates fields: unique ids, roles against the scope, enterprise codes against the
   plant registry, each contact URL's scheme against its channel, shifts that tile the day
   without gap or overlap, and the people named by the rota and the overrides.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from safety_hub.errors import PeopleError
from safety_hub.notify.contacts import ContactPoint
from safety_hub.people.directory import PeopleDirectory
from safety_hub.people.model import DAY_MIN, Override, Person, Roster, Shift, hhmm
from safety_hub.people.schema import (
    CHANNEL_SCHEMES,
    ENTERPRISE_ROLES,
    PARK_ROLES,
    ContactModel,
    PeopleDoc,
    PersonModel,
    RosterModel,
)
from safety_hub.yamlfile import (
    Located,
    Locator,
    PathNames,
    YamlPath,
    YamlSyntaxError,
    parse_document,
    show,
)

T = TypeVar("T")

PARK = "park"
"""The scope of a park-wide person."""

_PRUNABLE = frozenset({"people", "rosters", "overrides"})
PEOPLE_NAMES = PathNames({"people": "id", "rosters": "name", "contacts": "channel"})
"""Messages name the innermost entity: ``people[2] "p-duty-1"``, ``rosters[0] "park-duty"``."""


def default_people_path() -> Path:
    """The bundled sample (``safety_hub/plants/sample_people.yaml``), for the sample park."""
    return Path(__file__).resolve().parent.parent / "plants" / "sample_people.yaml"


def load_people(path: str | Path, enterprises: Collection[str] | None = None) -> PeopleDirectory:
    """Load a people file; ``enterprises`` are the plant's enterprise codes that scopes are
    checked against (None: not checked). Raises ``PeopleError`` listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PeopleError(file, [f"{file}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise PeopleError(
            file, [f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}"]
        ) from None
    return parse_people(text, file, enterprises)


def parse_people(
    text: str, file: str = "<people>", enterprises: Collection[str] | None = None
) -> PeopleDirectory:
    """Like ``load_people`` for text already in memory; ``file`` names it in messages."""
    try:
        document = parse_document(
            file,
            text,
            PeopleDoc,
            PEOPLE_NAMES,
            _PRUNABLE,
            empty="the file is empty",
            discriminator=None,
        )
    except YamlSyntaxError as exc:
        raise PeopleError(file, [exc.at(file)]) from None
    errors, doc = document.errors, document.model
    if doc is None:
        raise PeopleError(file, [text for *_, text in sorted(errors)])
    build = _Build(doc, document.loc, document.index_map, enterprises)
    errors.extend(build.errors)
    if errors:
        raise PeopleError(file, [text for *_, text in sorted(errors)])
    return PeopleDirectory(Path(file), build.people, build.rosters, doc.time_zone)


def _hint(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class _Build:
    """Pass 3: cross-field rules and the resolved people and rosters."""

    def __init__(
        self,
        doc: PeopleDoc,
        loc: Locator,
        index_map: dict[YamlPath, list[int]],
        enterprises: Collection[str] | None,
    ) -> None:
        self.doc = doc
        self.loc = loc
        self.index_map = index_map
        self.enterprises = enterprises
        self.errors: list[Located] = []
        self.people: dict[str, Person] = {}
        self.rosters: dict[str, Roster] = {}
        self._first: dict[tuple[str, str], YamlPath] = {}
        # ids as written, a person left out for an error of its own included: a roster naming
        # them gets no second error
        written = loc.data.get("people") if isinstance(loc.data, dict) else None
        self._written_ids: set[str] = {
            item["id"]
            for item in written or ()
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        }
        for p_path, person in self._items(("people",), doc.people):
            self._person(p_path, person)
        for r_path, roster in self._items(("rosters",), doc.rosters):
            self._roster(r_path, roster)

    def _items(self, list_path: YamlPath, seq: Sequence[T]) -> Iterator[tuple[YamlPath, T]]:
        original = self.index_map.get(list_path)
        for i, item in enumerate(seq):
            yield (*list_path, original[i] if original is not None else i), item

    def _error(self, path: YamlPath, message: str) -> None:
        self.errors.append(self.loc.at(path, message))

    def _unique(self, what: str, key: str, path: YamlPath) -> bool:
        first = self._first.get((what, key))
        if first is None:
            self._first[(what, key)] = path
            return True
        line, _ = self.loc.pos(first)
        self._error(path, f"duplicate {what} {show(key)} (first at line {line})")
        return False

    # people --------------------------------------------------------------------------------

    def _person(self, path: YamlPath, person: PersonModel) -> None:
        unique = self._unique("person id", person.id, (*path, "id"))
        scope = self._scope(path, person)
        for role in person.roles:
            if scope is not None and role in PARK_ROLES:
                self._error(
                    (*path, "roles"),
                    f"role {role} is park-wide: the person's scope must be {PARK!r}",
                )
            if scope is None and role in ENTERPRISE_ROLES:
                self._error(
                    (*path, "roles"),
                    f"role {role} belongs to an enterprise: scope the person to its "
                    "enterprise code(s), not the whole park",
                )
        contacts = []
        for c_path, contact in self._items((*path, "contacts"), person.contacts):
            problem = contact_problem(contact)
            if problem:
                self._error((*c_path, "url"), problem)
            contacts.append(ContactPoint(contact.channel, contact.url))
        if unique:
            self.people[person.id] = Person(
                id=person.id,
                name=person.name,
                roles=tuple(dict.fromkeys(person.roles)),
                enterprises=scope,
                contacts=tuple(contacts),
                name_en=person.name_en,
                title=person.title,
            )

    def _scope(self, path: YamlPath, person: PersonModel) -> frozenset[str] | None:
        codes = [person.scope] if isinstance(person.scope, str) else list(person.scope)
        if codes == [PARK]:
            return None
        if PARK in codes:
            self._error((*path, "scope"), f"{PARK!r} is the whole park: write it alone")
        for code in codes:
            if self.enterprises is not None and code != PARK and code not in self.enterprises:
                self._error(
                    (*path, "scope"),
                    f"unknown enterprise {show(code)}{_hint(code, self.enterprises)} "
                    f"(scope is {PARK!r} or enterprise codes of the plant registry)",
                )
        return frozenset(codes)

    # rosters -------------------------------------------------------------------------------

    def _roster(self, path: YamlPath, roster: RosterModel) -> None:
        unique = self._unique("roster", roster.name, (*path, "name"))
        shifts = self._shifts(path, roster)
        names = {s.name for s in shifts}
        cycle: list[dict[str, tuple[str, ...]]] = []
        for day, entry in enumerate(roster.rota.cycle):
            d_path = (*path, "rota", "cycle", day)
            for name in entry:
                if name not in names:
                    self._error((*d_path, name), f"unknown shift {show(name)}{_hint(name, names)}")
            for shift in shifts:
                staff = entry.get(shift.name)
                if not staff:
                    self._error(
                        d_path,
                        f"cycle day {day}: nobody on shift {shift.name} ({shift.label()})",
                    )
                    continue
                self._known_people((*d_path, shift.name), staff)
            cycle.append({name: tuple(entry.get(name, ())) for name in names})
        overrides: dict[tuple[date, str], Override] = {}
        for o_path, override in self._items((*path, "overrides"), roster.overrides):
            if override.shift not in names:
                self._error(
                    (*o_path, "shift"),
                    f"unknown shift {show(override.shift)}{_hint(override.shift, names)}",
                )
            self._known_people((*o_path, "people"), override.people)
            key = (override.date, override.shift)
            if key in overrides:
                self._error(
                    o_path,
                    f"a second override of shift {override.shift} on {override.date}",
                )
            overrides[key] = Override(tuple(override.people), override.reason)
        if unique:
            self.rosters[roster.name] = Roster(
                name=roster.name,
                title=roster.title,
                time_zone=roster.time_zone or self.doc.time_zone,
                shifts=tuple(shifts),
                anchor=roster.rota.anchor,
                cycle=tuple(cycle),
                overrides=overrides,
            )

    def _known_people(self, path: YamlPath, ids: Sequence[str]) -> None:
        known = self._written_ids
        for i, pid in enumerate(ids):
            if pid not in known:
                self._error((*path, i), f"unknown person {show(pid)}{_hint(pid, known)}")

    def _shifts(self, path: YamlPath, roster: RosterModel) -> list[Shift]:
        """The shifts in the order of the day; gaps and overlaps are errors."""
        seen: dict[str, int] = {}
        shifts: list[tuple[int, Shift]] = []
        for i, model in enumerate(roster.shifts):
            if model.name in seen:
                self._error((*path, "shifts", i, "name"), f"duplicate shift {show(model.name)}")
                continue
            seen[model.name] = i
            shifts.append((i, Shift(model.name, _minutes(model.start), _minutes(model.end))))
        shifts.sort(key=lambda item: item[1].start_min)
        for k, (i, shift) in enumerate(shifts):
            j, nxt = shifts[(k + 1) % len(shifts)]
            s_path = (*path, "shifts", i)
            if nxt is not shift and nxt.start_min == shift.start_min:
                self._error(
                    (*path, "shifts", j, "start"),
                    f"shift {nxt.name} starts at {hhmm(nxt.start_min)} like shift "
                    f"{shift.name}: shifts must not overlap",
                )
                continue
            gap = (nxt.start_min - shift.start_min) % DAY_MIN or DAY_MIN
            if shift.end_min == nxt.start_min:
                continue
            if shift.minutes > gap:
                self._error(
                    (*s_path, "end"),
                    f"shift {shift.name} ({shift.label()}) overlaps shift {nxt.name} "
                    f"(starts {hhmm(nxt.start_min)})",
                )
            else:
                self._error(
                    (*s_path, "end"),
                    f"gap from {hhmm(shift.end_min)} to {hhmm(nxt.start_min)} after shift "
                    f"{shift.name}: the shifts must cover the whole day",
                )
        return [shift for _, shift in shifts]


def contact_problem(contact: ContactModel) -> str | None:
    """What is wrong with a contact URL for its channel, or None. The message never quotes
    the URL beyond its scheme (it may hold a secret)."""
    schemes = CHANNEL_SCHEMES[contact.channel]
    url = contact.url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"not an apprise URL: write {schemes[0]}://... for channel {contact.channel}"
    if scheme.lower() not in schemes:
        return (
            f"scheme {scheme.lower()}:// does not fit channel {contact.channel}: use "
            + " or ".join(f"{s}://" for s in schemes)
        )
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return f"not a valid URL after {scheme}://"
    if not rest or not host:
        return f"{scheme}:// needs a host (or token) after the scheme"
    if any(ch.isspace() for ch in url):
        return "a URL must not contain spaces (percent-encode them)"
    return None
