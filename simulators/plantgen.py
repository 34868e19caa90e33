"""Plant registries of any size, for load tests and benchmarks: ``safety-hub plant generate``.

The generated park passes the registry's validation (docs/registry.md) and runs with the
shipped rule packs: every enterprise has hazard sources with GB 18218 quantities chosen for a
grade (the ``--major-sources`` of grade 1 or 2 spread over the enterprises, the rest grade 3
or 4), gas detectors (Cl2 toxic and methanol combustible point detectors, setpoints within GB/T
50493) and process tags (level, pressure, temperature, flow with ordered setpoints, tank
levels with ``hh``), one SIS controller status per enterprise, on a grid of 1 km blocks.
Figures are plausible, not a real park's: the shapes (enterprises, hazard sources, tags by
kind) are what a benchmark needs. The output is deterministic for the same arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# GB 18218 quantities per grade, as in the sample park: R = alpha * beta * q/Q
# (Cl2: beta 4, Q 5 t; methanol: beta 1, Q 500 t; alpha from people_within_500m).
_CL2 = {"name": "液氯", "name_en": "liquid chlorine", "cas": "7782-50-5", "category": "toxic_gas"}
_MEOH = {"name": "甲醇", "name_en": "methanol", "cas": "67-56-1", "category": "flammable_liquid"}
GRADES: dict[int, tuple[dict[str, Any], int]] = {
    1: ({**_CL2, "q_t": 150, "Q_t": 5}, 120),  # R = 2 x 4 x 30 = 240
    2: ({**_CL2, "q_t": 60, "Q_t": 5}, 80),  # R = 1.5 x 4 x 12 = 72
    3: ({**_CL2, "q_t": 20, "Q_t": 5}, 60),  # R = 1.5 x 4 x 4 = 24
    4: ({**_MEOH, "q_t": 8000, "Q_t": 500}, 0),  # R = 0.5 x 1 x 16 = 8
}
GAS = [
    {"kind": "toxic_gas", "eu": "ppm", "range": [0, 10], "gas": "Cl2", "setpoints": {"l1": 0.3, "l2": 0.6}},
    {"kind": "combustible_gas", "eu": "%LEL", "range": [0, 100], "gas": "methanol", "setpoints": {"l1": 20, "l2": 40}},
]  # fmt: skip
PROCESS = [
    ("LT", {"kind": "level", "eu": "m", "range": [0, 2.6], "setpoints": {"l": 0.3, "h": 2.1, "hh": 2.3}}),
    ("PT", {"kind": "pressure", "eu": "MPa", "range": [0, 2.5], "setpoints": {"h": 1, "hh": 1.2}}),
    ("TT", {"kind": "temperature", "eu": "°C", "range": [-40, 80], "setpoints": {"h": 40, "hh": 45}}),
    ("FT", {"kind": "flow", "eu": "m3/h", "range": [0, 120], "setpoints": {"ll": 30, "l": 45}}),
]  # fmt: skip
BLOCK_M = 1000
TAGS_PER_EQUIPMENT = 20


@dataclass(frozen=True)
class PlantShape:
    enterprises: int
    tags: int  # in total, SIS controller statuses included
    gas_detectors: int
    hazard_sources: int  # in total
    major_sources: int  # of grade 1 or 2
    park_code: str = "gen-park"

    def check(self) -> None:
        if self.enterprises < 1:
            raise ValueError("plant: at least 1 enterprise")
        if self.hazard_sources < self.enterprises:
            raise ValueError("plant: at least one hazard source per enterprise")
        if not 0 <= self.major_sources <= self.hazard_sources:
            raise ValueError("plant: major sources must be between 0 and the hazard sources")
        if not 0 <= self.gas_detectors <= self.tags - self.enterprises:
            raise ValueError("plant: gas detectors must fit in the tags beside the SIS statuses")
        if self.tags - self.enterprises < self.hazard_sources:
            raise ValueError("plant: at least one tag per hazard source (beside the SIS status)")


PRESETS: dict[str, PlantShape] = {
    # the size of the park of the seed document: 28 enterprises, 19 hazard sources of grade 1
    # or 2, 281 gas detectors; process tags as in the sample park (about 2.8 per detector)
    "seed": PlantShape(28, 1_100, 281, 56, 19, "seed-park"),
    # a province's registry: 500 enterprises, 50,000 tags
    "province": PlantShape(500, 50_000, 12_000, 1_500, 340, "province"),
}


def _spread(total: int, parts: int) -> list[int]:
    """``total`` shared out over ``parts`` as evenly as possible, larger shares first."""
    base, extra = divmod(total, parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def _tags(ent: int, hs: int, gas: int, process: int, x0: int, y0: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k in range(gas):
        proto = GAS[k % len(GAS)]
        kind = "toxic" if proto["kind"] == "toxic_gas" else "combustible"
        out.append(
            {
                "tag": f"GT-{hs:02d}{k + 1:03d}",
                "name": f"{hs}#源{k + 1}号{kind}气体检测器",
                **proto,
                "coordinates": {"x_m": x0 + (k * 7) % 900, "y_m": y0 + 10 * hs + k % 9},
            }
        )
    for k in range(process):
        prefix, proto = PROCESS[k % len(PROCESS)]
        out.append(
            {
                "tag": f"{prefix}-{hs:02d}{k + 1:03d}",
                "name": f"{hs}#源{k + 1}号{proto['kind']}",
                **proto,
                "coordinates": {"x_m": x0 + (k * 11) % 900, "y_m": y0 + 10 * hs + 5},
            }
        )
    return out


def _hazard_source(
    ent_no: int, hs_no: int, grade: int, tags: list[dict[str, Any]]
) -> dict[str, Any]:
    chemical, people = GRADES[grade]
    chunks = [tags[k : k + TAGS_PER_EQUIPMENT] for k in range(0, len(tags), TAGS_PER_EQUIPMENT)]
    return {
        "code": f"HS-{ent_no:03d}-{hs_no:02d}",
        "name": f"{ent_no}号企业{hs_no}号危险源",
        "kind": "storage",
        "people_within_500m": people,
        "filed_grade": grade,
        "chemicals": [dict(chemical)],
        "units": [
            {
                "code": "U-01",
                "name": "储存单元",
                "equipment": [
                    {"code": f"EQ-{hs_no:02d}{k + 1:03d}", "name": f"{k + 1}号设备", "tags": chunk}
                    for k, chunk in enumerate(chunks)
                ],
            }
        ],
    }


def generate(shape: PlantShape) -> dict[str, Any]:
    """The registry document (docs/registry.md) of a park of ``shape``."""
    shape.check()
    sources = _spread(shape.hazard_sources, shape.enterprises)
    # grade 1/2 sources: every ``step``-th source, alternating 1 and 2; the rest 3 and 4
    step = shape.hazard_sources / shape.major_sources if shape.major_sources else 0.0
    major = {int(k * step) for k in range(shape.major_sources)}
    gas = _spread(shape.gas_detectors, shape.hazard_sources)
    process = _spread(shape.tags - shape.enterprises - shape.gas_detectors, shape.hazard_sources)
    enterprises = []
    index = 0  # hazard source, over the park
    for e in range(shape.enterprises):
        no = e + 1
        x0, y0 = (e % 40) * BLOCK_M, (e // 40) * BLOCK_M
        hazard_sources = []
        for h in range(sources[e]):
            grade = (1 + index % 2) if index in major else (3 + index % 2)
            tags = _tags(no, h + 1, gas[index], process[index], x0, y0)
            if not tags:  # every hazard source reports something
                tags = _tags(no, h + 1, 0, 1, x0, y0)
            hazard_sources.append(_hazard_source(no, h + 1, grade, tags))
            index += 1
        enterprises.append(
            {
                "code": f"g{no:03d}",
                "name": f"{no}号化工企业（生成）",
                "name_en": f"generated enterprise {no}",
                "publish_interval_s": 10,
                "hazard_sources": hazard_sources,
                "tags": [
                    {
                        "tag": "XS-900",
                        "name": "SIS控制器状态",
                        "equipment": "SIS-01",
                        "kind": "sis_status",
                        "range": [0, 3],
                        "coordinates": {"x_m": x0 + 500, "y_m": y0 + 500},
                    }
                ],
            }
        )
    return {
        "version": 1,
        "park": {
            "code": shape.park_code,
            "name": f"生成的园区 {shape.park_code}",
            "name_en": f"generated park {shape.park_code}",
        },
        "enterprises": enterprises,
    }


def write(shape: PlantShape, out_dir: Path) -> Path:
    """Write ``out_dir/plant.yaml``; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "plant.yaml"
    header = (
        f"# Generated by `safety-hub plant generate`: {shape.enterprises} enterprises, "
        f"{shape.tags} tags ({shape.gas_detectors} gas detectors), {shape.hazard_sources} "
        f"hazard sources ({shape.major_sources} of grade 1 or 2).\n"
        "# Plausible, not a real park: for load tests and benchmarks. Format: docs/registry.md.\n"
    )
    body = yaml.dump(
        generate(shape), allow_unicode=True, sort_keys=False, width=200, Dumper=yaml.CSafeDumper
    )
    path.write_text(header + body, encoding="utf-8")
    return path
