"""FeedSettings: defaults from the broker's rules, validation, and reading the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from system.broker import SettingsError
from system.market import FeedSettings

URL = "ws://ops.koreainvestment.com:21000/tryitout"


def test_defaults() -> None:
    settings = FeedSettings(url=URL)
    assert settings.max_subscriptions == 41  # KIS: OPSP0008 beyond 41 per appkey
    assert settings.stall_after_s == 120.0  # above KIS's ~100 s heartbeat interval
    assert (settings.backoff_base_s, settings.backoff_max_s) == (0.5, 30.0)
    assert (settings.connect_timeout_s, settings.custtype) == (10.0, "P")
    assert (settings.resync_on_reconnect, settings.books) == (True, False)


def test_the_url_must_be_a_websocket_url() -> None:
    with pytest.raises(ValidationError, match="ws:// or wss://"):
        FeedSettings(url="http://ops.koreainvestment.com:21000")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("stall_after_s", 0),
        ("backoff_base_s", 0),  # would reconnect in a hot loop
        ("connect_timeout_s", -1),
        ("max_subscriptions", 0),
    ],
)
def test_nonsense_knobs_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        FeedSettings(url=URL, **{name: value})


def test_the_backoff_cap_must_not_be_below_its_base() -> None:
    with pytest.raises(ValidationError, match=r"backoff_max_s \(1.0\) must not be below"):
        FeedSettings(url=URL, backoff_base_s=2.0, backoff_max_s=1.0)


def test_from_env_reads_squall_feed_variables() -> None:
    settings = FeedSettings.from_env(
        environ={
            "SQUALL_FEED_URL": URL,
            "SQUALL_FEED_STALL_AFTER_S": "30",
            "SQUALL_FEED_BOOKS": "true",
            "SQUALL_FEED_MAX_SUBSCRIPTIONS": " ",  # empty counts as unset
        }
    )
    assert (settings.url, settings.stall_after_s, settings.books) == (URL, 30.0, True)
    assert settings.max_subscriptions == 41


def test_from_env_names_what_is_missing_or_wrong() -> None:
    with pytest.raises(SettingsError) as missing:
        FeedSettings.from_env(environ={})
    assert str(missing.value) == (
        "missing environment variable(s) SQUALL_FEED_URL: set them to configure the realtime "
        "feed client (e.g. SQUALL_FEED_URL=ws://ops.koreainvestment.com:21000/tryitout)"
    )
    with pytest.raises(SettingsError, match="SQUALL_FEED_STALL_AFTER_S: Input should be greater"):
        FeedSettings.from_env(environ={"SQUALL_FEED_URL": URL, "SQUALL_FEED_STALL_AFTER_S": "0"})
    with pytest.raises(SettingsError, match=r"SQUALL_FEED_\*: Value error, backoff_max_s"):
        FeedSettings.from_env(environ={"SQUALL_FEED_URL": URL, "SQUALL_FEED_BACKOFF_BASE_S": "60"})
