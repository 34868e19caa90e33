"""The private PostgreSQL fixture: a real cluster that keeps committed rows across a kill -9."""

from __future__ import annotations

import psycopg

from tests.fixtures.postgres import PostgresProcess


def test_a_fresh_database_per_test_is_empty_and_writable(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t VALUES (1, '氯气')")
        conn.commit()
        assert conn.execute("SELECT v FROM t WHERE id = 1").fetchone() == ("氯气",)


def test_committed_rows_survive_a_kill_and_restart(postgres_private: PostgresProcess) -> None:
    url = postgres_private.create_database("survivor")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE journal (seq bigint PRIMARY KEY)")
        conn.execute("INSERT INTO journal SELECT generate_series(1, 1000)")
        conn.commit()
    pid = postgres_private.pid
    postgres_private.kill()
    assert not postgres_private.running
    postgres_private.start()
    assert postgres_private.pid != pid
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*), max(seq) FROM journal").fetchone() == (1000, 1000)
