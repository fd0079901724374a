"""build_service and SystemSettings: the system wired from the environment."""

from __future__ import annotations

import pytest

from system.app import SystemSettings, broker_client, build_service
from system.broker import KisSettings, SettingsError
from system.broker.kiwoom import KiwoomClient, KiwoomSettings
from system.market import KIWOOM
from tests.unit.broker.conftest import ACCOUNT, APPKEY, APPSECRET, BASE_URL

KIS_ENV = {
    "SQUALL_KIS_BASE_URL": BASE_URL,
    "SQUALL_KIS_APPKEY": APPKEY,
    "SQUALL_KIS_APPSECRET": APPSECRET,
    "SQUALL_KIS_ACCOUNT": ACCOUNT,
}


async def test_the_service_is_built_from_both_prefixes() -> None:
    environ = {**KIS_ENV, "SQUALL_KIS_PROFILE": "paper", "SQUALL_SERVICE_RETRY_WAIT_S": "3"}
    async with build_service(environ) as service:
        assert service.client.settings.base_url == BASE_URL
        assert service.client.settings.profile == "paper"
        assert service.settings.retry_wait_s == 3.0
        assert service.settings.on_unknown_order == "reconcile"


def test_a_bad_service_variable_is_named() -> None:
    environ = {**KIS_ENV, "SQUALL_SERVICE_ORDER_DEADLINE_S": "soon"}
    with pytest.raises(SettingsError, match="SQUALL_SERVICE_ORDER_DEADLINE_S"):
        build_service(environ)


def test_a_missing_kis_variable_is_named() -> None:
    environ = {key: value for key, value in KIS_ENV.items() if key != "SQUALL_KIS_ACCOUNT"}
    with pytest.raises(SettingsError, match="SQUALL_KIS_ACCOUNT"):
        build_service(environ)


@pytest.mark.parametrize(
    ("database", "stored"),
    [
        ({}, False),
        ({"SQUALL_DATABASE_URL": "  "}, False),  # blank counts as unset, as everywhere
        ({"DATABASE_URL": "postgresql://squall@127.0.0.1:5432/squall"}, True),
    ],
)
def test_storage_is_configured_only_by_a_database_url(
    database: dict[str, str], stored: bool
) -> None:
    environ = {**KIS_ENV, "SQUALL_FEED_URL": "ws://127.0.0.1:9/tryitout", **database}
    settings = SystemSettings.from_env(environ)
    assert (settings.storage is not None) == stored


KIWOOM_ENV = {
    "SQUALL_BROKER": "kiwoom",
    "SQUALL_KIWOOM_BASE_URL": "https://api.kiwoom.test",
    "SQUALL_KIWOOM_APPKEY": APPKEY,
    "SQUALL_KIWOOM_SECRETKEY": APPSECRET,
}


async def test_squall_broker_kiwoom_builds_the_kiwoom_client_and_its_realtime_dialect() -> None:
    environ = {**KIWOOM_ENV, "SQUALL_FEED_URL": "ws://127.0.0.1:9/api/dostk/websocket"}
    settings = SystemSettings.from_env(environ)
    assert isinstance(settings.broker, KiwoomSettings)
    client, credential, dialect = broker_client(settings.broker)
    try:
        assert isinstance(client, KiwoomClient)
        assert dialect is KIWOOM
        assert credential == client.tokens.get
    finally:
        await client.aclose()
    async with build_service(KIWOOM_ENV) as service:
        assert isinstance(service.client, KiwoomClient)


def test_kis_is_the_default_broker() -> None:
    settings = SystemSettings.from_env({**KIS_ENV, "SQUALL_FEED_URL": "ws://127.0.0.1:9/tryitout"})
    assert isinstance(settings.broker, KisSettings)


def test_an_unknown_broker_is_named_with_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"SQUALL_BROKER='ls'.*kis, kiwoom"):
        build_service({**KIS_ENV, "SQUALL_BROKER": "ls"})


def test_kiwoom_settings_are_read_from_their_own_prefix_and_named_when_missing() -> None:
    environ = {k: v for k, v in KIWOOM_ENV.items() if k != "SQUALL_KIWOOM_SECRETKEY"}
    with pytest.raises(SettingsError, match="SQUALL_KIWOOM_SECRETKEY"):
        build_service(environ)
