"""``safety-hub plant generate``: registries of any size that load, validate and compile."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from safety_hub.cli import main
from safety_hub.registry import load_plant
from safety_hub.rules import default_rules_path, load_rules
from simulators.plantgen import PRESETS, PlantShape, write

GAS_KINDS = {"toxic_gas", "combustible_gas"}


def test_the_seed_preset_has_the_seed_park_shape_and_runs_with_the_shipped_rules(
    tmp_path: Path,
) -> None:
    plant = load_plant(write(PRESETS["seed"], tmp_path))
    assert len(plant.enterprises) == 28
    assert sum(h.computed_grade in (1, 2) for h in plant.hazard_sources.values()) == 19
    kinds = Counter(t.kind for t in plant.tags.values())
    assert sum(kinds[k] for k in GAS_KINDS) == 281
    assert len(plant.tags) == 1_100
    assert kinds["level"] and kinds["pressure"] and kinds["temperature"] and kinds["flow"]
    pack = load_rules(default_rules_path(), plant)
    assert pack.rules


def test_a_shape_is_generated_exactly_and_the_same_each_time(tmp_path: Path) -> None:
    shape = PlantShape(7, 303, 50, 17, 5, "shape-park")
    path = write(shape, tmp_path / "a")
    plant = load_plant(path)
    assert plant.park_code == "shape-park"
    assert (len(plant.enterprises), len(plant.tags), len(plant.hazard_sources)) == (7, 303, 17)
    assert sum(t.kind in GAS_KINDS for t in plant.tags.values()) == 50
    grades = Counter(h.computed_grade for h in plant.hazard_sources.values())
    assert grades[1] + grades[2] == 5 and grades[1] and grades[2]
    assert all(h.computed_grade == h.filed_grade for h in plant.hazard_sources.values())
    assert write(shape, tmp_path / "b").read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    "shape",
    [
        PlantShape(0, 10, 0, 1, 0),
        PlantShape(2, 10, 9, 2, 0),  # no room beside the SIS statuses
        PlantShape(2, 10, 0, 1, 0),  # fewer hazard sources than enterprises
        PlantShape(2, 10, 0, 2, 3),
    ],
)
def test_impossible_shapes_are_refused(shape: PlantShape) -> None:
    with pytest.raises(ValueError, match="plant:"):
        shape.check()


def test_the_command_writes_a_checked_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["plant", "generate", "--enterprises", "3", "--tags", "60", "--out", str(tmp_path)])
        == 0
    )
    err = capsys.readouterr().err
    assert "3 enterprises" in err and "60 tags" in err and "loaded and validated" in err
    assert len(load_plant(tmp_path / "plant.yaml").tags) == 60
    assert main(["plant", "generate", "--tags", "2", "--out", str(tmp_path / "x")]) == 2
    assert "gas detectors must fit" in capsys.readouterr().err


def test_the_command_says_how_to_use_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["plant", "generate", "--help"])
    out = capsys.readouterr().out
    for option in ("--preset", "--enterprises", "--tags", "--gas-detectors", "--out"):
        assert option in out
