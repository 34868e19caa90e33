"""InfluxDB sinks: the same line protocol, only the last POST differs.

- ``InfluxV2Sink``: InfluxDB 2.x/3.x ``/api/v2/write`` through influxdb-client (token, org,
  bucket). Also what VictoriaMetrics accepts.
- ``InfluxV1Sink``: InfluxDB 1.x ``/write?db=`` (creates the database on first use).

Both raise :class:`SinkError`: ``retryable`` for outages (5xx, 429, network), not for bad data
(other 4xx), so the worker retries the first and dead-letters the second.
"""

from __future__ import annotations

import logging

import httpx

from safety_hub.errors import SinkError

log = logging.getLogger("connectors.influx")


def _is_retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def _body(text: str) -> str:
    text = text.strip().replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


class InfluxV1Sink:
    name = "influx-v1"

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        retention: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.retention = retention
        auth = (username, password or "") if username else None
        self._http = httpx.Client(timeout=timeout_s, auth=auth)
        self._db_checked = False
        self._batch = 0

    def _ensure_database(self) -> None:
        # CREATE DATABASE is idempotent in InfluxDB 1.x.
        resp = self._http.post(
            f"{self.url}/query", data={"q": f'CREATE DATABASE "{self.database}"'}
        )
        if resp.status_code != 200:
            raise SinkError(
                self.name,
                f"create database {self.database!r}: HTTP {resp.status_code} {_body(resp.text)}",
                retryable=_is_retryable(resp.status_code),
                status=resp.status_code,
            )
        self._db_checked = True

    def write(self, lines: str) -> None:
        self._batch += 1
        try:
            if not self._db_checked:
                self._ensure_database()
            params = {"db": self.database, "precision": "ms"}
            if self.retention:
                params["rp"] = self.retention
            resp = self._http.post(f"{self.url}/write", params=params, content=lines.encode())
        except httpx.HTTPError as exc:
            raise SinkError(
                self.name, f"write batch {self._batch}: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if resp.status_code == 204:
            return
        if resp.status_code == 404 and "database not found" in resp.text:
            self._db_checked = False
        raise SinkError(
            self.name,
            f"write batch {self._batch}: HTTP {resp.status_code} {_body(resp.text)}",
            retryable=_is_retryable(resp.status_code) or resp.status_code == 404,
            status=resp.status_code,
        )

    def close(self) -> None:
        self._http.close()


class InfluxV2Sink:
    name = "influx-v2"

    def __init__(
        self, url: str, *, token: str, org: str | None, bucket: str, timeout_s: float = 10.0
    ) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org or "-"
        self._client = InfluxDBClient(
            url=self.url, token=token, org=self.org, timeout=int(timeout_s * 1000), retries=0
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._batch = 0

    def write(self, lines: str) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        self._batch += 1
        try:
            self._write_api.write(
                bucket=self.bucket,
                org=self.org,
                record=lines,
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            raise SinkError(
                self.name,
                f"write batch {self._batch}: HTTP {status} {_body(str(exc.body or exc.reason))}",
                retryable=status == 0 or _is_retryable(status),
                status=status,
            ) from exc
        except Exception as exc:  # urllib3 connection errors and timeouts: an outage
            raise SinkError(
                self.name, f"write batch {self._batch}: {type(exc).__name__}: {exc}", retryable=True
            ) from exc

    def close(self) -> None:
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]
