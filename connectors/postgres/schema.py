"""The PostgreSQL state schema: migrations applied with yoyo-migrations.

Each file in ``migrations/`` is one migration, named ``NNNN_what.sql`` and applied in name order
(a file may name earlier ones with a ``-- depends:`` header). Applied migrations are recorded in
yoyo's own tables (``_yoyo_migration``, ``_yoyo_log``); a migration is never edited once it has
shipped, a change is a new file. ``migrate`` takes yoyo's lock (the ``yoyo_lock`` table), so two
hubs starting against an empty database apply each migration once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from yoyo import get_backend, read_migrations
from yoyo.exceptions import LockTimeout

log = logging.getLogger("safety_hub.postgres.schema")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_TIMEOUT_S = 30
FENCED_SQLSTATE = "SH001"
"""the SQLSTATE ``hub_fence`` raises: this node's lease token is not current (psycopg raises it
as a plain ``psycopg.DatabaseError``; tell it by ``exc.sqlstate``)"""


class StateSchemaError(RuntimeError):
    """The state database could not be brought to the current schema."""


def yoyo_url(url: str) -> str:
    """A libpq URL (``postgresql://``/``postgres://``) as yoyo names the psycopg 3 backend."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise StateSchemaError(f"not a PostgreSQL URL: {url.split('://', 1)[0]}://…")


def pending_migrations(url: str) -> list[str]:
    """Ids of the migrations not yet applied to the database at ``url``."""
    backend = get_backend(yoyo_url(url))
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]
    finally:
        backend.connection.close()


def migrate(url: str) -> list[str]:
    """Apply every pending migration under yoyo's lock; return the ids applied (maybe none)."""
    backend = get_backend(yoyo_url(url))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock(timeout=LOCK_TIMEOUT_S):
            todo = backend.to_apply(migrations)
            if todo:
                backend.apply_migrations(todo)
        applied = [m.id for m in todo]
    except LockTimeout as exc:
        raise StateSchemaError(
            f"another process held the migration lock for {LOCK_TIMEOUT_S} s ({exc}); "
            "if none runs, a crashed one left it: DELETE FROM yoyo_lock"
        ) from exc
    finally:
        backend.connection.close()
    if applied:
        log.info("state schema migrated", extra={"applied": applied})
    return applied
