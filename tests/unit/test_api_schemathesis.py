"""Schemathesis against the hub's own OpenAPI document: generated requests (valid and invalid)
on every operation never get a 5xx, and every answer conforms to the document (status code,
content type, headers, body schema); requests without the token are refused.

The app runs in-process (ASGI) on a local-mode hub with the embedded SQLite store and a few
alarms raised, so that ids, enterprises and tags in the examples can hit real data. The
event stream is included: schemathesis reads its first events and checks them against the
documented event schema (tests/integration/test_sse.py covers the stream in depth).
Fixed seed (derandomize) and bounded examples keep the run repeatable and short.

Compatibility: urllib3-future (grafana-client -> niquests) takes the place of urllib3 in this
environment, and its pool container has no ``keys()``; schemathesis reads it only to count
open network connections for its retry-on-dropped-connection logic, which has no meaning for
an in-process ASGI app. The shim below counts 0 when the container cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema
from schemathesis.transport import requests as st_requests

from safety_hub.api.app import create_app
from safety_hub.api.auth import Authenticator
from safety_hub.runtime.hub import Hub
from tests.unit.api_support import (
    ADMIN_TOKEN,
    E1,
    E2,
    NOW,
    make_hub,
    publish,
    users_file,
)

_count_opened_connections = st_requests._count_opened_connections


def _count_or_zero(session: object) -> int:
    try:
        return int(_count_opened_connections(session))  # type: ignore[arg-type]
    except AttributeError:
        return 0  # urllib3-future's pool container; no network connections in-process anyway


@pytest.fixture(scope="module", autouse=True)
def _urllib3_future_shim() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(st_requests, "_count_opened_connections", _count_or_zero)
        yield


@pytest.fixture(scope="module")
def seeded_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Path]]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    # Generous action limits: the fuzzer acts thousands of times as one user.
    hub = make_hub(tmp, action_burst=10_000, action_rate_per_min=60_000)
    publish(hub, E1, [{"tag": "GT-1101", "v": 0.9, "ts": NOW - 2000}])
    publish(hub, E2, [{"tag": "GT-2101", "v": 0.4, "ts": NOW - 1000}])
    yield hub, tmp
    hub.stop()


@pytest.fixture(scope="module")
def api_schema(seeded_hub: tuple[Hub, Path]) -> OpenApiSchema:
    hub, tmp = seeded_hub
    auth = Authenticator(
        admin_token=ADMIN_TOKEN, users_file=users_file(tmp), enterprises=hub.plant.enterprises
    )
    app = create_app(hub, auth=auth, manage_hub=False)
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20261128,
            "auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN_TOKEN}}},
            # The stream starts with a ping (then one every 15 s): its first event is enough.
            "max-stream-events": 1,
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate()
