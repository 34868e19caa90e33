"""HTTP(S) JSON batches (docs/uplink.md, "HTTP batches"), through httpx.

``POST url`` with ``{"park": ..., "records": [{"dataId", "kind", "data"}, ...]}``:

- 2xx: every record of the batch delivered;
- 408, 429, 5xx, a timeout or a network error: nothing delivered, the batch is sent again
  after a backoff (same ``dataId``s);
- any other 4xx: the platform refuses the content. A batch of one record is refused for good
  (counted, logged, not sent again); a bigger batch is sent again record by record so that
  one bad record does not take the good ones with it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from safety_hub.uplink import OutRecord, SendOutcome
from safety_hub.uplink.schema import HttpModel

log = logging.getLogger("safety_hub.uplink.http")

RETRY_STATUSES = frozenset({408, 429})
_MAX_DETAIL = 300


class HttpBatchTransport:
    def __init__(self, config: HttpModel, park: str, token: str | None = None) -> None:
        self.config = config
        self.park = park
        self.description = f"POST {config.url}"
        headers = {"User-Agent": "safety-hub-uplink"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._client: httpx.Client | None = None  # made by the first send, again after close

    def _post(self, records: Sequence[OutRecord]) -> tuple[int | None, str]:
        body: dict[str, Any] = {
            "park": self.park,
            "records": [{"dataId": r.data_id, "kind": r.kind, "data": r.data} for r in records],
        }
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.timeout_s, headers=self._headers)
        try:
            response = self._client.post(self.config.url, json=body)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text[:_MAX_DETAIL]

    def send(self, records: Sequence[OutRecord]) -> SendOutcome:
        status, detail = self._post(records)
        if status is not None and 200 <= status < 300:
            return SendOutcome(len(records))
        if status is None or status >= 500 or status in RETRY_STATUSES:
            shown = "network" if status is None else f"HTTP {status}"
            return SendOutcome(0, error=f"{self.description}: {shown}: {detail}")
        if len(records) == 1:
            return SendOutcome(1, {0: f"HTTP {status}: {detail}"})
        return self._one_by_one(records)

    def _one_by_one(self, records: Sequence[OutRecord]) -> SendOutcome:
        rejected: dict[int, str] = {}
        for i, record in enumerate(records):
            status, detail = self._post([record])
            if status is not None and 200 <= status < 300:
                continue
            if status is None or status >= 500 or status in RETRY_STATUSES:
                shown = "network" if status is None else f"HTTP {status}"
                return SendOutcome(i, rejected, f"{self.description}: {shown}: {detail}")
            rejected[i] = f"HTTP {status}: {detail}"
        return SendOutcome(len(records), rejected)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
