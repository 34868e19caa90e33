"""The role machine (safety_hub/runtime/ha.py) of two nodes in one process, on a real PostgreSQL:
never two acting at once, a clean stop hands over, a node whose database is gone stops acting
within its lease and its old token is refused by the fence."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry

from connectors.postgres import LeaseStore, migrate
from safety_hub.runtime.ha import HaNode, Role
from tests.fixtures.postgres import PostgresProcess
from tests.integration.hubproc import wait_for

LEASE_S = 2.0


class Recorder:
    """What the node asked its hub to do, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def activate(self) -> None:
        self.calls.append("act")

    def deactivate(self, reason: str) -> None:
        self.calls.append(f"stop: {reason}")


def make_node(url: str, name: str, recorder: Recorder, *, migrating: bool = False) -> HaNode:
    lease = LeaseStore(url, name, lease_s=LEASE_S, api_url=f"http://{name}", timeout_s=0.5)
    return HaNode(
        prepare=(lambda: migrate(url)) if migrating else None,
        node_id=name,
        lease=lease,
        probe=None,
        activate=recorder.activate,
        deactivate=recorder.deactivate,
        lease_s=LEASE_S,
        renew_s=LEASE_S / 4,
        broker_grace_s=1.0,
        registry=CollectorRegistry(),
    )


def watch_overlap(nodes: list[HaNode], stop: threading.Event, seen: list[Any]) -> None:
    """Sample the tokens: two nodes with a token at once would be split brain."""
    while not stop.wait(0.01):
        acting = [n.node_id for n in nodes if n.token is not None]
        seen.append(acting)


def test_one_acts_the_other_waits_and_a_clean_stop_hands_over(pg_url: str) -> None:
    migrate(pg_url)
    ra, rb = Recorder(), Recorder()
    a, b = make_node(pg_url, "node-a", ra), make_node(pg_url, "node-b", rb)
    stop, seen = threading.Event(), []
    sampler = threading.Thread(target=watch_overlap, args=([a, b], stop, seen), daemon=True)
    a.start()
    try:
        wait_for(lambda: a.role is Role.ACTIVE, 10, "a to act")
        b.start()
        sampler.start()
        wait_for(lambda: b.status().active_node == "node-a", 10, "b to see a")
        assert b.role is Role.STANDBY and b.token is None and rb.calls == []
        assert b.status().active_api_url == "http://node-a"
        a.stop()
        assert ra.calls == ["act", "stop: shutdown"]
        wait_for(lambda: b.role is Role.ACTIVE, 5, "b to take over after the release")
        wait_for(lambda: rb.calls == ["act"], 5, "b's acting parts started")  # role set first
    finally:
        stop.set()
        a.stop()
        b.stop()
    assert seen and all(len(acting) <= 1 for acting in seen)


def test_a_node_that_loses_its_database_stops_acting_within_its_lease(
    postgres_private: PostgresProcess,
) -> None:
    url = postgres_private.create_database()
    migrate(url)
    recorder = Recorder()
    node = make_node(url, "node-a", recorder)
    node.start()
    try:
        wait_for(lambda: node.role is Role.ACTIVE, 10, "the node to act")
        token = node.token
        assert token is not None
        postgres_private.stop()
        lost = time.monotonic()
        wait_for(lambda: node.token is None, LEASE_S + 5, "the token to be gone")
        print(f"token gone {time.monotonic() - lost:.2f} s after the database went")
        wait_for(lambda: node.role is Role.STANDBY, 5, "the node to step down")
        # the role says standby from the local lease's end; the watchdog stops the acting
        # parts right after (safety_hub/runtime/ha.py, ``role``)
        wait_for(
            lambda: recorder.calls[-1].startswith("stop: lease not renewed"),
            5,
            "the acting parts stopped",
        )
        assert node.status().last_error is not None
        postgres_private.start()

        # its term ends in the database too: at the lease's expiry (the database's clock), or
        # at once when the node takes a new term (the database may be back before either)
        def old_term_refused() -> bool:
            with psycopg.connect(url, autocommit=True) as conn:
                try:
                    conn.execute("SELECT hub_fence('active', %s)", (token,))
                except psycopg.DatabaseError:
                    return True
            return False

        wait_for(old_term_refused, LEASE_S + 15, "the old term to be fenced")
        # with the database back and nobody else, it competes and acts again in a new term
        wait_for(lambda: node.role is Role.ACTIVE, 15, "the node to act again")
        assert (node.token or 0) > token
        wait_for(lambda: recorder.calls[-1] == "act", 5, "the acting parts started")
    finally:
        node.stop()


def test_a_node_started_while_the_database_is_away_waits_as_standby_then_acts(
    postgres_private: PostgresProcess,
) -> None:
    url = postgres_private.create_database()  # empty: the node migrates it once it can
    postgres_private.stop()
    recorder = Recorder()
    node = make_node(url, "node-a", recorder, migrating=True)
    node.start()
    try:
        wait_for(lambda: node.status().last_error is not None, 10, "the node to say why it waits")
        assert node.role is Role.STANDBY and node.token is None and recorder.calls == []
        assert "not ready" in (node.status().last_error or "")
        postgres_private.start()
        wait_for(lambda: node.role is Role.ACTIVE, 30, "the node to migrate and act")
        assert recorder.calls == ["act"] and node.status().last_error is None
    finally:
        node.stop()
