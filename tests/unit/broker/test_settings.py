"""KisSettings: validation, profile defaults, secrecy, and reading the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from system.broker import KisSettings, SettingsError
from tests.unit.broker.conftest import ACCOUNT, APPKEY, APPSECRET, BASE_URL, make_settings

ENV = {
    "SQUALL_KIS_BASE_URL": BASE_URL,
    "SQUALL_KIS_APPKEY": APPKEY,
    "SQUALL_KIS_APPSECRET": APPSECRET,
    "SQUALL_KIS_ACCOUNT": ACCOUNT,
}


def test_account_is_split_into_cano_and_product_code() -> None:
    settings = make_settings(account="12345678-22")
    assert (settings.cano, settings.acnt_prdt_cd) == ("12345678", "22")


@pytest.mark.parametrize("account", ["5001234501", "5001234-01", "50012345-1", "abcdefgh-01", ""])
def test_malformed_account_is_refused_with_the_expected_form(account: str) -> None:
    with pytest.raises(ValidationError, match=r"CANO-ACNT_PRDT_CD.*50012345-01"):
        make_settings(account=account)


@pytest.mark.parametrize(
    ("profile", "rps", "budget"), [("real", None, 18.0), ("paper", None, 1.0), ("paper", 2.5, 2.5)]
)
def test_budget_comes_from_the_profile_unless_set(
    profile: str, rps: float | None, budget: float
) -> None:
    assert make_settings(profile=profile, requests_per_second=rps).budget_per_second == budget


def test_defaults_follow_the_broker_rules() -> None:
    settings = make_settings()
    assert settings.profile == "real"
    assert settings.token_cooldown_s == 60.0
    assert settings.token_renew_before_s == 300.0
    assert settings.rate_window_margin_s == 0.02
    assert (settings.read_retries, settings.rate_limit_retries) == (2, 3)
    assert settings.custtype == "P"


def test_base_url_loses_its_trailing_slash_and_must_be_http() -> None:
    assert make_settings(base_url=BASE_URL + "/").base_url == BASE_URL
    with pytest.raises(ValidationError, match="http:// or https://"):
        make_settings(base_url="kis.test:9443")


@pytest.mark.parametrize(
    ("name", "value"),
    [("requests_per_second", 0), ("timeout_s", 0), ("read_retries", -1), ("profile", "live")],
)
def test_nonsense_knobs_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        make_settings(**{name: value})


def test_settings_are_frozen() -> None:
    settings = make_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.appkey = "other"  # type: ignore[misc]


def test_the_appsecret_is_never_printed_but_still_usable() -> None:
    settings = make_settings()
    for text in (repr(settings), str(settings), settings.model_dump_json(), f"{settings}"):
        assert APPSECRET not in text
    assert "**********" in repr(settings)
    assert settings.appsecret.get_secret_value() == APPSECRET


def test_from_env_reads_upper_case_variables_with_the_prefix() -> None:
    environ = {
        **ENV,
        "SQUALL_KIS_PROFILE": "paper",
        "SQUALL_KIS_REQUESTS_PER_SECOND": "2",
        "SQUALL_KIS_TOKEN_COOLDOWN_S": "61.5",
        "SQUALL_KIS_READ_RETRIES": "4",
        "SQUALL_KIS_TIMEOUT_S": "",  # empty counts as unset
        "OTHER_APPKEY": "ignored",
    }
    settings = KisSettings.from_env(environ=environ)
    assert settings.base_url == BASE_URL
    assert settings.appkey == APPKEY
    assert settings.appsecret.get_secret_value() == APPSECRET
    assert settings.account == ACCOUNT
    assert settings.profile == "paper"
    assert settings.budget_per_second == 2.0
    assert settings.token_cooldown_s == 61.5
    assert settings.read_retries == 4
    assert settings.timeout_s == 10.0


def test_from_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SQUALL_KIS_PROFILE", "paper")
    assert KisSettings.from_env().profile == "paper"


def test_from_env_honours_another_prefix() -> None:
    environ = {key.replace("SQUALL_KIS_", "BROKER2_"): value for key, value in ENV.items()}
    assert KisSettings.from_env(prefix="BROKER2_", environ=environ).account == ACCOUNT


@pytest.mark.parametrize("missing", sorted(ENV))
def test_from_env_names_the_missing_variable(missing: str) -> None:
    environ = {key: value for key, value in ENV.items() if key != missing}
    with pytest.raises(SettingsError, match=f"missing environment variable.*{missing}") as info:
        KisSettings.from_env(environ=environ)
    named = str(info.value).split(":")[0]  # the list of what is missing, before the advice
    assert named.endswith(missing)
    assert not any(other in named for other in set(ENV) - {missing})


def test_from_env_lists_every_missing_variable_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        KisSettings.from_env(environ={"SQUALL_KIS_APPKEY": APPKEY})
    for name in ("SQUALL_KIS_BASE_URL", "SQUALL_KIS_APPSECRET", "SQUALL_KIS_ACCOUNT"):
        assert name in str(info.value)


def test_from_env_names_the_invalid_variable_without_echoing_values() -> None:
    environ = {**ENV, "SQUALL_KIS_ACCOUNT": "500123-01", "SQUALL_KIS_TIMEOUT_S": "soon"}
    with pytest.raises(SettingsError) as info:
        KisSettings.from_env(environ=environ)
    message = str(info.value)
    assert "SQUALL_KIS_ACCOUNT" in message
    assert "SQUALL_KIS_TIMEOUT_S" in message
    assert "500123-01" not in message
    assert APPSECRET not in message
    assert isinstance(info.value, ValueError)
