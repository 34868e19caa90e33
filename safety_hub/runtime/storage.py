"""Where the readings go: InfluxDB (v1 or v2) or the embedded SQLite store (``Storage``,
``build_storage``); the hub and the sink process (runtime/sink_process.py) build it alike."""

from __future__ import annotations

from dataclasses import dataclass

from safety_hub.ports import HistoryStore, LineSink
from safety_hub.settings import Settings


@dataclass(frozen=True)
class Storage:
    sink: LineSink
    history: HistoryStore
    description: str


def build_storage(settings: Settings) -> Storage:
    """InfluxDB (v1 or v2) when ``SAFETY_HUB_INFLUX_URL`` is set, else the embedded SQLite store."""
    from connectors.influx import InfluxQLHistory, InfluxV1Sink, InfluxV2Sink, SqliteStore

    # The connectors get the URL without user information: they quote it in errors and logs.
    endpoint = settings.influx_endpoint()
    if endpoint is None:
        store = SqliteStore(settings.data_dir / "readings.sqlite")
        return Storage(store, store, f"embedded SQLite store {store.path}")
    token = settings.influx_token.get_secret_value() if settings.influx_token else None
    if settings.influx_api == "v1":
        sink: LineSink = InfluxV1Sink(
            endpoint.url,
            settings.influx_bucket,
            username=endpoint.username,
            password=endpoint.password,
            timeout_s=settings.influx_timeout_s,
        )
    else:
        assert token is not None  # checked by Settings
        sink = InfluxV2Sink(
            endpoint.url,
            token=token,
            org=settings.influx_org,
            bucket=settings.influx_bucket,
            timeout_s=settings.influx_timeout_s,
        )
    history = InfluxQLHistory(
        endpoint.url,
        settings.influx_bucket,
        token=token if settings.influx_api == "v2" else None,
        username=endpoint.username,
        password=endpoint.password,
        timeout_s=settings.influx_timeout_s,
    )
    return Storage(sink, history, f"InfluxDB {settings.influx_api} at {endpoint.url}")
