"""Everything ``Storage`` needs to know: ``StorageSettings`` (the pool plus the write path).

``StorageSettings.from_env()`` reads the pool from ``SQUALL_DATABASE_URL`` and
``SQUALL_DB_*`` (``PoolConfig.from_env``) and the write path from ``SQUALL_STORAGE_*``:
``SQUALL_STORAGE_BUFFER_CAPACITY``, ``SQUALL_STORAGE_BATCH_SIZE``, ``SQUALL_STORAGE_ON_FULL``,
``SQUALL_STORAGE_FLUSH_TIMEOUT_S`` (and ``SQUALL_STORAGE_TRANSACTIONAL``, which only a
scenario proving its own checks should ever set).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from system.broker.settings import SettingsError
from system.storage.buffer import OnFull
from system.storage.config import PoolConfig

ENV_PREFIX = "SQUALL_STORAGE_"
# Named in BufferFull's advice: what to raise to ride out a longer outage.
CAPACITY_VARIABLE = f"{ENV_PREFIX}BUFFER_CAPACITY"


class StorageSettings(BaseModel):
    """The pool's settings and the write buffer's (strict, frozen; the DSN never printed)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", hide_input_in_errors=True)

    pool: PoolConfig
    buffer_capacity: int = Field(
        default=10_000,
        ge=1,
        description="Records the write buffer holds while the database is slow or away; at "
        "capacity on_full decides. About how long an outage can last without losing "
        "anything: capacity / records written per second.",
    )
    batch_size: int = Field(
        default=100,
        ge=1,
        description="Most records written in one transaction (a larger atomic group is "
        "written alone)",
    )
    on_full: OnFull = Field(
        default="refuse",
        description='"refuse": a record that does not fit raises BufferFull (the caller '
        'decides; the service does not send an order it cannot record). "shed-oldest-'
        'snapshots": drop the oldest waiting quote snapshots to make room; nothing else is '
        "ever dropped.",
    )
    flush_timeout_s: float = Field(
        default=10.0,
        ge=0,
        description="close() waits this long for queued records to be written; what is "
        "left is logged as not written",
    )
    transactional: bool = Field(
        default=True,
        description="True (the only safe choice) writes each batch in one transaction, so "
        "a group of records (an order and its audit event) is stored whole or not at all. "
        "False is DELIBERATELY UNSAFE: it commits every record on its own instead of one "
        "transaction per batch, so a connection lost mid-batch leaves half-written groups. "
        "It exists only so Squall's scenarios can prove they catch half-written groups; "
        "never use it in production.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageSettings:
        """``PoolConfig.from_env`` plus ``SQUALL_STORAGE_{FIELD}`` for the other fields.

        Empty variables count as unset. A ``SettingsError`` names the variable at fault and
        never its value.
        """
        env = os.environ if environ is None else environ
        pool = PoolConfig.from_env(env)
        values: dict[str, object] = {}
        for name in cls.model_fields:
            if name == "pool":
                continue
            raw = env.get(f"{ENV_PREFIX}{name.upper()}", "")
            if raw.strip():
                values[name] = raw.strip()
        try:
            # Environment values are strings; the model is strict for Python callers only.
            return cls.model_validate({"pool": pool, **values}, strict=False)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_variable_for(error['loc'])}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            )
            raise SettingsError(
                f"invalid storage settings in the environment: {problems}"
            ) from None


def _variable_for(loc: tuple[int | str, ...]) -> str:
    if not loc:  # a check across fields has no single variable to name
        return f"{ENV_PREFIX}*"
    return f"{ENV_PREFIX}{str(loc[0]).upper()}"
