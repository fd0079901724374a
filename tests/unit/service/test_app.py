"""build_service and SystemSettings: the system wired from the environment."""

from __future__ import annotations

import pytest

from system.app import SystemSettings, build_service
from system.broker import SettingsError
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
