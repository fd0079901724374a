"""StorageSettings: defaults, strictness, the unsafe switch, and reading the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from system.broker import SettingsError
from system.storage import PoolConfig, StorageSettings
from system.storage.settings import CAPACITY_VARIABLE

PASSWORD = "pA55-NEVER-PRINT"
URL = f"postgresql://squall:{PASSWORD}@db.test:6543/trading"


def test_defaults() -> None:
    settings = StorageSettings(pool=PoolConfig(url=URL))
    assert (settings.buffer_capacity, settings.batch_size, settings.on_full) == (
        10_000,
        100,
        "refuse",
    )
    assert (settings.flush_timeout_s, settings.transactional) == (10.0, True)
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)


def test_the_unsafe_mode_says_so_in_its_description() -> None:
    description = StorageSettings.model_fields["transactional"].description or ""
    assert "DELIBERATELY UNSAFE" in description
    assert "never use it in production" in description
    assert StorageSettings(pool=PoolConfig(url=URL), transactional=False).transactional is False


def test_strict_frozen_and_closed() -> None:
    pool = PoolConfig(url=URL)
    with pytest.raises(ValidationError, match="buffer_capacity"):
        StorageSettings.model_validate({"pool": pool, "buffer_capacity": "10"})
    with pytest.raises(ValidationError, match="on_full"):
        StorageSettings(pool=pool, on_full="drop-everything")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="batch_size"):
        StorageSettings(pool=pool, batch_size=0)
    with pytest.raises(ValidationError, match="capacity"):
        StorageSettings.model_validate({"pool": pool, "capacity": 3})
    settings = StorageSettings(pool=pool)
    with pytest.raises(ValidationError):
        settings.batch_size = 3  # type: ignore[misc]


def test_from_env_reads_the_pool_and_the_storage_variables() -> None:
    settings = StorageSettings.from_env(
        {
            "SQUALL_DATABASE_URL": URL,
            "SQUALL_DB_MAX_SIZE": "4",
            "SQUALL_STORAGE_BUFFER_CAPACITY": "500",
            "SQUALL_STORAGE_BATCH_SIZE": " 20 ",
            "SQUALL_STORAGE_ON_FULL": "shed-oldest-snapshots",
            "SQUALL_STORAGE_FLUSH_TIMEOUT_S": "2.5",
            "SQUALL_STORAGE_TRANSACTIONAL": "",  # empty: unset
        }
    )
    assert settings.pool.max_size == 4
    assert settings.pool.dsn == URL
    assert (settings.buffer_capacity, settings.batch_size, settings.on_full) == (
        500,
        20,
        "shed-oldest-snapshots",
    )
    assert (settings.flush_timeout_s, settings.transactional) == (2.5, True)
    assert StorageSettings.from_env({"DATABASE_URL": URL}).buffer_capacity == 10_000


def test_from_env_errors_name_the_variable_and_never_the_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        StorageSettings.from_env(
            {
                "SQUALL_DATABASE_URL": URL,
                "SQUALL_STORAGE_BUFFER_CAPACITY": "lots",
                "SQUALL_STORAGE_ON_FULL": "panic",
            }
        )
    message = str(caught.value)
    assert message.startswith("invalid storage settings in the environment: ")
    assert "SQUALL_STORAGE_BUFFER_CAPACITY:" in message
    assert "SQUALL_STORAGE_ON_FULL:" in message
    assert "lots" not in message
    assert PASSWORD not in message


def test_from_env_without_a_database_url_says_which_variable_to_set() -> None:
    with pytest.raises(SettingsError, match="missing environment variable SQUALL_DATABASE_URL"):
        StorageSettings.from_env({"SQUALL_STORAGE_BATCH_SIZE": "5"})


def test_the_capacity_variable_is_the_one_buffer_full_names() -> None:
    assert CAPACITY_VARIABLE == "SQUALL_STORAGE_BUFFER_CAPACITY"
