"""Dashboards as code: committed JSON is fresh, boards are valid Grafana models, thresholds
come from the registry and rule packs."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import build_all, check_all, default_json_dir, render, write_all
from dashboards.setpoints import tag_setpoints
from dashboards.validate import validate_dashboard
from safety_hub.cli import main
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules import RulePack, default_rules_path, load_rules

UIDS = {
    "safety-hub-park-overview",
    "safety-hub-hazard-source",
    "safety-hub-alarm-performance",
    "safety-hub-data-quality",
    "safety-hub-province",
}


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


@pytest.fixture(scope="module")
def pack(plant: Plant) -> RulePack:
    return load_rules(default_rules_path(), plant)


@pytest.fixture(scope="module")
def boards(plant: Plant, pack: RulePack) -> dict[str, dict[str, Any]]:
    return build_all(plant, pack)


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _override(panel: dict[str, Any], name: str) -> dict[str, Any]:
    for o in panel["fieldConfig"]["overrides"]:
        if o["matcher"]["options"] == name:
            return {p["id"]: p["value"] for p in o["properties"]}
    raise AssertionError(f"no override for {name} in {panel['title']}")


def _panel(board: dict[str, Any], title_part: str) -> dict[str, Any]:
    found = [p for p in _panels(board) if title_part in p["title"]]
    assert len(found) == 1, [p["title"] for p in _panels(board)]
    return found[0]


def test_committed_json_is_up_to_date(boards: dict[str, dict[str, Any]]) -> None:
    """CI fails when dashboards/json/ is not what the code generates (`dashboards check`)."""
    assert check_all(boards, default_json_dir()) == []
    assert main(["dashboards", "check"]) == 0


def test_check_fails_on_stale_missing_and_extra_files(
    tmp_path: Path, boards: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-edited, a missing or a leftover JSON file makes `check` exit 1; `build` fixes it."""
    out = tmp_path / "json"
    shutil.copytree(default_json_dir(), out)
    edited = out / "safety-hub-park-overview.json"
    board = json.loads(edited.read_text())
    board["title"] = "edited by hand"
    edited.write_text(render(board))
    (out / "safety-hub-data-quality.json").unlink()
    (out / "old-board.json").write_text("{}")
    assert main(["dashboards", "check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "safety-hub-park-overview.json: stale" in err and "edited by hand" in err
    assert "safety-hub-data-quality.json: missing" in err
    assert "old-board.json: no board has the uid" in err
    assert main(["dashboards", "build", "--out", str(out)]) == 0
    assert main(["dashboards", "check", "--out", str(out)]) == 0
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(UIDS)


def test_build_is_deterministic_and_only_rewrites_changes(
    tmp_path: Path, plant: Plant, pack: RulePack
) -> None:
    """Two builds give byte-identical JSON; an unchanged rebuild writes nothing."""
    first = write_all(build_all(plant, pack), tmp_path)
    assert len(first.written) == 5
    second = write_all(build_all(plant, pack), tmp_path)
    assert second.written == [] and len(second.unchanged) == 5


def test_boards_have_stable_uids_and_validate(boards: dict[str, dict[str, Any]]) -> None:
    """Every board is a valid dashboard model with its fixed uid."""
    assert set(boards) == UIDS
    for board in boards.values():
        assert validate_dashboard(board) == [], board["uid"]
        assert all(p["datasource"]["uid"] == "${datasource}" for p in _panels(board))


def test_hazard_source_board_has_the_template_variables(boards: dict[str, dict[str, Any]]) -> None:
    """enterprise -> hazard_source -> tag, chained by their queries."""
    variables = {v["name"]: v for v in boards["safety-hub-hazard-source"]["templating"]["list"]}
    assert set(variables) == {"datasource", "enterprise", "hazard_source", "tag"}
    assert "${enterprise:regex}" in variables["hazard_source"]["query"]
    assert "${hazard_source:regex}" in variables["tag"]["query"]
    assert variables["tag"]["multi"] and variables["tag"]["includeAll"]


def test_gas_and_tank_lines_are_the_alarm_setpoints(
    boards: dict[str, dict[str, Any]], plant: Plant
) -> None:
    """GT-1101's lines sit at its registry l1/l2, LT-1101's at L, H and HH."""
    board = boards["safety-hub-hazard-source"]
    gas = _override(_panel(board, "Gas concentration"), "e01-chloralkali/GT-1101")
    sp = plant.tags[("e01-chloralkali", "GT-1101")].setpoints
    steps = gas["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, sp["l1"], sp["l2"]]
    assert [s["color"] for s in steps] == ["green", "yellow", "red"]  # l2: 2oo3 leak is critical
    assert gas["unit"] == "ppm" and gas["displayName"].startswith("GT-1101 ")
    level = _override(_panel(board, "Tank level"), "e01-chloralkali/LT-1101")
    lt = plant.tags[("e01-chloralkali", "LT-1101")].setpoints
    assert [s["value"] for s in level["thresholds"]["steps"]] == [None, lt["l"], lt["h"], lt["hh"]]


def test_lines_follow_the_rules_not_just_the_registry(plant: Plant) -> None:
    """Without the tank rules a level tag gets no lines, although the registry has setpoints."""
    gas_only = load_rules(default_rules_path() / "gas.yaml", plant)
    lines = tag_setpoints(plant, gas_only)
    assert ("e01-chloralkali", "LT-1101") not in lines
    assert [s.key for s in lines[("e01-chloralkali", "GT-1101")]] == ["l1", "l2"]
    board = build_all(plant, gas_only)["safety-hub-hazard-source"]
    level = _override(_panel(board, "Tank level"), "e01-chloralkali/LT-1101")
    assert "thresholds" not in level


def test_validator_reports_broken_boards(boards: dict[str, dict[str, Any]]) -> None:
    """The model check is not a rubber stamp: each kind of breakage is named."""
    good = boards["safety-hub-park-overview"]
    cases = []

    bad = copy.deepcopy(good)
    panels = _panels(bad)
    panels[1]["id"] = panels[0]["id"]
    cases.append((bad, "is also the id of"))

    bad = copy.deepcopy(good)
    _panels(bad)[1]["gridPos"] = dict(_panels(bad)[0]["gridPos"])
    cases.append((bad, "overlaps"))

    bad = copy.deepcopy(good)
    _panels(bad)[0]["gridPos"]["x"] = 20
    cases.append((bad, "outside the 24-column grid"))

    bad = copy.deepcopy(good)
    _panels(bad)[0]["targets"][0]["query"] += " AND $nosuchvar"
    cases.append((bad, "$nosuchvar is used but not defined"))

    bad = copy.deepcopy(good)
    del _panels(bad)[0]["datasource"]
    cases.append((bad, "datasource: expected dict"))

    bad = copy.deepcopy(good)
    _panels(bad)[0]["fieldConfig"]["defaults"]["thresholds"]["steps"].append(
        {"color": "red", "value": -5}
    )
    cases.append((bad, "below the step before"))

    bad = copy.deepcopy(good)
    bad["uid"] = "no spaces allowed"
    cases.append((bad, "uid:"))

    bad = copy.deepcopy(good)
    bad["templating"]["list"].append(copy.deepcopy(bad["templating"]["list"][1]))
    cases.append((bad, "defined twice"))

    bad = copy.deepcopy(good)
    _panels(bad)[0]["targets"].append(copy.deepcopy(_panels(bad)[0]["targets"][0]))
    cases.append((bad, "used twice in the panel"))

    for board, expected in cases:
        problems = validate_dashboard(board)
        assert any(expected in p for p in problems), (expected, problems)
