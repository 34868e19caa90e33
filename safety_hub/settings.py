"""Settings from environment variables ``SAFETY_HUB_*`` (pydantic-settings).

Defaults run with nothing installed ("local mode": embedded broker, embedded SQLite store).
Nothing is built at import time: call :func:`load_settings`. A bad value raises
:class:`~safety_hub.errors.ConfigError` naming the variable and the value (a token or password
as ``<hidden>``, a URL as ``user:***@host``); the CLI turns it into exit code 2. The full list
is in docs/configuration.md.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from safety_hub.errors import ConfigError

ENV_PREFIX = "SAFETY_HUB_"
# Settings whose whole value is a secret: an error shows this instead of the value.
HIDDEN = "<hidden>"
_SECRET_VARIABLES = frozenset(
    ENV_PREFIX + name for name in ("ADMIN_TOKEN", "INFLUX_TOKEN", "INFLUX_PASSWORD")
)
# Settings that are URLs with an optional password: an error shows them through redact_url.
_URL_VARIABLES = frozenset(ENV_PREFIX + name for name in ("MQTT_URL", "INFLUX_URL", "STATE_URL"))


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (``mqtt://user:***@host:1883``).

    Works on text that is not a valid URL too, which is when an error quotes it: everything
    before the last ``@`` is taken as user information, because an unencoded ``/``, ``#`` or
    ``?`` inside a password makes a URL parser cut the password into the host or the path.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{host}"


class UrlError(ValueError):
    """A URL setting is malformed; ``reason`` never quotes the URL, ``str()`` quotes it
    redacted (the password may sit anywhere in a malformed URL)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"{self.url}: {reason}")


def _password_cut(url: str, netloc: str) -> bool:
    """An ``@`` after the host: a / ? or # in the password ended the host part early, and the
    parser would take a piece of the password for the host or the port."""
    return "@" in url.partition("://")[2] and "@" not in netloc


_ENCODE_HINT = "percent-encode / ? # @ : in the user name and password"


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:
        # urllib's messages may quote the whole host part, password included.
        raise UrlError(
            url, "not a URL (a bracketed IPv6 host or the characters are wrong)"
        ) from None


class MqttTarget:
    """A parsed ``mqtt://user:pass@host:port`` (or ``mqtts://``) URL."""

    def __init__(self, url: str) -> None:
        parts = _split(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or "://" not in url:
            raise UrlError(url, "must start with mqtt:// or mqtts://")
        if _password_cut(url, parts.netloc):
            raise UrlError(url, f"an @ after the host ({_ENCODE_HINT})")
        if not parts.hostname:
            raise UrlError(url, "no host in the URL")
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.host = parts.hostname
        try:
            port = parts.port
        except ValueError:
            # urllib's message quotes the port text, which is part of the password when the
            # password holds an unencoded / or #.
            raise UrlError(
                url, f"the port is not a number from 0 to 65535 ({_ENCODE_HINT})"
            ) from None
        self.port = port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


class InfluxEndpoint(NamedTuple):
    """Where and as whom to reach InfluxDB; ``url`` carries no user information, so that it
    can appear in descriptions, errors and logs."""

    url: str
    username: str | None
    password: str | None


# The largest valid request (a shelve body with every text field at its maximum length in
# characters that JSON escapes as 12-byte surrogate pairs) is about 31 KB: a lower limit would
# refuse valid actions. Nothing the API takes needs more than a few megabytes.
MIN_BODY_BYTES = 32_768
MAX_BODY_BYTES = 16 * 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    plant: Path | None = Field(
        None, description="plant registry YAML; default: bundled sample park"
    )
    rules: Path | None = Field(None, description="rule pack file or folder; default: alert_rules/")
    people: Path | None = Field(
        None,
        description="people and duty rosters YAML; default: the bundled sample people with the "
        "sample park, nobody with another plant",
    )
    data_dir: Path = Field(Path(".hub-data"), description="spool, stores and journals")
    state_url: str | None = Field(
        None,
        description="where the hub's state lives: unset or sqlite:///DIR for SQLite files in "
        "the data dir (the default), postgresql://user:pass@host:port/db for a PostgreSQL "
        "database shared by a redundant pair",
    )
    uplink: Path | None = Field(
        None, description="uplink configuration YAML (docs/uplink.md); unset: no uplink"
    )
    # Province mode (docs/province.md): take the park hubs' MQTT bridge records.
    province: bool = Field(False, description="on: subscribe to the parks' federation records")
    province_topic_prefix: str = Field("province/v1", pattern=r"^[^+#\s]{1,100}$")
    province_max_parks: int = Field(100, ge=1, le=10_000)
    province_max_enterprises: int = Field(500, ge=1, le=100_000, description="per park")
    province_max_hazard_sources: int = Field(2000, ge=1, le=100_000, description="per park")
    province_max_tags: int = Field(20_000, ge=1, le=1_000_000, description="per park")
    province_max_open_warnings: int = Field(10_000, ge=1, le=1_000_000, description="per park")
    province_max_payload_bytes: int = Field(65_536, ge=1024, le=1_048_576)
    province_max_seen: int = Field(
        1_000_000, ge=1000, le=100_000_000, description="dataIds kept for de-duplication"
    )
    province_max_series: int = Field(
        100_000,
        ge=1,
        le=10_000_000,
        description="reading series the province writes to InfluxDB, all parks together",
    )
    province_link_stale_s: float = Field(
        180.0, gt=0, le=86_400, description="a park without a record this long: link stale"
    )
    # A redundant pair (docs/deploy.md, "Redundancy"): two hubs, one active by a lease in the
    # PostgreSQL state database.
    ha: bool = Field(
        False,
        description="on: this hub is one of a redundant pair and acts only while it holds the "
        "lease (needs a postgresql:// SAFETY_HUB_STATE_URL and an external SAFETY_HUB_MQTT_URL)",
    )
    node_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="this hub's name in the pair (unique per node); default: the host name",
    )
    api_public_url: str | None = Field(
        None,
        description="this hub's API base URL as the other node's clients reach it (named in "
        "the 409/503 answers of the standby and in /api/v1/system)",
    )
    ha_lease_s: float = Field(
        6.0, ge=1.0, le=60.0, description="lease time: a dead active node is replaced after it"
    )
    ha_renew_s: float | None = Field(
        None, gt=0, le=20.0, description="renew period; default: a third of the lease time"
    )
    ha_broker_grace_s: float = Field(
        3.0,
        ge=0.5,
        le=30.0,
        description="an active node that cannot reach the broker this long gives the lease up",
    )

    mqtt_url: str | None = Field(None, description="broker URL; unset: start an embedded broker")
    mqtt_client_id: str = Field("safety-hub-ingest", min_length=1, max_length=64)
    mqtt_session_expiry_s: int = Field(7 * 86_400, ge=60)
    mqtt_receive_maximum: int = Field(1000, ge=1, le=65_535)
    mqtt_keepalive_s: int = Field(30, ge=5, le=3600)
    mqtt_max_sessions: int = Field(
        64,
        ge=1,
        le=400,
        description="MQTT sessions for the enterprises: one each up to this many, else shared",
    )
    mqtt_process: bool = Field(
        True,
        description="on (default): the MQTT sessions that receive run in child processes "
        "(connectors/mqtt/README.md); off: threads of the hub",
    )
    mqtt_catch_all_user: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="MQTT user of the catch-all session (unregistered enterprises), with the "
        "URL's password; unset: the URL's user (docs/deploy.md, 'Broker access control')",
    )
    mqtt_probe_interval_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="broker round trip measured at start and this often; 0: at start only",
    )
    embedded_mqtt_port: int = Field(
        1883, ge=0, le=65_535, description="preferred port of the embedded broker; 0: any free"
    )

    influx_url: str | None = Field(None, description="InfluxDB URL; unset: embedded SQLite store")
    influx_api: Literal["v1", "v2"] = "v2"
    influx_token: SecretStr | None = Field(None, description="InfluxDB v2 API token")
    influx_org: str | None = None
    influx_bucket: str = Field("safety_hub", min_length=1)
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_timeout_s: float = Field(10.0, gt=0, le=300)
    sink_batch_readings: int = Field(10_000, ge=1, le=1_000_000)
    sink_process: bool = Field(
        True,
        description="on (default): the sink (spool -> InfluxDB) runs in a child process, on a "
        "core of its own; only with SQLite state and InfluxDB, never in a redundant pair "
        "(docs/storage.md); off: a thread of the hub",
    )

    spool_max_readings: int = Field(20_000_000, ge=1)
    spool_max_bytes: int = Field(4 * 1024**3, ge=1024)
    spool_sync: Literal["full", "normal"] = "full"

    max_payload_bytes: int = Field(1_048_576, ge=64)
    max_future_s: int = Field(300, ge=0)
    max_lead_s: float = Field(
        2.0,
        ge=0,
        le=300,
        description="how far ahead of the hub clock a reading's own time may drive the rules; "
        "readings stamped further ahead are evaluated at the hub's time",
    )
    disk_reserve_bytes: int = Field(
        32 * 1024**2,
        ge=0,
        description="space kept free in the data dir for the alarm journal on a full disk; 0: off",
    )
    horizon_s: int = Field(7 * 86_400, ge=60, description="oldest reading accepted, seconds")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65_535)
    admin_token: SecretStr | None = Field(
        None, description="bearer token of the built-in admin user (automation)"
    )
    users_file: Path | None = Field(None, description="YAML users file (docs/api.md)")
    cors_origins: str = Field("", description="comma-separated origins allowed by CORS; none")
    api_max_body_bytes: int = Field(
        65_536,
        ge=MIN_BODY_BYTES,
        le=MAX_BODY_BYTES,
        description="largest HTTP request body; larger: 413",
    )
    action_rate_per_min: float = Field(
        60.0, gt=0, le=60_000, description="alarm actions per user per minute (refill)"
    )
    action_burst: int = Field(20, ge=1, le=10_000, description="alarm actions in a burst")
    notify: bool = Field(
        True, description="plan and send notifications (docs/notifications.md); off: neither"
    )
    notify_policies: Path | None = Field(
        None, description="notification policy file or folder; default: alert_rules/notify/"
    )
    notify_summary_window_s: float = Field(
        30.0, ge=0, le=3600, description="messages to one contact point at most this often"
    )
    notify_retry_initial_s: float = Field(2.0, gt=0, le=3600)
    notify_retry_max_s: float = Field(60.0, gt=0, le=86_400)
    notify_max_attempts: int = Field(30, ge=1, le=1000)
    public_url: str | None = Field(
        None, description="the hub's API base URL as people reach it, for links in messages"
    )
    # The closed loop (docs/alarms.md, "Disposal"): seconds from the annunciation; 0: no limit.
    disposal_limit_red_s: int = Field(1800, ge=0, le=7 * 86_400, description="red: 30 min")
    disposal_limit_orange_s: int = Field(7200, ge=0, le=7 * 86_400, description="orange: 2 h")
    disposal_limit_yellow_s: int = Field(0, ge=0, le=7 * 86_400, description="yellow: none")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        MqttTarget(value)  # raises ValueError with the reason
        return value

    @field_validator("influx_url")
    @classmethod
    def _check_influx_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = _split(value)
        if _password_cut(value, parts.netloc):
            raise UrlError(value, f"an @ after the host ({_ENCODE_HINT})")
        try:
            _ = parts.port  # raises ValueError for a port that is not a number
        except ValueError:
            raise UrlError(
                value, f"the port is not a number from 0 to 65535 ({_ENCODE_HINT})"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UrlError(value, "must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("state_url")
    @classmethod
    def _check_state_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value.startswith("sqlite:///"):
            if not value[len("sqlite:///") :].strip():
                raise UrlError(value, "sqlite:/// needs a directory after it")
            return value
        parts = _split(value)
        if _password_cut(value, parts.netloc):
            raise UrlError(value, f"an @ after the host ({_ENCODE_HINT})")
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise UrlError(
                value, "must be sqlite:///DIR or a postgresql://host[:port]/database URL"
            )
        try:
            _ = parts.port
        except ValueError:
            raise UrlError(
                value, f"the port is not a number from 0 to 65535 ({_ENCODE_HINT})"
            ) from None
        return value

    @property
    def state_backend(self) -> Literal["sqlite", "postgresql"]:
        """``postgresql`` when the state URL names a PostgreSQL database, else ``sqlite``."""
        return (
            "postgresql"
            if self.state_url and not self.state_url.startswith("sqlite:")
            else "sqlite"
        )

    @field_validator("admin_token")
    @classmethod
    def _check_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if len(secret) < 16 or any(c.isspace() for c in secret):
            raise ValueError("must be at least 16 characters without spaces")
        return value

    @field_validator("users_file")
    @classmethod
    def _check_users_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found (create it with `safety-hub users add`)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_cors(cls, value: str) -> str:
        for origin in _split_origins(value):
            parts = urlsplit(origin)
            if origin != "*" and (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
            ):
                raise ValueError(f"{origin!r} is not * or an http(s)://host[:port] origin")
        return value

    @field_validator("plant")
    @classmethod
    def _check_plant(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found")
        return value

    @field_validator("uplink")
    @classmethod
    def _check_uplink(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found")
        return value

    @field_validator("people")
    @classmethod
    def _check_people(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found")
        return value

    @field_validator("rules")
    @classmethod
    def _check_rules(cls, value: Path | None) -> Path | None:
        if value is not None and not value.exists():
            raise ValueError("file or folder not found")
        return value

    @model_validator(mode="after")
    def _check_v2(self) -> Settings:
        if self.influx_url and self.influx_api == "v2" and not self.influx_token:
            raise ValueError(
                "SAFETY_HUB_INFLUX_TOKEN is required with SAFETY_HUB_INFLUX_API=v2 "
                "(no default secrets outside local mode)"
            )
        return self

    @model_validator(mode="after")
    def _check_ha(self) -> Settings:
        if not self.ha:
            return self
        if self.province:
            raise ValueError(
                "SAFETY_HUB_PROVINCE=on is not for a redundant pair yet: both nodes would "
                "subscribe with one client id (docs/province.md)"
            )
        if self.state_backend != "postgresql":
            raise ValueError(
                "SAFETY_HUB_HA=on needs SAFETY_HUB_STATE_URL=postgresql://... (the lease lives "
                "in the state database the two hubs share)"
            )
        if self.mqtt_url is None:
            raise ValueError(
                "SAFETY_HUB_HA=on needs SAFETY_HUB_MQTT_URL: the two hubs share one broker (an "
                "embedded broker dies with its hub)"
            )
        if self.ha_renew_interval_s * 2 > self.ha_lease_s:
            raise ValueError(
                f"SAFETY_HUB_HA_RENEW_S={self.ha_renew_interval_s:g} must be at most half of "
                f"SAFETY_HUB_HA_LEASE_S={self.ha_lease_s:g} (a renewal may fail once)"
            )
        return self

    @property
    def ha_renew_interval_s(self) -> float:
        """Seconds between renewals of the lease (default a third of the lease time)."""
        return self.ha_renew_s if self.ha_renew_s is not None else self.ha_lease_s / 3

    @property
    def local_mode(self) -> bool:
        return self.mqtt_url is None and self.influx_url is None

    def disposal_limits_ms(self) -> dict[str, int | None]:
        """Disposal time limit per priority name, ms (None: no limit)."""
        limits = {
            "critical": self.disposal_limit_red_s,
            "high": self.disposal_limit_orange_s,
            "medium": self.disposal_limit_yellow_s,
        }
        return {p: s * 1000 if s else None for p, s in limits.items()}

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.rstrip("/") for o in _split_origins(self.cors_origins)]

    def mqtt_target(self) -> MqttTarget | None:
        return MqttTarget(self.mqtt_url) if self.mqtt_url else None

    def influx_endpoint(self) -> InfluxEndpoint | None:
        """The InfluxDB URL without user information, and the basic-auth credentials (from
        SAFETY_HUB_INFLUX_USERNAME/_PASSWORD, else from the URL); None in local mode."""
        if self.influx_url is None:
            return None
        parts = urlsplit(self.influx_url)
        netloc = parts.netloc.rpartition("@")[2]
        username = self.influx_username
        password = self.influx_password.get_secret_value() if self.influx_password else None
        if username is None and parts.username:
            username = unquote(parts.username)
            password = unquote(parts.password) if parts.password else password
        return InfluxEndpoint(urlunsplit(parts._replace(netloc=netloc)), username, password)

    def secret_values(self) -> list[str]:
        """Every secret these settings hold (tokens, passwords, URL passwords), for a log
        filter to blank out wherever they appear."""
        found = [
            s.get_secret_value()
            for s in (self.admin_token, self.influx_token, self.influx_password)
            if s is not None
        ]
        for url in (self.mqtt_url, self.influx_url, self.state_url):
            userinfo = urlsplit(url).netloc.rpartition("@")[0] if url else ""
            _, colon, password = userinfo.partition(":")
            if colon and password:
                found += [password, unquote(password)]
        return sorted({s for s in found if s}, key=len, reverse=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # pydantic shows plain-str fields as they are: the URLs may carry a password.
        for name, value in super().__repr_args__():
            if name in ("mqtt_url", "influx_url", "state_url") and isinstance(value, str):
                value = redact_url(value)
            yield name, value


def _split_origins(value: str) -> list[str]:
    return [o.strip() for o in value.split(",") if o.strip()]


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and explicit overrides, for tests)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(x) for x in first["loc"]]
        variable = ENV_PREFIX + loc[0].upper() if loc else ENV_PREFIX + "*"
        if not loc and "SAFETY_HUB_INFLUX_TOKEN" in first["msg"]:
            variable = ENV_PREFIX + "INFLUX_TOKEN"
        elif not loc and "SAFETY_HUB_HA" in first["msg"]:
            variable = ENV_PREFIX + "HA"
        value = first.get("input")
        if not loc:
            value = os.environ.get(variable, "<unset>")
        message = first["msg"].removeprefix("Value error, ")
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, UrlError):
            message = cause.reason
        # Never echo a secret, even a bad one; a URL only with its password blanked out.
        if variable in _SECRET_VARIABLES:
            value = HIDDEN
        elif variable in _URL_VARIABLES and isinstance(value, str):
            value = redact_url(value)
        others = len(exc.errors()) - 1
        if others:
            message += f" (and {others} more problem(s))"
        raise ConfigError(variable, value, message) from None
