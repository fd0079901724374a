"""GatewaySettings: defaults, the heartbeat rule, and reading SQUALL_GATEWAY_*."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from system.broker import SettingsError
from system.gateway import GatewaySettings


def test_defaults_are_the_documented_ones() -> None:
    settings = GatewaySettings()
    assert (settings.heartbeat_interval_s, settings.pong_timeout_s) == (15.0, 45.0)
    assert (settings.client_queue_size, settings.max_message_bytes) == (256, 4096)
    assert settings.rest_fallback_interval_s == 5.0
    assert settings.allowed_origins == ()


def test_a_pong_timeout_not_above_the_interval_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match=r"must exceed heartbeat_interval_s \(15\.0\)"):
        GatewaySettings(pong_timeout_s=15)


def test_the_environment_is_read_and_origins_are_split_on_commas() -> None:
    settings = GatewaySettings.from_env(
        environ={
            "SQUALL_GATEWAY_HEARTBEAT_INTERVAL_S": "2",
            "SQUALL_GATEWAY_PONG_TIMEOUT_S": "7",
            "SQUALL_GATEWAY_ALLOWED_ORIGINS": "https://a.example/, https://b.example",
        }
    )
    assert (settings.heartbeat_interval_s, settings.pong_timeout_s) == (2.0, 7.0)
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


def test_a_bad_variable_is_named_in_the_error() -> None:
    with pytest.raises(SettingsError, match="SQUALL_GATEWAY_PONG_TIMEOUT_S: Value error, must"):
        GatewaySettings.from_env(environ={"SQUALL_GATEWAY_PONG_TIMEOUT_S": "10"})
    with pytest.raises(SettingsError, match="SQUALL_GATEWAY_CLIENT_QUEUE_SIZE"):
        GatewaySettings.from_env(environ={"SQUALL_GATEWAY_CLIENT_QUEUE_SIZE": "many"})
