"""A destination's transport from its configuration and the secrets in the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from connectors.uplink.aes import AesCodec
from connectors.uplink.http_batch import HttpBatchTransport
from connectors.uplink.mqtt_bridge import MqttBridgeTransport
from connectors.uplink.tcp_envelope import TcpEnvelopeTransport
from safety_hub.errors import ConfigError
from safety_hub.settings import HIDDEN
from safety_hub.uplink import Destination, UplinkTransport


def _secret(env: Mapping[str, str], name: str, destination: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(
            name, "<unset>", f"uplink destination {destination!r} needs it (docs/uplink.md)"
        )
    return value


def build_transport(
    destination: Destination, park: str, env: Mapping[str, str] | None = None
) -> UplinkTransport:
    """Raises ConfigError naming the variable (never its value) when a secret is missing or
    has the wrong length."""
    env = os.environ if env is None else env
    model = destination.model
    if model.transport == "http":
        assert model.http is not None  # checked by the loader
        token = _secret(env, model.http.token_env, model.name) if model.http.token_env else None
        return HttpBatchTransport(model.http, park, token)
    if model.transport == "mqtt_bridge":
        bridge = model.mqtt
        assert bridge is not None  # checked by the loader
        credentials = None
        if bridge.username_env and bridge.password_env:
            credentials = (
                _secret(env, bridge.username_env, model.name),
                _secret(env, bridge.password_env, model.name),
            )
        reconnect = (model.retry_initial_s, model.retry_max_s)
        return MqttBridgeTransport(bridge, park, model.name, credentials, reconnect)
    tcp = model.tcp
    assert tcp is not None  # checked by the loader
    key = _secret(env, tcp.key_env, model.name).encode("utf-8")
    iv = _secret(env, tcp.iv_env, model.name).encode("utf-8") if tcp.iv_env else None
    try:
        codec = AesCodec(key, tcp.mode, iv)
    except ValueError as exc:
        variable = tcp.iv_env if iv is not None and "IV" in str(exc) else tcp.key_env
        raise ConfigError(variable or tcp.key_env, HIDDEN, str(exc)) from None
    return TcpEnvelopeTransport(tcp, codec)
