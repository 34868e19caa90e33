"""Plant registry: loading, validation with file:line:col, GB 18218 and GB/T 50493 rules."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safety_hub.errors import RegistryError
from safety_hub.registry import (
    BUILTIN_GASES,
    Plant,
    TagInfo,
    alpha_for,
    beta_for,
    default_plant_path,
    grade_for,
    load_plant,
    mg_m3_to_ppm,
    ppm_to_mg_m3,
)

HEAD = """\
version: 1
park: {code: p1, name: 测试园区, name_en: test park}
enterprises:
  - code: e1
    name: 测试企业
"""


def write(tmp_path: Path, text: str, name: str = "plant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pos_of(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the only occurrence of ``needle``."""
    assert text.count(needle) == 1, needle
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as info:
        load_plant(path)
    assert info.value.path == str(path)
    return info.value.errors


def one_tag(body: str) -> str:
    """A plant whose enterprise has one enterprise-level tag; ``body`` is the tag's mapping."""
    lines = body.strip("\n").split("\n")
    tag = "\n".join(("      - " if i == 0 else "        ") + line for i, line in enumerate(lines))
    return HEAD + "    tags:\n" + tag + "\n"


# ----------------------------------------------------------------------------- sample park


@pytest.fixture(scope="module")
def sample() -> Plant:
    return load_plant(default_plant_path())


def test_sample_park_loads_clean(sample: Plant) -> None:
    """The bundled park loads with ≥5 enterprises, ≥12 major sources of grades 1–4, ≥280 tags, no warnings."""
    assert default_plant_path().name == "sample_park.yaml"
    assert default_plant_path().parent.name == "plants"
    assert sample.park_code == "alxa-hitech"
    assert sample.park_name == "阿拉善高新技术产业开发区"
    assert len(sample.enterprises) >= 5
    major = [h for h in sample.hazard_sources.values() if h.is_major]
    assert len(major) >= 12
    assert {h.computed_grade for h in major} == {1, 2, 3, 4}
    assert all(h.filed_grade == h.computed_grade and not h.grade_mismatch for h in major)
    assert len(sample.tags) >= 280
    assert sample.warnings == []


def test_sample_park_has_the_promised_features(sample: Plant) -> None:
    """2oo3 zones at chlorine and HCN, open-path, oxygen, SIS triplets, an out-of-service detector, coordinates."""
    tags = list(sample.tags.values())
    voted_gases = {
        (info.gas, z.voting)
        for z in sample.zones.values()
        for info in [sample.tags[(z.enterprise, z.tags[0])]]
        if z.voting
    }
    assert ("Cl2", "2oo3") in voted_gases
    assert ("HCN", "2oo3") in voted_gases
    assert all(len(z.tags) == 3 for z in sample.zones.values() if z.voting == "2oo3")
    assert sum(t.kind == "open_path_gas" for t in tags) >= 2
    assert sum(t.kind == "oxygen" for t in tags) >= 2
    sifs = {t.sif for t in tags if t.sif}
    for sif in sifs:
        kinds = {t.kind for t in tags if t.sif == sif}
        assert {"sis_trip", "sis_bypass", "sis_fault"} <= kinds, sif
    oos = [t for t in tags if not t.in_service]
    assert len(oos) == 1
    assert oos[0].out_of_service is not None
    assert oos[0].out_of_service.reason and oos[0].out_of_service.by
    assert oos[0].out_of_service.since.utcoffset() == timedelta(hours=8)
    assert all(t.x_m is not None and t.y_m is not None for t in tags)
    assert all(5 <= t.interval_s <= 10 for t in tags)
    for t in tags:
        if t.kind == "level" and "h" in t.setpoints:
            assert "hh" in t.setpoints, t.tag
    assert all(e.code == e.code.lower() and "/" not in e.code for e in sample.enterprises.values())


def test_tag_info_carries_the_identifier_chain(sample: Plant) -> None:
    """Nested tags know park → enterprise → hazard source → unit → equipment; enterprise tags have ""."""
    info = sample.tags[("e01-chloralkali", "GT-1101")]
    assert (info.park, info.enterprise, info.hazard_source, info.unit, info.equipment) == (
        "alxa-hitech",
        "e01-chloralkali",
        "HS-E01-01",
        "U-01",
        "TK-101",
    )
    assert info.kind == "toxic_gas" and info.gas == "Cl2" and info.eu == "ppm"
    assert info.setpoints == {"l1": 0.3, "l2": 0.6}
    assert info.zone == "Z-TK101" and info.voting == "2oo3"
    fence = sample.tags[("e01-chloralkali", "GT-1901")]
    assert (fence.hazard_source, fence.unit, fence.equipment) == ("", "", "FENCE")
    first = sample.tags_of("e01-chloralkali")
    assert [t.tag for t in first][:2] == ["LT-1101", "PT-1101"]
    assert sample.tags_of("nobody") == []
    assert hash(info) == hash(dataclasses.replace(info))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.tag = "x"  # type: ignore[misc]


# ----------------------------------------------------------------------------- GB 18218


def hazard_plant(people: int, filed: int | None, chemicals: str) -> str:
    filed_line = f"        filed_grade: {filed}\n" if filed is not None else ""
    return (
        HEAD
        + "    hazard_sources:\n"
        + "      - code: HS-1\n"
        + "        name: 储罐区\n"
        + "        kind: storage\n"
        + f"        people_within_500m: {people}\n"
        + filed_line
        + "        chemicals:\n"
        + chemicals
    )


CL2_NH3 = (
    "          - {name: 液氯, cas: 7782-50-5, category: toxic_gas, q_t: 20, Q_t: 5}\n"
    "          - {name: 液氨, cas: 7664-41-7, category: toxic_gas, q_t: 30, Q_t: 10}\n"
)


def test_gb18218_hand_checked_example(tmp_path: Path) -> None:
    """Cl2 20/5 (β 4) + NH3 30/10 (β 2), 40 people: S = 7, α = 1.2, R = 1.2 × 22 = 26.4, grade 3."""
    plant = load_plant(write(tmp_path, hazard_plant(40, 3, CL2_NH3)))
    hs = plant.hazard_sources["HS-1"]
    assert hs.enterprise == "e1"
    assert (hs.S, hs.alpha, hs.R) == pytest.approx((7.0, 1.2, 26.4))
    assert hs.is_major and hs.computed_grade == 3 and hs.filed_grade == 3
    assert not hs.grade_mismatch
    assert [c.beta for c in hs.chemicals] == [4.0, 2.0]
    assert plant.warnings == []
    assert plant.enterprises["e1"].hazard_sources == ("HS-1",)


def test_explicit_beta_wins(tmp_path: Path) -> None:
    """A beta in the file replaces the table value: Cl2 with β 10 gives R = 1.0 × 10 × 20/5 = 40."""
    chem = (
        "          - {name: 液氯, cas: 7782-50-5, category: toxic_gas, q_t: 20, Q_t: 5, beta: 10}\n"
    )
    hs = load_plant(write(tmp_path, hazard_plant(10, 3, chem))).hazard_sources["HS-1"]
    assert (hs.chemicals[0].beta, hs.R) == pytest.approx((10.0, 40.0))


@pytest.mark.parametrize(
    ("people", "alpha"),
    [
        (0, 0.5),
        (1, 1.0),
        (29, 1.0),
        (30, 1.2),
        (49, 1.2),
        (50, 1.5),
        (99, 1.5),
        (100, 2.0),
        (101, 2.0),
    ],
)
def test_alpha_band_edges(people: int, alpha: float) -> None:
    """α follows GB 18218 at every band edge (100 people counts as "100 人以上")."""
    assert alpha_for(people) == alpha


def test_alpha_rejects_negative_people() -> None:
    """A negative head count is a programming error."""
    with pytest.raises(ValueError, match="negative"):
        alpha_for(-1)


@pytest.mark.parametrize(
    ("r", "grade"),
    [(1000, 1), (100, 1), (99.99, 2), (50, 2), (49.99, 3), (10, 3), (9.99, 4), (0, 4)],
)
def test_grade_band_edges(r: float, grade: int) -> None:
    """Grade 1 from R ≥ 100, 2 from 50, 3 from 10, else 4."""
    assert grade_for(r) == grade


@pytest.mark.parametrize(
    ("category", "gas", "beta"),
    [
        ("toxic_gas", "Cl2", 4.0),
        ("toxic_gas", "7782-50-5", 4.0),
        ("toxic_gas", "HCN", 10.0),
        ("highly_toxic_gas", "phosgene", 20.0),
        ("toxic_gas", "H2S", 5.0),
        ("toxic_gas", "NH3", 2.0),
        ("toxic_gas", "unknown", 2.0),
        ("highly_toxic_gas", None, 4.0),
        ("flammable_gas", "H2", 1.5),
        ("explosive", None, 2.0),
        ("flammable_liquid", None, 1.0),
        ("other", None, 1.0),
    ],
)
def test_beta_for(category: str, gas: str | None, beta: float) -> None:
    """β from the toxic-gas table (by key or CAS) or from the category."""
    assert beta_for(category, gas) == beta


def test_beta_for_rejects_unknown_category() -> None:
    """An unknown category is not silently given β = 1."""
    with pytest.raises(ValueError, match="unknown hazard category"):
        beta_for("spicy", None)


def test_grade_mismatch_is_flagged_not_fatal(tmp_path: Path) -> None:
    """A filed grade that disagrees with R loads, sets grade_mismatch and adds a located warning."""
    text = hazard_plant(40, 2, CL2_NH3)
    path = write(tmp_path, text)
    plant = load_plant(path)
    hs = plant.hazard_sources["HS-1"]
    assert hs.grade_mismatch and hs.filed_grade == 2 and hs.computed_grade == 3
    line, col = pos_of(text, "filed_grade")
    assert len(plant.warnings) == 1
    assert plant.warnings[0].startswith(
        f'{path}:{line}:{col}: enterprises[0].hazard_sources[0] "HS-1": '
    )
    assert "filed_grade 2 disagrees with the computed grade 3" in plant.warnings[0]


def test_not_major_below_s_one(tmp_path: Path) -> None:
    """S < 1 is not a major hazard source: no computed grade; a filed grade there is a mismatch."""
    chem = "          - {name: 天然气, cas: 8006-14-2, category: flammable_gas, q_t: 40, Q_t: 50}\n"
    hs = load_plant(write(tmp_path, hazard_plant(45, None, chem))).hazard_sources["HS-1"]
    assert not hs.is_major and hs.computed_grade is None and not hs.grade_mismatch
    plant = load_plant(write(tmp_path, hazard_plant(45, 4, chem), "filed.yaml"))
    assert plant.hazard_sources["HS-1"].grade_mismatch
    assert "not a major hazard source" in plant.warnings[0]


# ----------------------------------------------------------------------------- setpoint limits

LIMIT_CASES = [
    # (tag body, needle whose position the error must carry, expected message part)
    (
        'tag: GT-1\nkind: combustible_gas\neu: "%LEL"\nrange: [0, 100]\ngas: CH4\nsetpoints:\n  l1: 30\n  l2: 40',
        "l1: 30",
        "setpoint l1=30 %LEL exceeds 25 %LEL",
    ),
    (
        'tag: GT-1\nkind: combustible_gas\neu: "%LEL"\nrange: [0, 100]\ngas: CH4\nsetpoints:\n  l1: 20\n  l2: 55',
        "l2: 55",
        "setpoint l2=55 %LEL exceeds 50 %LEL",
    ),
    (
        "tag: GT-1\nkind: toxic_gas\neu: mg/m3\nrange: [0, 10]\ngas: Cl2\nsetpoints:\n  l1: 1.5\n  l2: 2",
        "l1: 1.5",
        "setpoint l1=1.5 mg/m3 exceeds 100 %OEL of Cl2 (1 mg/m³)",
    ),
    (
        "tag: GT-1\nkind: toxic_gas\neu: mg/m3\nrange: [0, 10]\ngas: Cl2\nsetpoints:\n  l1: 0.5\n  l2: 3",
        "l2: 3",
        "setpoint l2=3 mg/m3 exceeds 200 %OEL of Cl2 (2 mg/m³)",
    ),
    (
        "tag: GT-1\nkind: toxic_gas\neu: ppm\nrange: [0, 50]\ngas: H2S\nsetpoints:\n  l1: 8\n  l2: 14",
        "l1: 8",
        "setpoint l1=8 ppm (11.2 mg/m³) exceeds 100 %OEL of H2S (10 mg/m³ = 7.17 ppm)",
    ),
    (
        "tag: GT-1\nkind: toxic_gas\neu: ppm\nrange: [0, 200]\ngas: H2S\nidlh_mode: true\nsetpoints:\n  l1: 20\n  l2: 30",
        "l1: 20",
        "setpoint l1=20 ppm (27.9 mg/m³) exceeds 5 %IDLH of H2S (21.5 mg/m³ = 15.4 ppm)",
    ),
    (
        "tag: GT-1\nkind: toxic_gas\neu: ppm\nrange: [0, 200]\ngas: H2S\nidlh_mode: true\nsetpoints:\n  l1: 15\n  l2: 35",
        "l2: 35",
        "setpoint l2=35 ppm (48.8 mg/m³) exceeds 10 %IDLH of H2S (43 mg/m³ = 30.8 ppm)",
    ),
    (
        "tag: GL-1\nkind: open_path_gas\neu: LEL·m\nrange: [0, 5]\ngas: natural_gas\nsetpoints:\n  l1: 1.5\n  l2: 2",
        "l1: 1.5",
        "setpoint l1=1.5 LEL·m exceeds 1 LEL·m",
    ),
    (
        "tag: GL-1\nkind: open_path_gas\neu: LEL·m\nrange: [0, 5]\ngas: natural_gas\nsetpoints:\n  l1: 1\n  l2: 2.5",
        "l2: 2.5",
        "setpoint l2=2.5 LEL·m exceeds 2 LEL·m",
    ),
    (
        'tag: OT-1\nkind: oxygen\neu: "%VOL"\nrange: [0, 30]\nsetpoints:\n  l: 18\n  h: 23.5',
        "l: 18",
        "setpoint l=18 %VOL is below 19.5 %VOL",
    ),
    (
        'tag: OT-1\nkind: oxygen\neu: "%VOL"\nrange: [0, 30]\nsetpoints:\n  l: 19.5\n  h: 25',
        "h: 25",
        "setpoint h=25 %VOL is above 23.5 %VOL",
    ),
    (
        'tag: GT-1\nkind: combustible_gas\neu: "%LEL"\nrange: [0, 100]\ngas: CH4\nsetpoints:\n  l1: 20\n  l2: 15',
        "l2: 15",
        "setpoint l2=15 must be above l1=20",
    ),
    (
        "tag: PT-1\nkind: pressure\neu: MPa\nrange: [0, 10]\nsetpoints:\n  h: 5\n  hh: 4",
        "hh: 4",
        "setpoint hh=4 must be above h=5",
    ),
    (
        "tag: PT-1\nkind: pressure\neu: MPa\nrange: [0, 10]\nsetpoints:\n  ll: 0.5\n  hh: 12",
        "hh: 12",
        "setpoint hh=12 MPa is outside the range [0, 10]",
    ),
    (
        "tag: GT-1\nkind: toxic_gas\neu: ppm\nrange: [0, 10]\ngas: Cl2\nsetpoints:\n  l1: 0.3\n  h: 0.6",
        "h: 0.6",
        "setpoint h is not allowed for kind toxic_gas (use l1/l2)",
    ),
]


@pytest.mark.parametrize(("body", "needle", "message"), LIMIT_CASES)
def test_setpoint_limit_rejected_at_its_line(
    tmp_path: Path, body: str, needle: str, message: str
) -> None:
    """Each GB/T 50493 / ordering / range violation is reported at the setpoint's own file:line:col."""
    text = one_tag(body)
    errors = errors_of(tmp_path, text)
    line, col = pos_of(text, needle)
    tag = body.split("\n")[0].split(": ")[1]
    expected = f'{tmp_path / "plant.yaml"}:{line}:{col}: enterprises[0].tags[0] "{tag}": {message}'
    assert any(e.startswith(expected) for e in errors), errors


ACCEPTED_AT_LIMIT = [
    'tag: GT-1\nkind: combustible_gas\neu: "%LEL"\nrange: [0, 100]\ngas: CH4\nsetpoints: {l1: 25, l2: 50}',
    "tag: GT-1\nkind: toxic_gas\neu: mg/m3\nrange: [0, 10]\ngas: Cl2\nsetpoints: {l1: 1, l2: 2}",
    "tag: GT-1\nkind: toxic_gas\neu: mg/m3\nrange: [0, 100]\ngas: H2S\nidlh_mode: true\nsetpoints: {l1: 21.5, l2: 43}",
    "tag: GT-1\nkind: toxic_gas\neu: ppm\nrange: [0, 10]\ngas: Cl2\nsetpoints: {l1: 0.34, l2: 0.68}",
    "tag: GL-1\nkind: open_path_gas\neu: LEL·m\nrange: [0, 5]\ngas: CH4\nsetpoints: {l1: 1, l2: 2}",
    'tag: OT-1\nkind: oxygen\neu: "%VOL"\nrange: [0, 30]\nsetpoints: {l: 19.5, h: 23.5}',
]


@pytest.mark.parametrize("body", ACCEPTED_AT_LIMIT)
def test_setpoints_at_the_limit_are_accepted(tmp_path: Path, body: str) -> None:
    """The limits are inclusive: a setpoint exactly at 25 %LEL, 200 %OEL, 10 %IDLH, 19.5 %VOL... loads."""
    plant = load_plant(write(tmp_path, one_tag(body)))
    assert len(plant.tags) == 1


def test_combustible_needs_percent_lel(tmp_path: Path) -> None:
    """A point combustible detector must report in %LEL (no conversion is attempted)."""
    text = one_tag(
        "tag: GT-1\nkind: combustible_gas\neu: ppm\nrange: [0, 100]\ngas: CH4\nsetpoints: {l1: 20, l2: 40}"
    )
    errors = errors_of(tmp_path, text)
    line, col = pos_of(text, "eu: ppm")
    assert errors == [
        f'{tmp_path / "plant.yaml"}:{line}:{col}: enterprises[0].tags[0] "GT-1": '
        'eu "ppm" is not allowed for kind combustible_gas (use "%LEL")'
    ]


def test_tank_level_with_h_needs_hh(tmp_path: Path) -> None:
    """A level tag with h but no hh is rejected unless another level tag of the equipment has hh."""
    nested = (
        HEAD
        + "    hazard_sources:\n"
        + "      - {code: HS-1, name: 罐区, kind: storage, people_within_500m: 0,\n"
        + "         chemicals: [{name: 苯, cas: 71-43-2, category: flammable_liquid, q_t: 10, Q_t: 50}],\n"
        + "         units: [{code: U-1, name: 储存, equipment: [\n"
        + "           {code: TK-1, name: 1#罐, tags: [{tag: LT-1, kind: level, eu: m, range: [0, 10], setpoints: {h: 8}}]},\n"
        + "           {code: TK-2, name: 2#罐, tags: [{tag: LT-2, kind: level, eu: m, range: [0, 10], setpoints: {h: 8}},\n"
        + "                                          {tag: LSHH-2, kind: level, eu: m, range: [0, 10], setpoints: {hh: 9}}]}]}]}\n"
    )
    errors = errors_of(tmp_path, nested)
    line, col = pos_of(nested, "h: 8}}]}")
    assert errors == [
        f"{tmp_path / 'plant.yaml'}:{line}:{col}: "
        'enterprises[0].hazard_sources[0].units[0].equipment[0].tags[0] "LT-1": '
        "level tag has h=8 but no hh: a tank needs an independent high-high (overfill) alarm"
    ]


def test_out_of_service_needs_reason_by_since(tmp_path: Path) -> None:
    """in_service false needs out_of_service {reason, by, since}; a complete one is kept on TagInfo."""
    base = "tag: XS-1\nkind: status\nin_service: false"
    errors = errors_of(tmp_path, one_tag(base))
    assert len(errors) == 1 and "out_of_service {reason, by, since} is required" in errors[0]

    partial = one_tag(base + "\nout_of_service: {reason: 校验}")
    errors = errors_of(tmp_path, partial)
    assert len(errors) == 2
    assert all("missing required key 'out_of_service." in e for e in errors)

    full = one_tag(
        base + "\nout_of_service: {reason: 校验, by: 李工, since: 2026-11-01T08:00:00+08:00}"
    )
    info = load_plant(write(tmp_path, full)).tags[("e1", "XS-1")]
    assert info.out_of_service is not None
    assert info.out_of_service.since == datetime.fromisoformat("2026-11-01T08:00:00+08:00")

    naive = one_tag(base + "\nout_of_service: {reason: 校验, by: 李工, since: 2026-11-01T08:00:00}")
    assert "should have timezone info" in errors_of(tmp_path, naive)[0]


def test_wgs84_is_optional_and_range_checked(tmp_path: Path) -> None:
    """wgs84 longitude/latitude reach TagInfo; a latitude past 90 is an error at its own line."""
    good = one_tag("tag: XS-1\nkind: status\nwgs84: {longitude: 106.7, latitude: 39.6}")
    info = load_plant(write(tmp_path, good)).tags[("e1", "XS-1")]
    assert (info.longitude, info.latitude) == (106.7, 39.6)
    bare = load_plant(write(tmp_path, one_tag("tag: XS-1\nkind: status"))).tags[("e1", "XS-1")]
    assert bare.longitude is None and bare.latitude is None

    bad = one_tag("tag: XS-1\nkind: status\nwgs84: {longitude: 106.7, latitude: 91}")
    errors = errors_of(tmp_path, bad)
    line, _ = pos_of(bad, "wgs84:")
    assert len(errors) == 1 and f"plant.yaml:{line}:" in errors[0]
    assert "latitude" in errors[0] and "90" in errors[0]


def test_sample_park_has_wgs84_everywhere(sample: Plant) -> None:
    """Every enterprise, hazard source and tag of the sample park has a WGS84 position near Alxa."""
    items = [*sample.enterprises.values(), *sample.hazard_sources.values(), *sample.tags.values()]
    for item in items:
        assert item.longitude is not None and 106 < item.longitude < 107.5
        assert item.latitude is not None and 39 < item.latitude < 40.5


def test_voting_zone_needs_its_member_count(tmp_path: Path) -> None:
    """A 2oo3 zone with two detectors is rejected at the first member's zone key."""
    det = "{{tag: {t}, kind: toxic_gas, eu: ppm, range: [0, 10], gas: Cl2, setpoints: {{l1: 0.3, l2: 0.6}}, zone: Z-1, voting: 2oo3}}"
    text = HEAD + "    tags:\n" + "".join(f"      - {det.format(t=t)}\n" for t in ("GT-1", "GT-2"))
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1
    col = text.split("\n")[6].index("zone:") + 1
    assert errors[0].startswith(
        f'{tmp_path / "plant.yaml"}:7:{col}: enterprises[0].tags[0] "GT-1": '
    )
    assert 'zone "Z-1" votes 2oo3 but has 2 tag(s) (GT-1, GT-2); it needs exactly 3' in errors[0]


# ----------------------------------------------------------------------------- structure errors


def test_unknown_key_rejected_with_its_line(tmp_path: Path) -> None:
    """An unknown key is reported at its own line, with the allowed keys or a close match."""
    text = "version: 1\npark: {code: p, name: P}\nenterprises:\n  - code: e1\n    name: E\n    bogus_key: 1\n"
    errors = errors_of(tmp_path, text)
    assert errors == [
        f"{tmp_path / 'plant.yaml'}:6:5: enterprises[0] \"e1\": unknown key 'bogus_key'; "
        "allowed: code, name, name_en, publish_interval_s, wgs84, hazard_sources, tags"
    ]
    typo = one_tag("tag: PT-1\nkind: pressure\neu: MPa\nrange: [0, 1]\nsetpoint: {h: 0.5}")
    line, col = pos_of(typo, "setpoint:")
    assert errors_of(tmp_path, typo) == [
        f'{tmp_path / "plant.yaml"}:{line}:{col}: enterprises[0].tags[0] "PT-1": '
        "unknown key 'setpoint'; did you mean 'setpoints'?"
    ]


def test_duplicate_tag_in_enterprise_rejected(tmp_path: Path) -> None:
    """The same 位号 twice in one enterprise is an error naming the first line; in two enterprises it is fine."""
    text = (
        HEAD
        + "    tags:\n"
        + "      - {tag: XS-1, kind: status}\n"
        + "      - {tag: XS-1, kind: status}\n"
        + "  - code: e2\n    name: 企业二\n    tags:\n      - {tag: XS-1, kind: status}\n"
    )
    errors = errors_of(tmp_path, text)
    assert errors == [
        f'{tmp_path / "plant.yaml"}:8:10: enterprises[0].tags[1] "XS-1": '
        'duplicate tag "XS-1" in enterprise e1 (first at line 7)'
    ]


def test_duplicate_codes_rejected(tmp_path: Path) -> None:
    """Enterprise codes are unique in the park, hazard source codes too (across enterprises)."""
    hs = "    hazard_sources:\n      - {code: HS-1, name: 罐区, kind: storage, people_within_500m: 0, chemicals: [{name: 苯, category: other, q_t: 1, Q_t: 50}]}\n"
    text = HEAD + hs + "  - code: e2\n    name: 企业二\n" + hs + "  - code: e1\n    name: 重复\n"
    errors = errors_of(tmp_path, text)
    assert len(errors) == 2
    assert 'duplicate hazard source code "HS-1" (first at line 7)' in errors[0]
    assert 'duplicate enterprise code "e1" (first at line 4)' in errors[1]


def test_multiple_errors_all_reported_at_once(tmp_path: Path) -> None:
    """Type errors, unknown keys, limit violations and duplicates anywhere in the file come out together, in file order."""
    text = (
        HEAD
        + "    tags:\n"
        + "      - {tag: GT-1, kind: toxic_gas, eu: ppm, range: [0, 10], gas: Cl2, setpoints: {l1: 2, l2: 3}}\n"
        + "      - {tag: GT-2, kind: toxic_gas, eu: ppm, range: [0, 10], gas: Cl2, setpoints: {l1: 0.3, l2: 0.6}, colour: red}\n"
        + "      - {tag: GT-1, kind: status}\n"
        + "      - {tag: XS-2, kind: status, in_service: false}\n"
        + "  - code: E2/bad\n"
        + "    name: 企业二\n"
        + "    publish_interval_s: fast\n"
        + "    tags:\n"
        + '      - {tag: OT-1, kind: oxygen, eu: "%VOL", range: [0, 30], setpoints: {l: 17, h: 23.5}}\n'
    )
    errors = errors_of(tmp_path, text)
    prefix = f"{tmp_path / 'plant.yaml'}:"
    lines = [int(e.removeprefix(prefix).split(":")[0]) for e in errors]
    assert lines == [7, 7, 8, 9, 10, 11, 13]
    joined = "\n".join(errors)
    assert "setpoint l1=2 ppm" in joined and "setpoint l2=3 ppm" in joined  # line 7
    assert "unknown key 'colour'" in joined  # line 8
    assert 'duplicate tag "GT-1"' in joined  # line 9
    assert "out_of_service {reason, by, since} is required" in joined  # line 10
    assert 'code="E2/bad": must be lower-case letters' in joined  # line 11
    assert 'publish_interval_s="fast": Input should be a valid number' in joined  # line 13
    assert len(errors) == 7, joined


def test_unknown_key_does_not_hide_other_errors_of_the_tag(tmp_path: Path) -> None:
    """A tag with an unknown key is still checked against the setpoint limits."""
    text = one_tag(
        "tag: GT-1\nkind: toxic_gas\neu: mg/m3\nrange: [0, 10]\ngas: Cl2\ncolour: red\nsetpoints: {l1: 0.5, l2: 3}"
    )
    errors = errors_of(tmp_path, text)
    assert len(errors) == 2
    assert "unknown key 'colour'" in errors[0]
    assert "setpoint l2=3 mg/m3 exceeds 200 %OEL of Cl2 (2 mg/m³)" in errors[1]


def test_yaml_problems_are_located(tmp_path: Path) -> None:
    """A YAML syntax error and a duplicate mapping key both carry file:line:col."""
    broken = errors_of(tmp_path, HEAD + "    tags: [\n")
    assert (
        broken[0].startswith(f"{tmp_path / 'plant.yaml'}:7:") and "YAML syntax error" in broken[0]
    )
    dup = errors_of(tmp_path, HEAD + "    name: 又一个\n")
    assert dup == [f"{tmp_path / 'plant.yaml'}:6:5: duplicate key 'name' (first at line 5)"]


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    """A missing or empty file is a RegistryError, not a crash."""
    with pytest.raises(RegistryError, match="cannot read"):
        load_plant(tmp_path / "nope.yaml")
    assert errors_of(tmp_path, "# nothing\n") == [
        f"{tmp_path / 'plant.yaml'}:1:1: the file is empty"
    ]


@pytest.mark.parametrize("code", ["E01", "e01/x", "e01 x", "-e01", "e01+", "e#1", ""])
def test_enterprise_code_must_be_topic_safe(tmp_path: Path, code: str) -> None:
    """Enterprise codes go into MQTT topics: lower-case letters, digits, '-' and '_' only."""
    text = HEAD.replace("code: e1", f'code: "{code}"')
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1 and "must be lower-case letters" in errors[0]


# ----------------------------------------------------------------------------- tags and gases


@pytest.mark.parametrize(
    "name", ["PT 101", "FT-1,A", "XS=1", "储罐 1#液位", "TT-101 (备用)", "a\\b"]
)
def test_printable_tag_names_accepted(tmp_path: Path, name: str) -> None:
    """位号 may hold spaces, commas, equals, Chinese and inner backslashes."""
    quoted = '"' + name.replace("\\", "\\\\") + '"'
    plant = load_plant(write(tmp_path, one_tag(f"tag: {quoted}\nkind: status")))
    assert ("e1", name) in plant.tags


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        (" PT-1", "must not start or end with whitespace"),
        ("PT-1 ", "must not start or end with whitespace"),
        ("PT\\n1", "must not contain newlines"),
        ("PT\\t1", "must not contain newlines"),
        ("PT-1\\\\", "must not end with a backslash"),
    ],
)
def test_bad_tag_names_rejected(tmp_path: Path, name: str, message: str) -> None:
    """Empty names, outer spaces, control characters and a trailing backslash are rejected."""
    errors = errors_of(tmp_path, one_tag(f'tag: "{name}"\nkind: status'))
    assert len(errors) == 1 and message in errors[0]


def test_numeric_tag_name_asks_for_quotes(tmp_path: Path) -> None:
    """A tag that YAML reads as a number is rejected with a hint to quote it."""
    errors = errors_of(tmp_path, one_tag("tag: 1101\nkind: status"))
    assert errors[0].endswith("tag=1101: Input should be a valid string (quote it in YAML)")


def test_unknown_gas_suggests_a_close_key(tmp_path: Path) -> None:
    """A tag's gas must be in the gas table; a near miss is suggested."""
    text = one_tag(
        "tag: GT-1\nkind: toxic_gas\neu: ppm\nrange: [0, 10]\ngas: CL2\nsetpoints: {l1: 0.3, l2: 0.6}"
    )
    errors = errors_of(tmp_path, text)
    assert (
        len(errors) == 1 and 'gas "CL2" is not in the gas table; did you mean "Cl2"?' in errors[0]
    )


def test_gas_table_additions_and_overrides(tmp_path: Path) -> None:
    """`gases:` adds a gas (mw required) and overrides a built-in limit, which the setpoint rules then use."""
    gases = (
        "gases:\n"
        "  C3H6: {name: 丙烯, name_en: propylene, cas: 115-07-1, mw: 42.08, lel_vol: 2.0}\n"
        "  Cl2: {oel_mg_m3: 2}\n"
        "  X1: {name: 无分子量}\n"
    )
    text = one_tag(
        "tag: GT-1\nkind: toxic_gas\neu: mg/m3\nrange: [0, 10]\ngas: Cl2\nsetpoints: {l1: 2, l2: 4}"
    ).replace("enterprises:\n", gases + "enterprises:\n")
    errors = errors_of(tmp_path, text)
    assert errors == [
        f'{tmp_path / "plant.yaml"}:6:3: gases "X1": new gas "X1" needs mw (molecular weight, g/mol)'
    ]
    plant = load_plant(write(tmp_path, text.replace("  X1: {name: 无分子量}\n", "")))
    assert plant.gases["C3H6"].lel_vol == 2.0
    assert plant.gases["Cl2"].oel_mg_m3 == 2 and plant.gases["Cl2"].idlh_mg_m3 == 88
    assert BUILTIN_GASES["Cl2"].oel_mg_m3 == 1


def test_bad_cas_check_digit_rejected(tmp_path: Path) -> None:
    """A CAS number with a wrong check digit is caught."""
    chem = "          - {name: 液氯, cas: 7782-50-4, category: toxic_gas, q_t: 20, Q_t: 5}\n"
    errors = errors_of(tmp_path, hazard_plant(10, None, chem))
    assert len(errors) == 1 and 'cas="7782-50-4": has a wrong check digit (expected 5)' in errors[0]


def test_interval_defaults_to_enterprise(tmp_path: Path) -> None:
    """A tag without interval_s takes the enterprise's publish_interval_s; discrete tags default to range 0..1."""
    text = one_tag("tag: XS-1\nkind: status").replace(
        "    name: 测试企业\n", "    name: 测试企业\n    publish_interval_s: 7\n"
    )
    info: TagInfo = load_plant(write(tmp_path, text)).tags[("e1", "XS-1")]
    assert info.interval_s == 7
    assert (info.range_lo, info.range_hi) == (0.0, 1.0)
    assert info.setpoints == {} and info.gas is None and info.x_m is None


# ----------------------------------------------------------------------------- conversion


def test_ppm_mg_conversion_reference_values() -> None:
    """mg/m³ = ppm × MW / 24.45 at 25 °C, 101.325 kPa: 1 ppm Cl2 = 2.90 mg/m³; 10 mg/m³ H2S = 7.17 ppm."""
    assert ppm_to_mg_m3(1, BUILTIN_GASES["Cl2"].mw) == pytest.approx(2.8998, abs=1e-4)
    assert mg_m3_to_ppm(10, BUILTIN_GASES["H2S"].mw) == pytest.approx(7.174, abs=1e-3)
    assert ppm_to_mg_m3(24.45, 1.0) == pytest.approx(1.0)


@given(st.floats(min_value=0, max_value=1e6), st.sampled_from(sorted(BUILTIN_GASES)))
def test_ppm_mg_round_trip(value: float, gas: str) -> None:
    """ppm → mg/m³ → ppm gives back the value for every built-in gas."""
    mw = BUILTIN_GASES[gas].mw
    assert mg_m3_to_ppm(ppm_to_mg_m3(value, mw), mw) == pytest.approx(value, rel=1e-12, abs=1e-12)
