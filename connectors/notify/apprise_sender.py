"""``AppriseSender``: delivers one rendered message through apprise (``ports.NotificationSender``).

One ``Apprise.notify`` per message, to the message's one contact point, in the calling thread
(apprise's ``async_mode`` off, its persistent store in memory only). What apprise does is left
to apprise; this module only adds to the contact's URL, through apprise's own URL arguments:

- ``cto``/``rto`` (connect and read timeouts), unless the URL sets them, so that a dead
  receiver blocks a send for seconds, not minutes;
- the notification id: ``+X-Safety-Hub-Notification=<id>`` (a header: an HTTP header of a
  json/form/xml webhook, a mail header of an email) and, for a JSON webhook,
  ``:notification_id=<id>`` (a field of the JSON body);
- ``format=text`` for an email, unless the URL sets a format (the message is plain text).

The whole send is bounded too (``notify(timeout=)``: twice the connect plus read timeout).

A failure raises ``NotificationError(channel, contact.redacted(), detail, retryable=...)``; the
detail is what apprise logged at warning level or above during this send (its own words, from
its ``AppriseResult.logs()``: the HTTP status, the connection error), with every secret part of
the URL scrubbed out. Not retryable: a URL apprise cannot use, an HTTP 4xx other than 408, 425
and 429.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlsplit

import apprise
from apprise.logger import LOGGER_NAME

from safety_hub.errors import NotificationError
from safety_hub.notify.contacts import OutgoingMessage

HEADER = "X-Safety-Hub-Notification"
"""The header that carries the notification id (receivers may de-duplicate on it)."""
BODY_FIELD = "notification_id"
"""The field of a JSON webhook's body that carries the notification id."""

_HEADER_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls", "mailto", "mailtos"})
_JSON_SCHEMES = frozenset({"json", "jsons"})
_EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})
_HTTP_STATUS = re.compile(r"error=(\d{3})")
_FAILURE_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
_PERMANENT_HTTP = frozenset(range(400, 500)) - {408, 425, 429}
"""HTTP answers after which sending the same message again cannot help."""


class _ThreadCapture(logging.Handler):
    """Collects the apprise log records of one thread (sends may run in several at once)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


class AppriseSender:
    """Sends through apprise; ``connect_timeout_s``/``read_timeout_s`` bound each attempt
    (apprise's ``cto``/``rto``) unless a contact URL sets its own."""

    def __init__(self, *, connect_timeout_s: float = 5.0, read_timeout_s: float = 10.0) -> None:
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("notification timeouts must be positive")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.call_timeout_s = 2 * (connect_timeout_s + read_timeout_s)
        """the whole send's limit (apprise's ``notify(timeout=)``): SMTP takes several
        round trips"""
        self.asset = apprise.AppriseAsset(
            async_mode=False, storage_mode=apprise.PersistentStoreMode.MEMORY
        )
        self.logger = logging.getLogger(LOGGER_NAME)
        if self.logger.getEffectiveLevel() > logging.WARNING:
            # the failure reason is read from apprise's warnings: they must be emitted
            self.logger.setLevel(logging.WARNING)

    def send(self, message: OutgoingMessage) -> None:
        contact = message.contact
        target = contact.redacted()
        try:
            url = self.prepared_url(message)
        except ValueError as exc:
            raise NotificationError(contact.channel, target, str(exc), retryable=False) from None
        client = apprise.Apprise(asset=self.asset)
        capture = _ThreadCapture()
        self.logger.addHandler(capture)
        try:
            added = client.add(url)
        finally:
            self.logger.removeHandler(capture)
        if not added:
            detail = _scrub("; ".join(capture.lines), contact.url) or "apprise cannot use it"
            raise NotificationError(
                contact.channel, target, f"not a usable apprise URL: {detail}", retryable=False
            )
        result = client.notify(
            body=message.body,
            title=message.title,
            notify_type=apprise.NotifyType.WARNING,
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self.call_timeout_s,
            log_level=logging.WARNING,
        )
        if result:
            return
        lines = [entry.message for entry in result.logs() if entry.level in _FAILURE_LEVELS]
        detail = _scrub("; ".join(dict.fromkeys(lines)), contact.url)
        if result.status == apprise.AppriseResultStatus.TIMEOUT:
            detail = f"no answer within {self.call_timeout_s:g} s" + (
                f" ({detail})" if detail else ""
            )
        status = _HTTP_STATUS.search(detail)
        retryable = not (status and int(status.group(1)) in _PERMANENT_HTTP)
        raise NotificationError(
            contact.channel, target, detail or "apprise reported a failure", retryable=retryable
        )

    def prepared_url(self, message: OutgoingMessage) -> str:
        """The contact's URL with the timeouts and the notification id added (apprise URL
        arguments); ``ValueError`` when it is not a URL."""
        url = message.contact.url
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ValueError("not a URL") from None
        scheme = parts.scheme.lower()
        if not scheme or "://" not in url:
            raise ValueError("not an apprise URL (scheme://...)")
        written = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
        extra: list[tuple[str, str]] = []
        if "cto" not in written:
            extra.append(("cto", f"{self.connect_timeout_s:g}"))
        if "rto" not in written:
            extra.append(("rto", f"{self.read_timeout_s:g}"))
        if scheme in _HEADER_SCHEMES:
            extra.append((f"+{HEADER}", message.notification_id))
        if scheme in _JSON_SCHEMES:
            extra.append((f":{BODY_FIELD}", message.notification_id))
        if scheme in _EMAIL_SCHEMES and "format" not in written:
            extra.append(("format", "text"))
        return _with_query(parts, extra)


def _with_query(parts: SplitResult, extra: list[tuple[str, str]]) -> str:
    """``parts`` with ``extra`` appended to the query (keys kept as written: apprise reads the
    leading ``+`` and ``:``)."""
    added = "&".join(f"{key}={quote(value, safe='')}" for key, value in extra)
    query = f"{parts.query}&{added}" if parts.query else added
    return parts._replace(query=query).geturl()


def _scrub(text: str, url: str) -> str:
    """``text`` without any secret part of ``url``: the whole URL, the password, and the parts
    where services keep tokens (the user, path segments and query values of 8 characters or
    more, and the host of a bot URL, ``dingtalk://{token}/``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "a failure (details withheld: the URL is malformed)" if text else text
    long = [parts.username or "", *(unquote(s) for s in parts.path.split("/"))]
    long += [value for _, value in parse_qsl(parts.query)]
    if parts.scheme.lower() not in _HEADER_SCHEMES:
        long.append(host)
    secrets = {s for s in long if len(s) >= 8}
    secrets.update(s for s in (url, parts.password or "") if s)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
