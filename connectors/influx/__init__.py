"""InfluxDB connector: line-protocol sinks (v1, v2), InfluxQL history, and the embedded store."""

from connectors.influx.history import InfluxQLHistory, influxql_string
from connectors.influx.sink import InfluxV1Sink, InfluxV2Sink
from connectors.influx.sqlite_store import SqliteStore

__all__ = ["InfluxQLHistory", "InfluxV1Sink", "InfluxV2Sink", "SqliteStore", "influxql_string"]
