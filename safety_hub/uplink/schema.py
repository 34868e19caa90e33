"""Pydantic models of the uplink configuration file (docs/uplink.md, "Configuration").

Strict like the plant registry: unknown keys are errors, a string field wants a string. What
relates fields (the transport and its block, CBC and its IV, mapping sources, hazard source
codes against the plant) is checked in ``config.py`` so that each problem has its position.
Secrets are never in the file: it names the environment variables that hold them.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter or "
            "digit (it names the destination in metrics and system alarms)"
        )
    return value


def _env(value: str) -> str:
    if not _ENV.fullmatch(value):
        raise ValueError("must be an environment variable name: A-Z, 0-9 and _")
    return value


def _text(value: str) -> str:
    if not value.strip() or not value.isprintable() or len(value) > 200:
        raise ValueError("must be one line of 1-200 printable characters")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must carry no user or password (use token_env)")
    return value


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA time zone, e.g. Asia/Shanghai") from None
    return value


def _prefix(value: str) -> str:
    parts = value.split("/")
    if not value or len(value) > 100 or any(not p or set(p) & set("+#") for p in parts):
        raise ValueError("must be 1-100 characters of topic levels: no '+', '#' or empty level")
    if not value.isprintable():
        raise ValueError("must be printable text")
    return value


def _client_id(value: str) -> str:
    if not 1 <= len(value) <= 64 or not value.isprintable():
        raise ValueError("must be 1-64 printable characters")
    return value


Name = Annotated[str, AfterValidator(_name)]
EnvName = Annotated[str, AfterValidator(_env)]
Text = Annotated[str, AfterValidator(_text)]
Url = Annotated[str, AfterValidator(_url)]
Zone = Annotated[str, AfterValidator(_zone)]
Kind = Literal["enterprise", "hazard_source", "tag", "reading", "warning"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TcpEnvelopeModel(_Model):
    host: Text
    port: Annotated[int, Field(ge=1, le=65_535)]
    app_id: Text
    service_id: Text
    """the envelope's serviceId; ``service_ids`` overrides it per record kind"""
    service_ids: dict[Kind, Text] = {}
    district_code: Text
    key_env: EnvName
    """the variable holding the AES key: 16, 24 or 32 bytes of UTF-8 text"""
    mode: Literal["ecb", "cbc"] = "ecb"
    iv_env: EnvName | None = None
    """CBC only: the variable holding the 16-byte IV"""
    ack: Literal["write", "reply"] = "write"
    ack_timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    max_reply_bytes: Annotated[int, Field(ge=256, le=1_048_576)] = 65_536


class HttpModel(_Model):
    url: Url
    token_env: EnvName | None = None
    """the variable holding a bearer token, if the platform wants one"""
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0


class MqttBridgeModel(_Model):
    """Federation: the records as JSON to another safety-hub's broker (docs/uplink.md)."""

    host: Text
    port: Annotated[int, Field(ge=1, le=65_535)] = 1883
    topic_prefix: Annotated[str, AfterValidator(_prefix)] = "province/v1"
    """records go to ``<topic_prefix>/<park>/records``"""
    client_id: Annotated[str, AfterValidator(_client_id)] | None = None
    """default: ``uplink-<park>-<destination>``"""
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    tls: bool = False
    ca_file: Text | None = None
    """a CA bundle for tls (default: the system's)"""
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    ack_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    """how long a batch waits for its PUBACKs before it counts as failed"""


class ConstModel(_Model):
    const: str | int | float | bool | None


class SendModel(_Model):
    base: bool = True
    readings_interval_s: Annotated[float, Field(ge=0.1, le=86_400)] = 60.0
    readings: bool = True
    warnings: bool = True
    hazard_grades: list[Literal[1, 2, 3, 4]] = [1, 2]
    hazard_sources: list[Text] = []
    """hazard source codes sent whatever their grade"""


class DestinationModel(_Model):
    name: Name
    transport: Literal["tcp_envelope", "http", "mqtt_bridge"]
    tcp: TcpEnvelopeModel | None = None
    http: HttpModel | None = None
    mqtt: MqttBridgeModel | None = None
    send: SendModel = SendModel()
    rate_per_s: Annotated[float, Field(gt=0, le=100_000)] = 100.0
    batch_records: Annotated[int, Field(ge=1, le=1000)] = 50
    max_records: Annotated[int, Field(ge=10, le=100_000_000)] = 1_000_000
    down_alarm_after_s: Annotated[float, Field(ge=1, le=7 * 86_400)] = 300.0
    retry_initial_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    retry_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    time_zone: Zone = "Asia/Shanghai"
    mapping: dict[Kind, dict[Text, Text | ConstModel]] = {}
    """per kind, the whole mapping for that kind (output field -> source field or const)"""


class UplinkDoc(_Model):
    version: Literal[1]
    destinations: Annotated[list[DestinationModel], Field(min_length=1, max_length=16)]
