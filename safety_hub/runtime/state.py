"""Where the hub keeps its state: SQLite files in a directory, or one PostgreSQL database
(``SAFETY_HUB_STATE_URL``; docs/storage.md, "State in PostgreSQL").

Part of the composition root: with ``runtime/hub.py``, one of the two modules of ``safety_hub``
that import ``connectors`` (the PostgreSQL stores, imported when the URL names a database).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safety_hub.alarms.journal import JournalStore
from safety_hub.errors import StateDatabaseError
from safety_hub.ingest.spool import Spool, SpoolStore
from safety_hub.runtime.alarm_runtime import SnapshotStore
from safety_hub.runtime.notify_outbox import NotificationOutbox, NotificationOutboxStore
from safety_hub.runtime.notify_wiring import OUTBOX_FILE
from safety_hub.runtime.outbox import Outbox, OutboxStore
from safety_hub.settings import Settings, redact_url
from safety_hub.uplink.queue import QUEUE_FILE, UplinkQueue, UplinkQueueStore

StateFence = Callable[[], int | None]
"""the active node's lease token now, or None (single node: writes are not fenced)"""


@dataclass(frozen=True)
class StateStores:
    """Where the hub keeps its state (docs/storage.md): SQLite files or one PostgreSQL database.
    ``journal``/``snapshots`` None: the alarm runtime opens its SQLite files in ``state_dir``."""

    spool: SpoolStore
    outbox: OutboxStore
    journal: JournalStore | None
    snapshots: SnapshotStore | None
    notify_outbox: Callable[[], NotificationOutboxStore]
    uplink_queue: Callable[[], UplinkQueueStore]
    """opens the uplink queue (called only when an uplink is configured)"""
    state_dir: Path
    description: str
    problem: Callable[[], str | None] = lambda: None  # "state database unreachable ..." or None
    # on_fenced(listener): listener(detail) whenever a write was refused by the fence
    on_fenced: Callable[[Callable[[str], None]], None] = lambda listener: None


def state_dir(settings: Settings) -> Path:
    """The directory of the SQLite state files: ``sqlite:///DIR``'s DIR, else the data dir."""
    url = settings.state_url
    if url and url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return settings.data_dir


def build_state(settings: Settings, fence: StateFence | None = None) -> StateStores:
    """SQLite files (the default) or, for a ``postgresql://`` state URL, the database brought to
    the current schema first (connectors/postgres)."""
    if settings.state_backend != "postgresql":
        where = state_dir(settings)
        where.mkdir(parents=True, exist_ok=True)
        spool = Spool(
            where / "spool.sqlite",
            max_readings=settings.spool_max_readings,
            max_bytes=settings.spool_max_bytes,
            sync=settings.spool_sync,
        )
        return StateStores(
            spool,
            Outbox(where / "outbox.sqlite"),
            None,
            None,
            lambda: NotificationOutbox(where / OUTBOX_FILE),
            # in the data dir, where ``safety-hub uplink status`` reads it
            lambda: UplinkQueue(settings.data_dir / QUEUE_FILE),
            where,
            f"SQLite files in {where}",
        )
    from connectors.postgres import migrate
    from connectors.postgres.journal import PgAlarmJournal
    from connectors.postgres.notify_outbox import PgNotificationOutbox
    from connectors.postgres.outbox import PgOutbox, PgSnapshotStore
    from connectors.postgres.spool import PgSpool
    from connectors.postgres.store import StateHealth
    from connectors.postgres.uplink_queue import PgUplinkQueue

    url = settings.state_url
    assert url is not None
    try:
        migrate(url)
    except Exception as exc:  # unreachable, refused, or a migration that failed
        detail = (str(exc).strip() or repr(exc)).splitlines()[0]
        raise StateDatabaseError("schema migration", redact_url(detail)) from exc
    health = StateHealth()
    common: dict[str, Any] = {"health": health, "fence": fence}
    return StateStores(
        PgSpool(
            url,
            max_readings=settings.spool_max_readings,
            max_bytes=settings.spool_max_bytes,
            **common,
        ),
        PgOutbox(url, **common),
        PgAlarmJournal(url, **common),
        PgSnapshotStore(url, **common),
        lambda: PgNotificationOutbox(url, **common),
        lambda: PgUplinkQueue(url, **common),
        settings.data_dir,
        f"PostgreSQL {redact_url(url)}",
        lambda: health.problem,
        health.on_fenced,
    )
