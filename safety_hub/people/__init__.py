"""People, roles and duty rosters: who a warning reaches (docs/people.md).

``load_people(path, enterprises)`` reads the people file (beside the plant registry), validates
it (every problem at once as ``file:line:col: message``, raised as ``PeopleError``) and returns
a ``PeopleDirectory``, which implements ``safety_hub.notify.contacts.Directory``
(``resolve``), answers ``on_duty`` and checks policy targets (``check_target``).
"""

from safety_hub.people.directory import OnDuty, PeopleDirectory
from safety_hub.people.loader import PARK, default_people_path, load_people, parse_people
from safety_hub.people.model import Override, Person, Roster, Shift, ShiftSlot
from safety_hub.people.schema import CHANNEL_SCHEMES, ENTERPRISE_ROLES, PARK_ROLES, ROLES

__all__ = [
    "CHANNEL_SCHEMES",
    "ENTERPRISE_ROLES",
    "PARK",
    "PARK_ROLES",
    "ROLES",
    "OnDuty",
    "Override",
    "PeopleDirectory",
    "Person",
    "Roster",
    "Shift",
    "ShiftSlot",
    "default_people_path",
    "load_people",
    "parse_people",
]
