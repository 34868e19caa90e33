"""A hub on an in-memory transport and the embedded store, its API with a set of users, and
helpers to publish readings: shared by the API tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from connectors.influx import SqliteStore
from safety_hub.api.app import create_app
from safety_hub.api.auth import Authenticator, Role, UserRecord, hash_token, write_users
from safety_hub.clock import VirtualClock
from safety_hub.ports import InboundMessage
from safety_hub.runtime.hub import Hub, Storage
from safety_hub.settings import load_settings
from tests.unit.fakes import MemorySource

NOW = 1_790_000_000_000
E1 = "e01-chloralkali"
E2 = "e02-sodium"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    enterprise: str | None

    @property
    def token(self) -> str:
        return f"token-of-{self.name}-0123456789abcdef"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


VIEWER = User("viewer1", Role.VIEWER, None)
OPERATOR = User("op1", Role.OPERATOR, None)
E1_OPERATOR = User("e1-op", Role.OPERATOR, E1)
E2_VIEWER = User("e2-viewer", Role.VIEWER, E2)
E2_OPERATOR = User("e2-op", Role.OPERATOR, E2)
USERS = (VIEWER, OPERATOR, E1_OPERATOR, E2_VIEWER, E2_OPERATOR)
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_hub(tmp_path: Path, **settings: object) -> Hub:
    store = SqliteStore(tmp_path / "readings.sqlite")
    return Hub(
        load_settings(data_dir=tmp_path, **settings),
        clock=VirtualClock(NOW),
        storage=Storage(store, store, "test store"),
        source=MemorySource(),
    )


def users_file(tmp_path: Path, users: tuple[User, ...] = USERS) -> Path:
    path = tmp_path / "users.yaml"
    write_users(
        path, [UserRecord(u.name, u.role, u.enterprise, hash_token(u.token)) for u in users]
    )
    return path


def make_app(hub: Hub, tmp_path: Path, *, ping_interval_s: float = 15.0) -> FastAPI:
    auth = Authenticator(
        admin_token=ADMIN_TOKEN,
        users_file=users_file(tmp_path),
        enterprises=hub.plant.enterprises,
    )
    return create_app(hub, auth=auth, ping_interval_s=ping_interval_s)


def publish(hub: Hub, enterprise: str, readings: list[dict[str, object]]) -> None:
    """Readings through the real ingest path, then drained into the store synchronously."""
    message = InboundMessage(
        f"hazard/v1/{enterprise}/telemetry", json.dumps({"readings": readings}).encode(), NOW
    )
    hub.ingest.process([message])
    hub.sink_worker._write(hub.spool.peek(10_000))
