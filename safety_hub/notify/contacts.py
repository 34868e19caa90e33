"""The contract between the people directory and notifications: a target names people (a role,
a duty roster, a person); the directory resolves it, for an enterprise and a moment, to the
recipients and their contact points.

Targets are written ``role:NAME``, ``roster:NAME`` or ``person:ID`` in notification policies.
A contact point's ``url`` is an apprise URL (``mailto://...``, ``json://...``, ``dingtalk://...``,
``wecom://...``, ``feishu://...``); it may hold a secret, so it is never logged or shown whole:
``redacted()`` is what logs and the API show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu", "sms")
TARGET_KINDS = ("role", "roster", "person")
HOST_SCHEMES = frozenset({"mailto", "mailtos", "json", "jsons", "form", "forms", "xml", "xmls"})
"""apprise schemes whose host part is a server's name; in every other (``dingtalk://{token}/``,
``wecombot://{key}``, ``feishu://{token}``) the host part is a secret."""


@dataclass(frozen=True, slots=True)
class ContactPoint:
    channel: str  # one of CHANNELS
    url: str  # an apprise URL; may hold a secret

    def redacted(self) -> str:
        """The URL's scheme and host only: what logs, errors and the API may show. The host
        only for the schemes of ``HOST_SCHEMES``: in a chat-bot URL (dingtalk, wecom, feishu)
        apprise's host part is the bot's token, so only the scheme is shown."""
        try:
            parts = urlsplit(self.url)
            host = parts.hostname or ""
        except ValueError:
            return "***"
        if parts.scheme.lower() not in HOST_SCHEMES:
            host = ""
        return f"{parts.scheme}://{host}/***" if parts.scheme else "***"


@dataclass(frozen=True, slots=True)
class Recipient:
    person_id: str
    name: str
    roles: tuple[str, ...]
    contacts: tuple[ContactPoint, ...]  # in the person's order of preference


class Directory(Protocol):
    """Who a target means for an alarm of ``enterprise`` (None: park-wide) at ``at_ms``.

    ``role:X``: every person with role X whose scope covers the enterprise (park-wide people
    cover all); ``roster:X``: whoever is on duty in roster X at that moment (shift changes by
    the roster's own time zone); ``person:ID``: that person. Unknown targets resolve to [] (the
    policy loader checks names against the directory, so this is not reached in practice).
    """

    def resolve(self, target: str, *, enterprise: str | None, at_ms: int) -> list[Recipient]: ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one contact point, rendered: what a `NotificationSender` delivers.

    ``notification_id`` is stable across retries and restarts (receivers may de-duplicate on it:
    a JSON webhook gets it in the body, an email in a ``X-Safety-Hub-Notification`` header).
    """

    notification_id: str
    contact: ContactPoint
    title: str
    body: str
