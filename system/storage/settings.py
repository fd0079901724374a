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

from pydantic import BaseModel, ConfigDict, Field

from system.storage.buffer import OnFull
from system.storage.config import PoolConfig, model_from_env

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
    linger_s: float = Field(
        default=0.05,
        ge=0,
        le=5,
        description="When a record arrives while nothing is waiting, how long the buffer "
        "waits for more to join its batch (0: write at once). Records come in bursts (a "
        "snapshot of each code, an order and its audit event): one transaction for the "
        "burst instead of one each, at this much more latency for the first.",
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
        return model_from_env(cls, env, prefix=ENV_PREFIX, what="storage", given={"pool": pool})
