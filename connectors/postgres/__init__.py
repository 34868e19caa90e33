"""PostgreSQL connector: the shared state of a redundant hub pair (issue 14).

``schema.migrate(url)`` brings a database to the current schema (yoyo-migrations, plain SQL files
in ``migrations/``, applied under yoyo's lock so two hubs starting together migrate once); ``LeaseStore`` is the active-node
lease that decides which hub of a pair acts and gives it its fencing token.
"""

from connectors.postgres.lease import LEASE_NAME, Lease, LeaseError, LeaseStore
from connectors.postgres.schema import (
    FENCED_SQLSTATE,
    StateSchemaError,
    migrate,
    pending_migrations,
    yoyo_url,
)

__all__ = [
    "FENCED_SQLSTATE",
    "LEASE_NAME",
    "Lease",
    "LeaseError",
    "LeaseStore",
    "StateSchemaError",
    "migrate",
    "pending_migrations",
    "yoyo_url",
]
