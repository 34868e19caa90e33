"""PostgreSQL connector: the shared state of a redundant hub pair (issue 14).

``schema.migrate(url)`` brings a database to the current schema (yoyo-migrations, plain SQL files
in ``migrations/``, applied under yoyo's lock so two hubs starting together migrate once).
"""

from connectors.postgres.schema import (
    FENCED_SQLSTATE,
    StateSchemaError,
    migrate,
    pending_migrations,
    yoyo_url,
)

__all__ = ["FENCED_SQLSTATE", "StateSchemaError", "migrate", "pending_migrations", "yoyo_url"]
