"""PoolConfig: defaults, validation, secrecy, and reading the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from system.broker import SettingsError
from system.storage import PoolConfig

PASSWORD = "pA55-NEVER-PRINT"
URL = f"postgresql://squall:{PASSWORD}@db.test:6543/trading"


def test_defaults_match_the_documented_policy() -> None:
    config = PoolConfig(url=URL)
    assert (config.min_size, config.max_size) == (1, 10)
    assert (config.connect_timeout_s, config.acquire_timeout_s, config.query_timeout_s) == (
        10.0,
        30.0,
        5.0,
    )
    assert config.reconnect_backoff_base_s < config.reconnect_backoff_max_s


def test_the_url_is_secret_and_its_server_is_named_without_it() -> None:
    config = PoolConfig(url=URL)
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)
    assert config.dsn == URL
    assert config.redacted_url == "postgresql://squall:***@db.test:6543/trading"
    assert config.server == "db.test:6543/trading"


def test_libpq_defaults_fill_in_the_server_description() -> None:
    assert PoolConfig(url="postgresql://squall@/").server == "localhost:5432/squall"


def test_a_non_postgres_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        PoolConfig(url=f"mysql://root:{PASSWORD}@db.test/x")
    assert "postgresql://" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_size", 0),
        ("min_size", -1),
        ("acquire_timeout_s", 0),
        ("query_timeout_s", -1.0),
        ("reconnect_backoff_base_s", 0),
    ],
)
def test_nonsense_knobs_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        PoolConfig.model_validate({"url": URL, field: value})


def test_min_size_above_max_size_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"min_size \(5\) must not exceed max_size \(2\)"):
        PoolConfig(url=URL, min_size=5, max_size=2)


def test_strict_for_python_callers() -> None:
    with pytest.raises(ValidationError):
        PoolConfig.model_validate({"url": URL, "max_size": "3"})


def test_frozen_and_closed_to_unknown_fields() -> None:
    config = PoolConfig(url=URL)
    with pytest.raises(ValidationError):
        config.max_size = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="pool_size"):
        PoolConfig.model_validate({"url": URL, "pool_size": 3})


def test_from_env_reads_squall_database_url_and_the_numbers() -> None:
    config = PoolConfig.from_env(
        {
            "SQUALL_DATABASE_URL": URL,
            "DATABASE_URL": "postgresql://other@elsewhere/db",
            "SQUALL_DB_MAX_SIZE": "4",
            "SQUALL_DB_MIN_SIZE": " 2 ",
            "SQUALL_DB_ACQUIRE_TIMEOUT_S": "2.5",
            "SQUALL_DB_QUERY_TIMEOUT_S": "",  # empty counts as unset
        }
    )
    assert config.dsn == URL
    assert (config.min_size, config.max_size, config.acquire_timeout_s) == (2, 4, 2.5)
    assert config.query_timeout_s == 5.0


def test_from_env_falls_back_to_database_url() -> None:
    assert PoolConfig.from_env({"DATABASE_URL": URL}).dsn == URL


def test_from_env_without_a_url_names_both_variables() -> None:
    with pytest.raises(SettingsError, match=r"SQUALL_DATABASE_URL \(or DATABASE_URL\)"):
        PoolConfig.from_env({"SQUALL_DB_MAX_SIZE": "4"})


def test_from_env_names_the_variable_at_fault_and_never_the_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        PoolConfig.from_env({"SQUALL_DATABASE_URL": URL, "SQUALL_DB_MAX_SIZE": "lots"})
    assert "SQUALL_DB_MAX_SIZE" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_from_env_names_the_url_variable_it_read() -> None:
    with pytest.raises(SettingsError) as caught:
        PoolConfig.from_env({"DATABASE_URL": f"mysql://u:{PASSWORD}@h/db"})
    assert "DATABASE_URL:" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_from_env_reports_a_check_across_fields() -> None:
    with pytest.raises(SettingsError, match=r"SQUALL_DB_\*: .*min_size"):
        PoolConfig.from_env(
            {"DATABASE_URL": URL, "SQUALL_DB_MIN_SIZE": "9", "SQUALL_DB_MAX_SIZE": "3"}
        )
