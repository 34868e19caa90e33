"""The active-node lease against a real PostgreSQL: one holder at a time, expiry on the database's
clock, tokens that only grow, no renewal after expiry, a release that hands over at once."""

from __future__ import annotations

import threading

import psycopg
import pytest

from connectors.postgres import FENCED_SQLSTATE, migrate
from connectors.postgres.lease import LeaseError, LeaseStore
from connectors.postgres.store import IDLE_IN_TRANSACTION_TIMEOUT_MS, PgConnection
from safety_hub.errors import StateDatabaseError
from tests.fixtures.postgres import PostgresProcess
from tests.integration.hubproc import wait_for


def _pair(url: str, lease_s: float = 30.0) -> tuple[LeaseStore, LeaseStore]:
    migrate(url)
    a = LeaseStore(url, "hub-a", lease_s=lease_s, api_url="http://a:8080")
    b = LeaseStore(url, "hub-b", lease_s=lease_s, api_url="http://b:8080")
    return a, b


def _fence(url: str, token: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT hub_fence('active', %s)", (token,))


def test_two_contenders_one_holder_and_the_loser_sees_who(pg_url: str) -> None:
    a, b = _pair(pg_url)
    results: dict[str, object] = {}
    threads = [
        threading.Thread(target=lambda s=s: results.__setitem__(s.holder, s.acquire()))
        for s in (a, b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [name for name, lease in results.items() if lease is not None]
    assert len(winners) == 1, results
    loser = b if winners == ["hub-a"] else a
    seen = loser.read()
    assert seen is not None and seen.valid
    assert seen.holder == winners[0]
    assert seen.api_url == f"http://{winners[0][-1]}:8080"
    assert loser.acquire() is None  # still held: no
    a.close()
    b.close()


def test_expiry_lets_the_other_take_over_with_a_greater_token(pg_url: str) -> None:
    a, b = _pair(pg_url, lease_s=0.5)
    first = a.acquire()
    assert first is not None and first.token == 1
    _fence(pg_url, first.token)  # the holder's writes pass
    assert b.acquire() is None
    wait_for(lambda: not (lease := a.read()) or not lease.valid, 10, "the lease to expire")
    assert a.renew(first.token) is None  # expired is gone, even with nobody else on it
    second = b.acquire()
    assert second is not None and second.holder == "hub-b"
    assert second.token == first.token + 1
    with pytest.raises(psycopg.DatabaseError) as fenced:
        _fence(pg_url, first.token)  # the old holder's writes are refused
    assert fenced.value.sqlstate == FENCED_SQLSTATE
    _fence(pg_url, second.token)
    assert a.renew(first.token) is None  # and the old term never comes back
    a.close()
    b.close()


def test_tokens_only_grow_and_renew_keeps_the_term(pg_url: str) -> None:
    a, b = _pair(pg_url)
    tokens = []
    for store in (a, b, a, b):
        held = store.acquire()
        assert held is not None
        renewed = store.renew(held.token)
        assert renewed is not None and renewed.token == held.token
        assert renewed.expires_at >= held.expires_at
        tokens.append(held.token)
        assert store.release(held.token)
    assert tokens == sorted(tokens) and len(set(tokens)) == 4
    # a node that restarts under its own name starts a new term: its old self is fenced
    held = a.acquire()
    again = a.acquire()
    assert held is not None and again is not None and again.token == held.token + 1
    assert a.renew(held.token) is None
    a.close()
    b.close()


def test_release_hands_over_at_once_and_only_by_the_holder(pg_url: str) -> None:
    a, b = _pair(pg_url)  # 30 s leases: only the release can make this quick
    held = a.acquire()
    assert held is not None
    assert not b.release(held.token)  # not b's to release
    assert b.acquire() is None
    assert a.release(held.token)
    lease = b.read()
    assert lease is not None and not lease.valid
    taken = b.acquire()
    assert taken is not None and taken.holder == "hub-b" and taken.token == held.token + 1
    assert not a.release(held.token)  # a second release changes nothing
    assert (b.read() or taken).valid
    a.close()
    b.close()


def test_a_database_that_is_gone_raises_lease_error_and_reconnects(
    postgres_private: PostgresProcess,
) -> None:
    url = postgres_private.create_database()
    a, _ = _pair(url)
    held = a.acquire()
    assert held is not None
    postgres_private.stop()
    with pytest.raises(LeaseError):
        a.renew(held.token)
    postgres_private.start()
    wait_for(lambda: _renews(a, held.token), 30, "the renew to work again")
    a.close()


def _renews(store: LeaseStore, token: int) -> bool:
    try:
        return store.renew(token) is not None
    except LeaseError:
        return False


def _acquires(store: LeaseStore) -> bool:
    try:
        return store.acquire() is not None
    except LeaseError:  # waited on the row lock past the lease store's own timeout
        return False


def test_a_holder_stalled_in_the_middle_of_a_write_does_not_keep_the_lease_from_the_other(
    pg_url: str,
) -> None:
    """A fenced write transaction share-locks the lease row from its first statement to its end.
    The holder frozen (or cut off without a reset) in the middle of one must not keep that lock:
    the server ends the session, the other node takes the lease over, and the stalled write
    never commits."""
    a, b = _pair(pg_url, lease_s=1.0)
    held = a.acquire()
    assert held is not None
    writer = PgConnection(pg_url, "alarm journal", fence=lambda: held.token)
    inside, release = threading.Event(), threading.Event()
    outcome: dict[str, BaseException] = {}

    def stalled_write() -> None:
        try:
            with writer.transaction() as cur:  # hub_fence ran: the lease row is share-locked
                inside.set()
                release.wait(60)  # no next statement comes: the client is frozen or cut off
                cur.execute("SELECT 1")
        except BaseException as exc:  # the outcome is the assertion
            outcome["error"] = exc

    thread = threading.Thread(target=stalled_write, daemon=True)
    thread.start()
    assert inside.wait(10)
    wait_for(lambda: not (lease := b.read()) or not lease.valid, 10, "the lease to expire")
    wait_for(
        lambda: _acquires(b),
        IDLE_IN_TRANSACTION_TIMEOUT_MS / 1000 + 10,
        "the other node to take the lease over from the stalled holder",
    )
    release.set()
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), StateDatabaseError), outcome
    writer.close()
    a.close()
    b.close()
