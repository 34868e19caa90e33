"""Build every board, write ``dashboards/json/<uid>.json``, check that the committed JSON is fresh."""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboards.boards import BOARDS
from dashboards.validate import validate_dashboard
from safety_hub.registry import Plant
from safety_hub.rules import RulePack

log = logging.getLogger("dashboards.build")

FOLDER_UID = "safety-hub"
FOLDER_TITLE = "safety-hub"
"""the Grafana folder the boards go in (provisioning and ``push`` alike)"""


def default_json_dir() -> Path:
    return Path(__file__).resolve().parent / "json"


def render(board: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, UTF-8 as is, a final newline."""
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all(plant: Plant, pack: RulePack) -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON of every board, each validated against the dashboard model."""
    out: dict[str, dict[str, Any]] = {}
    for module in BOARDS:
        board = module.build(plant, pack).to_json()
        problems = validate_dashboard(board)
        if problems:
            raise ValueError(
                f"board {board.get('uid')!r} is not a valid dashboard: " + "; ".join(problems)
            )
        if board["uid"] in out:
            raise ValueError(f"two boards share the uid {board['uid']!r}")
        out[board["uid"]] = board
    return out


@dataclass
class BuildResult:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def write_all(boards: dict[str, dict[str, Any]], out_dir: Path) -> BuildResult:
    """Write each board as ``<uid>.json``; remove JSON files of boards that no longer exist."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = BuildResult()
    for uid, board in boards.items():
        path = out_dir / f"{uid}.json"
        text = render(board)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            result.unchanged.append(path)
            continue
        path.write_text(text, encoding="utf-8")
        result.written.append(path)
    for path in sorted(out_dir.glob("*.json")):
        if path.stem not in boards:
            path.unlink()
            result.removed.append(path)
    return result


def check_all(boards: dict[str, dict[str, Any]], out_dir: Path) -> list[str]:
    """Problems that make the committed JSON stale: missing, different or extra files."""
    problems: list[str] = []
    for uid, board in boards.items():
        path = out_dir / f"{uid}.json"
        want = render(board)
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        have = path.read_text(encoding="utf-8")
        if have != want:
            diff = list(
                difflib.unified_diff(
                    have.splitlines(), want.splitlines(), "committed", "generated", lineterm="", n=1
                )
            )
            shown = "\n".join(diff[:20]) + ("\n..." if len(diff) > 20 else "")
            problems.append(f"{path}: stale ({len(diff)} diff lines)\n{shown}")
    problems += [
        f"{path}: no board has the uid {path.stem!r} (remove it or rebuild)"
        for path in sorted(out_dir.glob("*.json"))
        if path.stem not in boards
    ]
    return problems
