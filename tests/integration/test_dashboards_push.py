"""`safety-hub dashboards push` against a small real HTTP server speaking the few Grafana API
endpoints it uses (folders, dashboards by uid, save): the requests are asserted, and a second
push changes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import FOLDER_UID, default_json_dir
from safety_hub.cli import main

pytestmark = pytest.mark.integration

TOKEN = "glsa_test_token"


@dataclass
class FakeGrafana:
    """Grafana's folder and dashboard API as far as `push` uses it, with its status codes."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, body))
            if method == "GET" and path.startswith("/api/folders/"):
                uid = path.removeprefix("/api/folders/")
                if uid not in self.folders:
                    return 404, {"message": "folder not found", "status": "not-found"}
                return 200, self.folders[uid]
            if method == "POST" and path == "/api/folders":
                uid = body.get("uid")
                if uid in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[uid] = {"id": self.next_id, "uid": uid, "title": body["title"]}
                self.next_id += 1
                return 200, self.folders[uid]
            if method == "GET" and path.startswith("/api/dashboards/uid/"):
                uid = path.removeprefix("/api/dashboards/uid/")
                if uid not in self.dashboards:
                    return 404, {"message": "Dashboard not found"}
                return 200, self.dashboards[uid]
            if method == "POST" and path == "/api/dashboards/db":
                board = dict(body["dashboard"])
                uid = board["uid"]
                folder = body.get("folderUid")
                if folder not in self.folders:
                    return 400, {"message": "folder not found"}
                old = self.dashboards.get(uid)
                if old is not None and not body.get("overwrite"):
                    return 412, {"status": "name-exists", "message": "exists"}
                board["id"] = old["dashboard"]["id"] if old else self.next_id
                board["version"] = (old["dashboard"]["version"] + 1) if old else 1
                self.next_id += old is None
                url = f"/d/{uid}/{uid}"
                self.dashboards[uid] = {
                    "dashboard": board,
                    "meta": {"folderUid": folder, "url": url, "version": board["version"]},
                }
                return 200, {
                    "id": board["id"],
                    "uid": uid,
                    "url": url,
                    "status": "success",
                    "version": board["version"],
                }
            return 404, {"message": f"not implemented: {method} {path}"}


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, answer = 401, {"message": "Unauthorized"}
            else:
                status, answer = state.handle(method, self.path, json.loads(raw) if raw else None)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def _committed() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(default_json_dir().glob("*.json"))}


def test_push_creates_folder_and_boards_then_is_a_no_op(
    grafana: tuple[str, FakeGrafana], capsys: pytest.CaptureFixture[str]
) -> None:
    """First push: folder + 5 saves with overwrite; second push: reads only, nothing saved."""
    url, state = grafana
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN]) == 0
    calls = [(m, p) for m, p, _ in state.requests]
    assert calls[:2] == [("GET", f"/api/folders/{FOLDER_UID}"), ("POST", "/api/folders")]
    saves = [body for m, p, body in state.requests if (m, p) == ("POST", "/api/dashboards/db")]
    committed = _committed()
    assert len(saves) == len(committed) == 5
    for body in saves:
        assert body["overwrite"] is True and body["folderUid"] == FOLDER_UID
        board = dict(body["dashboard"])
        assert board.pop("id") is None
        assert board == committed[board["uid"]]  # exactly the committed JSON
    assert set(state.dashboards) == set(committed)
    assert "5 changed" in capsys.readouterr().err

    state.requests.clear()
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN]) == 0
    methods = {m for m, _, _ in state.requests}
    assert methods == {"GET"}, state.requests  # nothing created, nothing saved
    assert all(d["dashboard"]["version"] == 1 for d in state.dashboards.values())
    assert "0 changed" in capsys.readouterr().err


def test_push_overwrites_a_board_changed_in_grafana(grafana: tuple[str, FakeGrafana]) -> None:
    """A board edited in Grafana (or in another folder) is put back by uid; the rest is left."""
    url, state = grafana
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN]) == 0
    uid = "safety-hub-park-overview"
    state.dashboards[uid]["dashboard"]["title"] = "edited in the UI"
    state.requests.clear()
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN]) == 0
    saves = [body for m, p, body in state.requests if (m, p) == ("POST", "/api/dashboards/db")]
    assert [s["dashboard"]["uid"] for s in saves] == [uid]
    assert state.dashboards[uid]["dashboard"]["title"] == _committed()[uid]["title"]
    assert state.dashboards[uid]["dashboard"]["version"] == 2
    assert not any(p == "/api/folders" for m, p, _ in state.requests if m == "POST")


def test_push_reports_refusal(
    grafana: tuple[str, FakeGrafana], capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong token: exit 1 with Grafana's answer, nothing written."""
    url, state = grafana
    assert main(["dashboards", "push", "--url", url, "--token", "wrong"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and f"folder {FOLDER_UID}" in err
    assert state.folders == {} and state.dashboards == {}
    assert Path(default_json_dir()).is_dir()
