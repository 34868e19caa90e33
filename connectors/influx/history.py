"""History reads through InfluxQL (``/query``): InfluxDB 1.x, 2.7+ (DBRP mapping) and 3.x."""

from __future__ import annotations

from typing import Any

import httpx

from safety_hub.errors import SafetyHubError
from safety_hub.ingest.lineproto import READING_MEASUREMENT
from safety_hub.ports import HistoryPoint


def influxql_string(value: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxQLHistory:
    def __init__(
        self,
        url: str,
        database: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self._http = httpx.Client(timeout=timeout_s, headers=headers, auth=auth)

    def query(self, influxql: str) -> dict[str, Any]:
        try:
            resp = self._http.get(
                f"{self.url}/query", params={"db": self.database, "q": influxql, "epoch": "ms"}
            )
        except httpx.HTTPError as exc:
            raise SafetyHubError(f"influx query: {self.url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise SafetyHubError(f"influx query: HTTP {resp.status_code}: {resp.text[:300]}")
        body: dict[str, Any] = resp.json()
        for result in body.get("results", []):
            if "error" in result:
                raise SafetyHubError(f"influx query: {result['error']}")
        return body

    def history(
        self,
        enterprise: str,
        tag: str,
        start_ms: int,
        end_ms: int,
        *,
        limit: int = 10_000,
        every_s: int | None = None,
    ) -> list[HistoryPoint]:
        where = (
            f'"enterprise" = {influxql_string(enterprise)} AND "tag" = {influxql_string(tag)} '
            f"AND time >= {start_ms}ms AND time < {end_ms}ms"
        )
        if every_s:
            q = (
                f'SELECT mean("value"), min("value"), max("value"), count("value") '
                f'FROM "{READING_MEASUREMENT}" WHERE {where} GROUP BY time({every_s}s) fill(none) '
                f"LIMIT {limit}"
            )
        else:
            q = (
                f'SELECT "value", "quality" FROM "{READING_MEASUREMENT}" WHERE {where} '
                f"ORDER BY time ASC LIMIT {limit}"
            )
        body = self.query(q)
        points: list[HistoryPoint] = []
        for result in body.get("results", []):
            for series in result.get("series", []) or []:
                for row in series.get("values", []):
                    if every_s:
                        points.append(
                            HistoryPoint(int(row[0]), row[1], None, row[2], row[3], int(row[4]))
                        )
                    else:
                        points.append(HistoryPoint(int(row[0]), row[1], row[2]))
        return points

    def close(self) -> None:
        self._http.close()
