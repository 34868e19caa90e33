"""Exception hierarchy: one root, a few typed subclasses that carry context.

Messages name the thing, the key and the bad value, e.g.
``influx sink: write batch 42: HTTP 503``.
"""

from __future__ import annotations

from collections.abc import Sequence


class SafetyHubError(Exception):
    """Root of every error the hub raises on purpose."""


class ConfigError(SafetyHubError):
    """A setting is missing or has a bad value; names the variable and the value."""

    def __init__(self, variable: str, value: object, reason: str) -> None:
        self.variable = variable
        self.value = value
        self.reason = reason
        super().__init__(f"{variable}={value!r}: {reason}")


class LoadError(SafetyHubError):
    """A data file (plant registry, rule pack, scenario) failed validation.

    ``errors`` holds every problem found, each already formatted as
    ``path:line:col: message`` so that a user sees all of them at once.
    """

    def __init__(self, path: str, errors: Sequence[str]) -> None:
        self.path = path
        self.errors = list(errors)
        head = f"{path}: {len(self.errors)} error(s)"
        super().__init__(head + "\n" + "\n".join(self.errors))


class RegistryError(LoadError):
    """The plant registry file is invalid."""


class SinkError(SafetyHubError):
    """A storage sink could not take a batch.

    ``retryable`` is true for outages (5xx, network) and false for bad data (4xx).
    """

    def __init__(self, sink: str, detail: str, *, retryable: bool, status: int | None = None):
        self.sink = sink
        self.detail = detail
        self.retryable = retryable
        self.status = status
        super().__init__(f"{sink}: {detail}")


class NotificationError(SafetyHubError):
    """A notification channel refused a message or could not be reached.

    ``channel`` is the contact point's channel (email, webhook, ...), ``target`` its redacted
    URL; ``retryable`` is false when sending again cannot help (a malformed URL, a 4xx).
    """

    def __init__(self, channel: str, target: str, detail: str, *, retryable: bool = True):
        self.channel = channel
        self.target = target
        self.detail = detail
        self.retryable = retryable
        super().__init__(f"{channel} {target}: {detail}")


class PeopleError(LoadError):
    """The people and rosters file is invalid."""


class UplinkConfigError(LoadError):
    """The uplink configuration file is invalid."""


class UplinkError(SafetyHubError):
    """A destination of the uplink could not take records; ``retryable`` is false when
    sending them again cannot help (the platform refused the records themselves)."""

    def __init__(self, destination: str, detail: str, *, retryable: bool = True) -> None:
        self.destination = destination
        self.detail = detail
        self.retryable = retryable
        super().__init__(f"uplink {destination}: {detail}")


class BrokerError(SafetyHubError):
    """The MQTT broker could not be reached or refused us."""


class StateFileError(SafetyHubError):
    """A state file of the hub (spool, alarm journal, engine snapshot, outbox, local store) is
    damaged or unreadable. Names the file and what to do; the CLI exits with code 2."""

    def __init__(self, path: str, problem: str, advice: str) -> None:
        self.path = path
        self.problem = problem
        self.advice = advice
        super().__init__(f"{path}: {problem}. {advice}")


class DiskFullError(SafetyHubError):
    """A state file could not be written: its disk (or filesystem quota) is full."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{path}: {detail}")


class FencedError(SafetyHubError):
    """A write to the shared state was refused: this node's lease token is not current.

    The node may not write (another node is active, or its lease ran out); the caller stops
    acting as the active node. Never retried in a loop: only a new lease makes writes possible.
    """


class StateDatabaseError(SafetyHubError):
    """The state database (PostgreSQL) could not be reached or failed a statement.

    Names the store and the problem; nothing of the failed write was committed.
    """

    def __init__(self, store: str, detail: str) -> None:
        self.store = store
        self.detail = detail
        super().__init__(f"state database unreachable ({store}): {detail}")
