"""Secrets stay secret: no configuration error, CLI output, settings repr, storage description
or log line shows a password or token; URLs show up as ``user:***@host``.

tests/integration/test_secrets.py runs a hub with secrets in every setting and reads its API
and its log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safety_hub.errors import ConfigError
from safety_hub.logs import JsonFormatter, Redactor, TextFormatter
from safety_hub.runtime.hub import build_storage
from safety_hub.settings import MqttTarget, UrlError, load_settings, redact_url

SECRET = "s3cr3t-Pa55"
SAFETY_HUB = str(Path(sys.executable).with_name("safety-hub"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mqtt://hub:s3cret@broker:1883", "mqtt://hub:***@broker:1883"),
        ("mqtt://hub@broker:1883", "mqtt://hub@broker:1883"),
        ("mqtt://broker:1883", "mqtt://broker:1883"),
        ("http://u:p%40ss@influx:8086/", "http://u:***@influx:8086/"),
        # Unencoded / # ? @ in the password: the text before the last @ is still user info.
        ("mqtt://hub:s3/cr#et@broker:1883", "mqtt://hub:***@broker:1883"),
        ("mqtt://hub:s3@cret@broker:1883", "mqtt://hub:***@broker:1883"),
        ("hub:s3cret@broker:1883", "hub:***@broker:1883"),
        ("", ""),
    ],
)
def test_redact_url_blanks_out_the_password_even_in_a_broken_url(url: str, shown: str) -> None:
    """redact_url keeps scheme, user and host and replaces the password, also when a URL
    parser would cut the password into the host or the path."""
    assert redact_url(url) == shown


BAD_SETTINGS = [
    ("SAFETY_HUB_MQTT_URL", f"mqtt://hub:{SECRET}@broker:notaport", "mqtt://hub:***@broker"),
    ("SAFETY_HUB_MQTT_URL", f"mqtt://hub:{SECRET}/x@broker:1883", "mqtt://hub:***@broker:1883"),
    ("SAFETY_HUB_MQTT_URL", f"mqtt://hub:{SECRET[:4]}#{SECRET[4:]}@broker", "hub:***@broker"),
    ("SAFETY_HUB_MQTT_URL", f"mqtt://hub:12{SECRET}/@broker", "hub:***@broker"),
    ("SAFETY_HUB_MQTT_URL", f"http://hub:{SECRET}@broker:1883", "http://hub:***@broker:1883"),
    ("SAFETY_HUB_MQTT_URL", f"hub:{SECRET}@broker:1883", "hub:***@broker:1883"),
    ("SAFETY_HUB_MQTT_URL", f"mqtt://hub:{SECRET}\u2100@broker", "hub:***@broker"),
    ("SAFETY_HUB_MQTT_URL", f"mqtt://hub:{SECRET}@[broker", "hub:***@[broker"),
    ("SAFETY_HUB_INFLUX_URL", f"ftp://ifx:{SECRET}@influx:8086", "ftp://ifx:***@influx:8086"),
    ("SAFETY_HUB_INFLUX_URL", f"http://ifx:{SECRET}@influx:port", "http://ifx:***@influx:port"),
    ("SAFETY_HUB_INFLUX_URL", f"http://ifx:{SECRET}?@influx", "http://ifx:***@influx"),
    ("SAFETY_HUB_ADMIN_TOKEN", f"short {SECRET}", "<hidden>"),
]


@pytest.mark.parametrize(("variable", "value", "shown"), BAD_SETTINGS)
def test_a_bad_setting_is_named_without_its_secret(variable: str, value: str, shown: str) -> None:
    """The ConfigError names the variable and shows the value redacted, never the secret (nor
    a piece of it a URL parser split off)."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**{variable.removeprefix("SAFETY_HUB_").lower(): value})
    message = str(caught.value)
    assert caught.value.variable == variable
    assert shown in message, message
    for piece in (SECRET, SECRET[:4], SECRET[4:]):
        assert piece not in message, message


def test_a_missing_v2_token_with_a_password_url_shows_neither() -> None:
    """The model-level check (a v2 InfluxDB needs a token) quotes no secret either."""
    with pytest.raises(ConfigError) as caught:
        load_settings(influx_url=f"http://ifx:{SECRET}@influx:8086", influx_password=SECRET)
    assert caught.value.variable == "SAFETY_HUB_INFLUX_TOKEN"
    assert SECRET not in str(caught.value)


def test_mqtt_target_errors_quote_the_url_redacted() -> None:
    """The MQTT URL parser used by simulate and replay raises UrlError (a ValueError) whose
    text quotes the URL with the password blanked out."""
    with pytest.raises(UrlError) as caught:
        MqttTarget(f"mqtt://hub:{SECRET}@broker:notaport")
    assert isinstance(caught.value, ValueError)
    assert "mqtt://hub:***@broker:notaport" in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.args)
    good = MqttTarget(f"mqtt://hub:{SECRET}@broker:1883")
    assert good.password == SECRET and SECRET not in good.redacted()


def test_settings_repr_and_str_show_no_secret(tmp_path: Path) -> None:
    """repr() and str() of Settings hold every secret-bearing setting redacted: URL passwords
    as ***, tokens and passwords as SecretStr."""
    settings = load_settings(
        data_dir=tmp_path,
        mqtt_url=f"mqtt://hub:{SECRET}-mqtt@broker:1883",
        influx_url=f"http://ifx:{SECRET}-url@influx:8086",
        influx_token=f"{SECRET}-token",
        influx_password=f"{SECRET}-password",
        admin_token=f"{SECRET}-admin-token",
    )
    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert SECRET not in text, text
        assert "mqtt://hub:***@broker:1883" in text and "http://ifx:***@influx:8086" in text
    assert settings.mqtt_url == f"mqtt://hub:{SECRET}-mqtt@broker:1883"  # the hub still has it
    assert settings.influx_token is not None
    assert settings.influx_token.get_secret_value() == f"{SECRET}-token"
    assert set(settings.secret_values()) >= {
        f"{SECRET}-mqtt",
        f"{SECRET}-url",
        f"{SECRET}-token",
        f"{SECRET}-password",
        f"{SECRET}-admin-token",
    }


def test_influx_credentials_leave_the_url_before_it_reaches_the_connectors(
    tmp_path: Path,
) -> None:
    """build_storage hands the connectors the InfluxDB URL without user information (they quote
    it in errors); the user and password from the URL become basic auth, unless
    SAFETY_HUB_INFLUX_USERNAME/_PASSWORD say otherwise."""
    settings = load_settings(
        data_dir=tmp_path, influx_url=f"http://ifx:{SECRET}@influx:8086", influx_api="v1"
    )
    assert settings.influx_endpoint() == ("http://influx:8086", "ifx", SECRET)
    storage = build_storage(settings)
    sink_url: str = storage.sink.url  # type: ignore[attr-defined]
    history_url: str = storage.history.url  # type: ignore[attr-defined]
    for text in (storage.description, sink_url, history_url):
        assert SECRET not in text and "ifx" not in text
    assert storage.description == "InfluxDB v1 at http://influx:8086"
    explicit = load_settings(
        data_dir=tmp_path,
        influx_url=f"http://ifx:{SECRET}@influx:8086",
        influx_api="v1",
        influx_username="other",
        influx_password="other-password",
    )
    assert explicit.influx_endpoint() == ("http://influx:8086", "other", "other-password")


@pytest.mark.parametrize(("variable", "value", "shown"), BAD_SETTINGS[:2] + BAD_SETTINGS[8:])
def test_safety_hub_run_prints_no_secret(
    tmp_path: Path, variable: str, value: str, shown: str
) -> None:
    """`safety-hub run` with a bad secret-bearing setting exits 2 naming the variable; neither
    stdout nor stderr holds the secret."""
    result = subprocess.run(
        [SAFETY_HUB, "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SAFETY_HUB_DATA_DIR": str(tmp_path), variable: value},
    )
    assert result.returncode == 2, result.stderr
    assert f"configuration error: {variable}=" in result.stderr
    assert shown in result.stderr
    assert SECRET not in result.stderr + result.stdout


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_log_lines_never_hold_a_configured_secret() -> None:
    """Both log formats blank out each secret given to them, in the message, an extra field
    and an exception's text, also where JSON escaped it."""
    quoted = 'pa"ss\\wörd'
    redact = Redactor([SECRET, quoted])
    try:
        raise RuntimeError(f"connect failed: http://u:{SECRET}@influx")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = _record(f"token {SECRET}", url=f"mqtt://u:{SECRET}@b", other=quoted)
    record.exc_info = exc_info
    json_line = JsonFormatter(redact).format(record)
    text_line = TextFormatter(redact).format(record)
    for line in (json_line, text_line):
        assert SECRET not in line and quoted not in line and json.dumps(quoted)[1:-1] not in line
        assert "token ***" in line and "http://u:***@influx" in line
    parsed = json.loads(json_line)
    assert parsed["url"] == "mqtt://u:***@b" and parsed["other"] == "***"
    assert JsonFormatter().format(_record("plain")).count("plain") == 1  # no secrets: unchanged
