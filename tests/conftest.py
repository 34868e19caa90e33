"""Shared fixtures: private real servers (never mocks), started on free ports in temp dirs.

- ``mosquitto``: a fresh broker per test; ``mosquitto_factory(**kwargs)`` for users/ACLs/more.
- ``influxdb1``: one InfluxDB 1.6 per session; pair it with ``influx_db`` (a fresh database per
  test). ``influxdb1_private``: a server of the test's own, for kill/restart tests.
- ``victoria_metrics``: a fresh VictoriaMetrics per test.
- ``postgres``: one private PostgreSQL cluster per session (initdb in a temp dir, free port);
  pair it with ``pg_url`` (a fresh database per test). ``postgres_private``: a cluster of the
  test's own, for kill/restart/partition tests (tests/fixtures/postgres.py).
- ``smtp_receiver``, ``webhook_receiver``: a real SMTP server (aiosmtpd) and a real HTTP server
  collecting what notifications deliver, per test; ``stop()``/``start()`` take a channel down
  and up on the same port (tests/fixtures/receivers.py).

Every server is stopped at teardown even when the test fails, and a failing test's report gets
the tail of the log of each server it used.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.postgres import PostgresProcess
from tests.fixtures.processes import (
    InfluxDB1Process,
    MosquittoProcess,
    ServerProcess,
    VictoriaMetricsProcess,
    kill_all_servers,
)
from tests.fixtures.receivers import SmtpReceiver, WebhookReceiver

_SERVERS_KEY = pytest.StashKey[list[ServerProcess]]()

# The hubs of the suite (processes, which inherit this, and in-process ones) run the sink as a
# thread unless a test asks for the product's default, the sink in a process of its own: a
# child interpreter per hub would add about a minute of CPU to the suite. The no-loss tests
# (test_no_loss.py) and those of the child itself (test_sink_process.py) run the default.
os.environ.setdefault("SAFETY_HUB_SINK_PROCESS", "off")


def _track(request: pytest.FixtureRequest, server: ServerProcess) -> None:
    """Remember which servers a test used, so a failure report can show their logs."""
    request.node.stash.setdefault(_SERVERS_KEY, []).append(server)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        funcargs = getattr(item, "funcargs", {}).values()
        used = [
            *item.stash.get(_SERVERS_KEY, []),
            *(v for v in funcargs if isinstance(v, ServerProcess)),
        ]
        for server in dict.fromkeys(used):  # de-duplicated, in order
            report.sections.append((f"{server.name} log ({server.tmpdir})", server.log_tail(80)))
    return report


@pytest.hookimpl(trylast=True)  # after the session fixtures' own teardown
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    kill_all_servers()  # anything a crashed fixture left behind


def _started(server: ServerProcess) -> ServerProcess:
    try:
        return server.start()
    except BaseException:
        server.close()
        raise


# -- Mosquitto ---------------------------------------------------------------------------------


@pytest.fixture
def mosquitto_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., MosquittoProcess]]:
    """Start extra brokers: ``mosquitto_factory(users={"u": "p"}, acl_text=...)``; all stopped."""
    with contextlib.ExitStack() as closing:  # closes every broker even if one close() fails
        count = 0

        def make(**kwargs: Any) -> MosquittoProcess:
            nonlocal count
            broker = MosquittoProcess(tmp_path / f"mosquitto-{count}", **kwargs)
            count += 1
            closing.callback(broker.close)
            _track(request, broker)
            return broker.start()

        yield make


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., MosquittoProcess]) -> MosquittoProcess:
    """A fresh anonymous broker on a free port, persistence in the test's temp dir."""
    return mosquitto_factory()


# -- InfluxDB 1.x --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1Process]:
    """One InfluxDB 1.6 for the whole session; use ``influx_db`` for a database of your own."""
    server = InfluxDB1Process(tmp_path_factory.mktemp("influxdb1"))
    _started(server)
    yield server
    server.close()


@pytest.fixture
def influx_db(request: pytest.FixtureRequest, influxdb1: InfluxDB1Process) -> Iterator[str]:
    """Name of a database created for this test on the session ``influxdb1`` (dropped after)."""
    _track(request, influxdb1)
    if not influxdb1.running:  # a test killed the shared server: bring it back
        influxdb1.start()
    stem = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    name = f"t_{stem}_{uuid.uuid4().hex[:8]}"
    influxdb1.create_database(name)
    yield name
    if influxdb1.running:
        influxdb1.drop_database(name)


@pytest.fixture
def influxdb1_private(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InfluxDB1Process]:
    """An InfluxDB 1.6 of this test's own, free to kill and restart."""
    server = InfluxDB1Process(tmp_path / "influxdb1")
    _track(request, server)
    _started(server)
    yield server
    server.close()


# -- VictoriaMetrics -------------------------------------------------------------------------------


@pytest.fixture
def victoria_metrics(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[VictoriaMetricsProcess]:
    """A fresh VictoriaMetrics on a free port, storage in the test's temp dir."""
    server = VictoriaMetricsProcess(tmp_path / "victoria-metrics")
    _track(request, server)
    _started(server)
    yield server
    server.close()


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresProcess]:
    """One private PostgreSQL cluster for the whole session; use ``pg_url`` for a database."""
    server = PostgresProcess(tmp_path_factory.mktemp("postgres"))
    _started(server)
    yield server
    server.close()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, postgres: PostgresProcess) -> Iterator[str]:
    """URL of an empty database created for this test on the session cluster (dropped after)."""
    _track(request, postgres)
    if not postgres.running:  # a test stopped the shared cluster: bring it back
        postgres.start()
    url = postgres.create_database()
    yield url
    if postgres.running:
        postgres.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def postgres_private(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PostgresProcess]:
    """A PostgreSQL cluster of this test's own, free to kill, cut off and restart."""
    server = PostgresProcess(tmp_path / "postgres")
    _track(request, server)
    _started(server)
    yield server
    server.close()


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """A real SMTP server on a free port, collecting mails; stopped at teardown."""
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP server on a free port, collecting requests; stopped at teardown."""
    with WebhookReceiver() as receiver:
        yield receiver
