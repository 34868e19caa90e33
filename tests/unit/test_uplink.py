"""The uplink's domain: configuration errors, records and dataId, the durable queue, the
delivery model, and the AES codec against openssl."""

from __future__ import annotations

import json
import subprocess

import pytest

from connectors.uplink import AesCodec, envelope
from safety_hub.errors import UplinkConfigError
from safety_hub.ingest.live import LiveValue
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.uplink import (
    Backoff,
    DestinationState,
    OutRecord,
    RateLimiter,
    parse_uplink,
)
from safety_hub.uplink.records import (
    DEFAULT_MAPPING,
    TimeText,
    base_record,
    reading_record,
    reading_sources,
    tag_sources,
)

GOOD = """\
version: 1
destinations:
  - name: province
    transport: tcp_envelope
    tcp:
      host: 127.0.0.1
      port: 9300
      app_id: app
      service_id: svc
      district_code: "152921"
      key_env: KEY
"""


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


def errors(text: str, plant: Plant | None = None) -> list[str]:
    with pytest.raises(UplinkConfigError) as info:
        parse_uplink(text, "up.yaml", plant)
    return info.value.errors


def test_good_config_selects_grade_one_and_two_sources(plant: Plant) -> None:
    """The defaults: grade 1 and 2 hazard sources, their tags, the shipped mapping."""
    config = parse_uplink(GOOD, "up.yaml", plant)
    (dest,) = config.destinations
    chosen = dest.hazard_sources(plant)
    assert chosen and all(plant.hazard_sources[c].computed_grade in (1, 2) for c in chosen)
    assert {t.hazard_source for t in dest.tags(plant)} == set(chosen)
    assert dest.mapping["tag"]["TARGET_CODE"] == "point_code"


def test_config_errors_name_file_line_and_key(plant: Plant) -> None:
    """Every problem at once, each as file:line:col with the key and a hint."""
    text = GOOD.replace("      key_env: KEY\n", "      key_env: KEY\n      mode: cbc\n") + (
        "    send: {hazard_sources: [HS-E01-1]}\n"
        "    mapping:\n"
        "      reading:\n"
        "        VALUE: valu\n"
        "  - name: province\n"
        "    transport: http\n"
    )
    found = errors(text, plant)
    assert any(e.startswith("up.yaml:12:7:") and "mode cbc needs iv_env" in e for e in found)
    assert any("up.yaml:16:9:" in e and "did you mean 'value'" in e for e in found), found
    assert any("no hazard source" in e and "HS-E01-01" in e for e in found), found
    assert any("transport http needs a http: block" in e for e in found), found
    assert any('duplicate destination "province" (first at line 3)' in e for e in found), found


def test_unknown_key_and_bad_env_name_are_reported() -> None:
    """extra keys are refused, secrets are named by variable, never written in the file."""
    found = errors(GOOD.replace("key_env: KEY", "key: secret-in-file"))
    assert any(
        "up.yaml:11:7:" in e and "unknown key 'tcp.key'; did you mean 'key_env'?" in e
        for e in found
    ), found
    found = errors(GOOD.replace("key_env: KEY", "key_env: not-a-var"))
    assert any("environment variable name" in e for e in found), found


def test_tag_record_has_the_platform_shape_and_registry_values(plant: Plant) -> None:
    """The shipped tag record: codes, unit, range, setpoints LL/L/H/HH, CAS, in-use, WGS84."""
    tag = plant.tags[("e01-chloralkali", "GT-1101")]
    times = TimeText("Asia/Shanghai")
    src = tag_sources(plant, tag, times)
    record = base_record(
        plant.park_code, "tag", "e01-chloralkali/GT-1101", DEFAULT_MAPPING["tag"], src
    )
    data = record.data
    assert data["TARGET_CODE"] == "e01-chloralkali/GT-1101" and data["BIT_NO"] == "GT-1101"
    assert data["EQUIP_CODE"] == "TK-101" and data["HAZARD_CODE"] == "HS-E01-01"
    assert (data["UNIT"], data["LOW_VALUE"], data["TOP_VALUE"]) == ("ppm", 0, 10)
    assert (data["TOP_VALUE_01"], data["TOP_VALUE_02"]) == (0.3, 0.6)
    assert data["LOW_VALUE_01"] is None and data["MONITOR_CASCODE"] == "7782-50-5"
    assert data["IS_USE"] == 1 and data["IS_ACTIVE"] == 1 and data["STOP_REMARK"] is None
    assert (data["LONGITUDE"], data["LATITUDE"]) == (tag.longitude, tag.latitude)
    again = base_record(
        plant.park_code, "tag", "e01-chloralkali/GT-1101", DEFAULT_MAPPING["tag"], src
    )
    assert again.data_id == record.data_id
    changed = base_record(
        plant.park_code, "tag", "e01-chloralkali/GT-1101", DEFAULT_MAPPING["tag"], {**src, "h": 0.4}
    )
    assert changed.data_id != record.data_id


def test_out_of_service_tag_carries_stop_reason_person_time(plant: Plant) -> None:
    """A tag out of service reports IS_USE 0 with STOP_REMARK/STOP_PSN/STOP_TIME (local time)."""
    tag = next(t for t in plant.tags.values() if t.out_of_service is not None)
    data = base_record(
        "p", "tag", "k", DEFAULT_MAPPING["tag"], tag_sources(plant, tag, TimeText("Asia/Shanghai"))
    ).data
    assert tag.out_of_service is not None
    assert data["IS_USE"] == 0 and data["STOP_REMARK"] == tag.out_of_service.reason
    assert data["STOP_PSN"] == tag.out_of_service.by
    assert data["STOP_TIME"] == tag.out_of_service.since.astimezone(
        TimeText("Asia/Shanghai").zone
    ).strftime("%Y-%m-%d %H:%M:%S")


def test_reading_data_id_is_tag_and_source_time(plant: Plant) -> None:
    """Same tag and time: same dataId (a re-send); another time: another."""
    tag = plant.tags[("e01-chloralkali", "LT-1101")]
    times = TimeText("Asia/Shanghai")
    value = LiveValue(ts_ms=1_764_470_000_000, value=1.25, quality="good", received_ms=0)
    one = reading_record("p", tag, DEFAULT_MAPPING["reading"], reading_sources(tag, value, times))
    two = reading_record("p", tag, DEFAULT_MAPPING["reading"], reading_sources(tag, value, times))
    later = LiveValue(ts_ms=value.ts_ms + 1, value=1.25, quality="good", received_ms=0)
    three = reading_record("p", tag, DEFAULT_MAPPING["reading"], reading_sources(tag, later, times))
    assert one.data_id == two.data_id != three.data_id
    assert one.data["VALUE"] == 1.25 and one.data["COLLECT_TIME"] == "2025-11-30 10:33:20"


def test_rate_limiter_backoff_and_state() -> None:
    """The bucket grants rate per second; backoff doubles to its cap; state tracks down time."""
    limiter = RateLimiter(10)
    assert limiter.grant(50, 0.0) == 10 and limiter.grant(5, 0.0) == 0
    assert limiter.wait_s(0.0) == pytest.approx(0.1)
    assert limiter.grant(50, 0.5) == 5
    backoff = Backoff(1, 5)
    assert [backoff.next_s() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next_s() == 1
    state = DestinationState("a", "tcp")
    state.failed("refused", 1000)
    state.failed("refused", 4000)
    assert state.down_for_ms(6000) == 5000 and state.failed_attempts == 2
    state.succeeded(10, 2, 7000)
    assert (state.connected, state.sent, state.rejected, state.down_for_ms(8000)) == (True, 8, 2, 0)


@pytest.mark.parametrize("mode", ["ecb", "cbc"])
def test_aes_matches_openssl(mode: str) -> None:
    """What the codec encrypts, openssl decrypts (AES-128, PKCS7), and back."""
    key, iv = b"0123456789abcdef", b"fedcba9876543210"
    codec = AesCodec(key, mode, iv if mode == "cbc" else None)  # type: ignore[arg-type]
    plain = json.dumps([{"BIT_NO": "GT-1101", "名称": "氯气"}], ensure_ascii=False).encode()
    args = ["openssl", "enc", f"-aes-128-{mode}", "-K", key.hex(), "-base64", "-A"]
    if mode == "cbc":
        args += ["-iv", iv.hex()]
    out = subprocess.run(
        [*args, "-d"], input=codec.encrypt(plain).encode(), capture_output=True, check=True
    )
    assert out.stdout == plain
    theirs = subprocess.run(args, input=plain, capture_output=True, check=True).stdout.decode()
    assert codec.encrypt(plain) == theirs.strip()
    assert codec.decrypt(theirs.strip()) == plain


def test_aes_refuses_bad_keys() -> None:
    """Key lengths other than 16/24/32 and CBC without an IV are errors."""
    with pytest.raises(ValueError, match="15 bytes"):
        AesCodec(b"x" * 15)
    with pytest.raises(ValueError, match="IV"):
        AesCodec(b"x" * 16, "cbc")


def test_envelope_framing_and_fields() -> None:
    """One envelope: the five keys, ended by @@, data the encrypted one-record array."""
    config = parse_uplink(GOOD).destinations[0].model.tcp
    assert config is not None
    codec = AesCodec(b"0123456789abcdef")
    frame = envelope(config, codec, OutRecord("reading", "abc", "k", {"VALUE": 1.5}))
    assert frame.endswith(b"@@") and frame.count(b"@@") == 1
    body = json.loads(frame[:-2])
    assert set(body) == {"appId", "serviceId", "dataId", "districtCode", "data"}
    assert (body["appId"], body["serviceId"], body["dataId"], body["districtCode"]) == (
        "app",
        "svc",
        "abc",
        "152921",
    )
    assert json.loads(codec.decrypt(body["data"])) == [{"VALUE": 1.5}]
