"""The PostgreSQL state schema: migrations apply once, and the fencing function refuses stale tokens."""

from __future__ import annotations

import threading

import psycopg
import pytest

from connectors.postgres import FENCED_SQLSTATE, migrate, pending_migrations


def test_migrate_applies_everything_once_even_from_two_hubs_at_once(pg_url: str) -> None:
    assert pending_migrations(pg_url)  # a fresh database needs every migration
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(migrate(pg_url))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = sorted(results, key=len)
    assert applied[0] == []  # the second one found nothing left to do
    assert "0001_lease" in applied[1]
    assert pending_migrations(pg_url) == []
    assert migrate(pg_url) == []


def test_hub_fence_accepts_only_the_current_unexpired_token(pg_url: str) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO hub_lease VALUES ('active', 'hub-a', 7, now(), now(), "
            "now() + interval '10 seconds', NULL)"
        )
        conn.execute("SELECT hub_fence('active', 7)")  # current: no error
        for stale in (6, 8):
            with pytest.raises(psycopg.DatabaseError, match="fenced"):
                conn.execute("SELECT hub_fence('active', %s)", (stale,))
        conn.execute("UPDATE hub_lease SET expires_at = now() - interval '1 second'")
        with pytest.raises(psycopg.DatabaseError, match="fenced") as expired:
            conn.execute("SELECT hub_fence('active', 7)")
        assert expired.value.sqlstate == FENCED_SQLSTATE
        with pytest.raises(psycopg.DatabaseError, match="fenced"):
            conn.execute("SELECT hub_fence('standby-never-held', 1)")
