"""Upload the boards to an existing Grafana through grafana-client, idempotently.

- The folder (uid ``safety-hub``) is created when it is missing.
- A board whose stored JSON already equals ours (ignoring Grafana's ``id`` and ``version``) in
  that folder is left alone (``unchanged``); any other is saved with ``overwrite: true`` by uid
  (``created`` or ``updated``). So a second push changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("dashboards.push")

IGNORED_KEYS = ("id", "version")


class PushError(RuntimeError):
    """Grafana refused a request; the message names the request and Grafana's answer."""


@dataclass(frozen=True)
class PushOutcome:
    uid: str
    action: str
    """``created``, ``updated`` or ``unchanged``"""
    url: str | None = None


def _comparable(board: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in board.items() if k not in IGNORED_KEYS}


def _getter(api: Any, uid: str) -> Callable[[], Any]:
    return lambda: api.dashboard.get_dashboard(uid)


def _saver(api: Any, body: dict[str, Any]) -> Callable[[], Any]:
    return lambda: api.dashboard.update_dashboard(body)


def push(
    url: str,
    token: str | None,
    boards: dict[str, dict[str, Any]],
    *,
    folder_uid: str,
    folder_title: str,
    timeout_s: float = 10.0,
    progress: Callable[[PushOutcome], None] | None = None,
) -> list[PushOutcome]:
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaClientError, GrafanaException

    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)

    def call(what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except GrafanaException as exc:
            raise PushError(f"grafana {url}: {what}: HTTP {exc.status_code} {exc.message}") from exc
        except Exception as exc:  # connection refused, DNS, timeouts
            raise PushError(f"grafana {url}: {what}: {type(exc).__name__}: {exc}") from exc

    def missing(what: str, fn: Callable[[], Any]) -> Any:
        """The answer, or None on 404."""
        try:
            return fn()
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise PushError(f"grafana {url}: {what}: HTTP {exc.status_code} {exc.message}") from exc
        except GrafanaException as exc:
            raise PushError(f"grafana {url}: {what}: HTTP {exc.status_code} {exc.message}") from exc
        except Exception as exc:
            raise PushError(f"grafana {url}: {what}: {type(exc).__name__}: {exc}") from exc

    folder = missing(f"get folder {folder_uid}", lambda: api.folder.get_folder(folder_uid))
    if folder is None:
        call(
            f"create folder {folder_uid}",
            lambda: api.folder.create_folder(folder_title, uid=folder_uid),
        )
        log.info("grafana folder created", extra={"folder": folder_uid})
    outcomes: list[PushOutcome] = []
    for uid, board in boards.items():
        current = missing(f"get dashboard {uid}", _getter(api, uid))
        if (
            current is not None
            and current.get("meta", {}).get("folderUid") == folder_uid
            and _comparable(current.get("dashboard", {})) == _comparable(board)
        ):
            outcome = PushOutcome(uid, "unchanged", current.get("meta", {}).get("url"))
        else:
            body = {
                "dashboard": {**board, "id": None},
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "safety-hub dashboards push",
            }
            answer = call(f"save dashboard {uid}", _saver(api, body))
            outcome = PushOutcome(
                uid, "created" if current is None else "updated", (answer or {}).get("url")
            )
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
