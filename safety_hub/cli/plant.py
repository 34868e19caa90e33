"""``safety-hub plant generate``: a plant registry of any size for load tests and benchmarks
(simulators/plantgen.py, imported when the command runs)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from safety_hub.cli.common import EXIT_OK, EXIT_USAGE, Subparsers

PRESET_NAMES = ("seed", "province")


def register(sub: Subparsers) -> None:
    plant = sub.add_parser(
        "plant",
        help="generate a plant registry of a given size (load tests, benchmarks)",
        description="Plant registries for load tests and benchmarks (docs/registry.md).",
    )
    plant_sub = plant.add_subparsers(dest="plant_command", metavar="ACTION", required=True)
    gen = plant_sub.add_parser(
        "generate",
        help="write OUT/plant.yaml: a valid registry of N enterprises and M tags",
        description="Write OUT/plant.yaml, a registry that passes validation and runs with the "
        "shipped rule packs: enterprises with hazard sources of GB 18218 grades 1-4, Cl2 and "
        "methanol gas detectors, level/pressure/temperature/flow tags and an SIS status each. "
        "Presets: seed (the seed document's park: 28 enterprises, 19 grade-1/2 hazard sources, "
        "281 gas detectors, 1,100 tags) and province (500 enterprises, 50,000 tags); options "
        "override a preset's figures. The file is checked by loading it; run the hub on it "
        "with SAFETY_HUB_PLANT=OUT/plant.yaml (no people file: nobody is notified). The "
        "sample park itself is safety_hub/plants/sample_park.yaml.",
    )
    gen.add_argument("--preset", choices=PRESET_NAMES, help="start from this park's figures")
    gen.add_argument("--enterprises", type=int, help="enterprises (default: preset, else 5)")
    gen.add_argument("--tags", type=int, help="tags in all (default: preset, else 336)")
    gen.add_argument(
        "--gas-detectors", type=int, help="gas detectors among the tags (default: a quarter)"
    )
    gen.add_argument(
        "--hazard-sources", type=int, help="hazard sources in all (default: 3 per enterprise)"
    )
    gen.add_argument(
        "--major-sources", type=int, help="of them, of grade 1 or 2 (default: a fifth)"
    )
    gen.add_argument("--park-code", help="the park's code (default: preset's, else gen-park)")
    gen.add_argument("--out", type=Path, required=True, help="folder for plant.yaml")
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from safety_hub.registry import load_plant
    from simulators.plantgen import PRESETS, PlantShape, write

    base = PRESETS[args.preset] if args.preset else None
    enterprises = args.enterprises or (base.enterprises if base else 5)
    tags = args.tags or (base.tags if base else 336)
    sources = args.hazard_sources or (
        base.hazard_sources if base and not args.enterprises else 3 * enterprises
    )
    shape = PlantShape(
        enterprises=enterprises,
        tags=tags,
        gas_detectors=args.gas_detectors
        if args.gas_detectors is not None
        else (base.gas_detectors if base and not args.tags else tags // 4),
        hazard_sources=sources,
        major_sources=args.major_sources
        if args.major_sources is not None
        else (base.major_sources if base and not args.hazard_sources else sources // 5),
        park_code=args.park_code or (base.park_code if base else "gen-park"),
    )
    try:
        shape.check()
    except ValueError as exc:
        print(f"plant generate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    path = write(shape, args.out)
    written = time.monotonic()
    plant = load_plant(path)
    loaded = time.monotonic()
    grades = sum(h.computed_grade in (1, 2) for h in plant.hazard_sources.values())
    print(
        f"plant: {path}: park {plant.park_code}, {len(plant.enterprises)} enterprises, "
        f"{len(plant.hazard_sources)} hazard sources ({grades} of grade 1 or 2), "
        f"{len(plant.tags)} tags ({shape.gas_detectors} gas detectors); written in "
        f"{written - started:.1f} s, loaded and validated in {loaded - written:.1f} s",
        file=sys.stderr,
    )
    return EXIT_OK
