"""A network partition of the active node (issue 14, item 5 and its proof): each hub of the pair
runs in its own Linux network namespace; the active node's link to the database and the broker
is taken down (its packets vanish: no error, no reset, silence). It steps down within its lease
time, the other takes over, and once the link is back the old node rejoins as standby.

The broker and PostgreSQL run on the host's loopback; relays listening on every address of the
host forward to them, so the namespaces reach them over their service link. The test watches
each node's API over a second link that stays up (tests/fixtures/netns.py).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.netns import NodeNamespace
from tests.fixtures.postgres import PostgresProcess
from tests.fixtures.tcprelay import TcpRelay
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.integration

LEASE_S = 4.0


def ready(hub: HubProcess) -> bool:
    try:
        return httpx.get(f"{hub.url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def node(
    tmp_path: Path,
    ns: NodeNamespace,
    name: str,
    mqtt_port: int,
    pg_port: int,
    pg_db: str,
    token: str,
) -> HubProcess:
    hub = HubProcess(
        tmp_path / name,
        {
            "SAFETY_HUB_MQTT_URL": f"mqtt://{ns.service_host}:{mqtt_port}",
            "SAFETY_HUB_HA": "on",
            "SAFETY_HUB_NODE_ID": name,
            "SAFETY_HUB_STATE_URL": f"postgresql://postgres@{ns.service_host}:{pg_port}/{pg_db}",
            "SAFETY_HUB_HA_LEASE_S": str(LEASE_S),
            "SAFETY_HUB_NOTIFY": "off",
            "SAFETY_HUB_API_HOST": "0.0.0.0",
            "SAFETY_HUB_ADMIN_TOKEN": token,
        },
        wrap=ns.command,
        host=ns.mgmt_address,
    )
    hub.env["SAFETY_HUB_API_PUBLIC_URL"] = hub.url
    return hub


def test_partitioned_active_node_steps_down_other_takes_over_healed_it_rejoins_as_standby(
    mosquitto: Any, postgres_private: PostgresProcess, tmp_path: Path
) -> None:
    db = postgres_private.create_database().rsplit("/", 1)[1]
    token = secrets.token_urlsafe(24)
    with (
        TcpRelay("127.0.0.1", mosquitto.port, host="0.0.0.0") as mqtt_relay,
        TcpRelay(postgres_private.host, postgres_private.port, host="0.0.0.0") as pg_relay,
        NodeNamespace("a", 1) as ns_a,
        NodeNamespace("b", 2) as ns_b,
    ):
        a = node(tmp_path, ns_a, "hub-a", mqtt_relay.port, pg_relay.port, db, token)
        b = node(tmp_path, ns_b, "hub-b", mqtt_relay.port, pg_relay.port, db, token)
        try:
            a.start()
            b.start(standby=True)
            token_a = a.ha()["token"]
            assert b.ha()["active_node"] == "hub-a"
            ns_a.partition()
            cut = time.monotonic()
            wait_for(lambda: not ready(a), LEASE_S + 10, "the partitioned node to answer 503")
            print(f"partitioned node stopped acting {time.monotonic() - cut:.2f} s after the cut")
            ha_a = a.ha()
            assert ha_a["role"] == "standby" and ha_a["token"] is None
            wait_for(lambda: ready(b), 30, "the other node to take over")
            print(f"other node active {time.monotonic() - cut:.2f} s after the cut")
            ha_b = b.ha()
            assert ha_b["role"] == "active" and ha_b["token"] > token_a
            b_connects = b.metric("safety_hub_mqtt_connects_total")
            ns_a.heal()
            wait_for(lambda: a.ha()["active_node"] == "hub-b", 60, "the healed node to see hub-b")
            wait_for(lambda: a.ha()["broker_reachable"] is True, 60, "the healed node's probe")
            assert a.ha()["role"] == "standby" and not ready(a)
            refused = a.post("/api/v1/alarms/1/acknowledge", {"comment": "to the old node"})
            assert refused.status_code == 409
            assert refused.json()["active_api_url"] == b.url
            assert b.ha()["role"] == "active" and ready(b)
            # the healed node never took b's MQTT sessions back (same client ids)
            assert b.metric("safety_hub_mqtt_connects_total") == b_connects
            step_downs = a.metrics_text()
            assert 'safety_hub_ha_step_downs_total{reason="lease_timeout"}' in step_downs or (
                'safety_hub_ha_step_downs_total{reason="broker_unreachable"}' in step_downs
            )
        finally:
            for hub in (a, b):
                hub.stop()
