"""Versioned SQL, applied at start-up: ``apply_migrations(manager)``.

Migrations are files ``NNNN_name.sql`` in ``system/storage/migrations/``, applied in
version order, each in one transaction together with its row in
``schema_migrations(version, name, applied_at)``: a file is applied completely or not at
all, and never twice.

Several processes may start against one database at once (two gateway workers, a
restarted service racing its predecessor). Every transaction here first takes the
transaction-scoped advisory lock ``MIGRATION_LOCK``, so one process applies a file while
the others wait, then find it recorded and skip it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

from system.storage.errors import MigrationError
from system.storage.failures import connection_lost, describe
from system.storage.pool import PoolManager

# pg_advisory_xact_lock key: "Squall" in ASCII, so a DBA who finds it in pg_locks can
# tell whose it is.
MIGRATION_LOCK = int.from_bytes(b"Squall", "big")

_PACKAGE = "system.storage"
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_LOCK = "select pg_advisory_xact_lock($1)"
_RECORDED = "select version, name from schema_migrations"
_CREATE_TABLE = """
create table if not exists schema_migrations (
    version    integer primary key,
    name       text not null,
    applied_at timestamptz not null default now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file: ``0001_initial.sql`` is version 1, name ``initial``."""

    version: int
    name: str
    sql: str

    @property
    def file_name(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def load_migrations(directory: Traversable | Path | None = None) -> list[Migration]:
    """The migrations in ``directory`` (default: the package's own), in version order.

    Files not ending in ``.sql`` are ignored; a ``.sql`` file whose name is not
    ``NNNN_name.sql`` (lower-case name), or two files with one version, are errors.
    """
    folder = directory if directory is not None else resources.files(_PACKAGE) / "migrations"
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name!r} in {folder} is not named NNNN_name.sql "
                "(four digits, an underscore, a lower-case name): rename it, e.g. "
                "0002_add_fills.sql"
            )
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"migration files {found[version].file_name!r} and {entry.name!r} in {folder} "
                f"share version {version}: give one of them the next free number"
            )
        found[version] = Migration(version, match["name"], entry.read_text(encoding="utf-8"))
    return [found[version] for version in sorted(found)]


async def apply_migrations(
    manager: PoolManager,
    migrations: list[Migration] | None = None,
    *,
    timeout_s: float = 60.0,
) -> list[Migration]:
    """Apply the migrations not yet recorded in ``schema_migrations``; returns those applied.

    Idempotent, and safe to run from several processes at once (see the module docstring).
    ``timeout_s`` bounds each statement, including the wait for another process's lock.
    Raises ``MigrationError`` when a file fails (nothing of it is applied) or when the
    database records a version under another name than the file has.
    """
    pending = load_migrations() if migrations is None else migrations
    applied: list[Migration] = []
    async with manager.connection() as conn:
        async with conn.transaction():
            await conn.execute(_LOCK, MIGRATION_LOCK, timeout=timeout_s)
            await conn.execute(_CREATE_TABLE, timeout=timeout_s)
            rows = await conn.fetch(_RECORDED, timeout=timeout_s)
        recorded: dict[int, str] = {row["version"]: row["name"] for row in rows}
        for migration in pending:
            _check_name(migration, recorded, manager.server)
            if migration.version in recorded:
                continue
            async with conn.transaction():
                await conn.execute(_LOCK, MIGRATION_LOCK, timeout=timeout_s)
                # Another process may have applied it while we waited for the lock.
                name = await conn.fetchval(
                    "select name from schema_migrations where version = $1",
                    migration.version,
                    timeout=timeout_s,
                )
                if name is not None:
                    _check_name(migration, {migration.version: name}, manager.server)
                    continue
                try:
                    await conn.execute(migration.sql, timeout=timeout_s)
                except asyncpg.PostgresError as exc:
                    if connection_lost(exc, conn):
                        raise  # not the file's fault: the pool's error translation applies
                    raise MigrationError(
                        f"migration {migration.file_name} failed on {manager.server}: "
                        f"{describe(exc, manager.config.dsn)}; nothing of it was applied (it "
                        "runs in one transaction) — fix the file and start again",
                        server=manager.server,
                    ) from exc
                await conn.execute(
                    "insert into schema_migrations (version, name) values ($1, $2)",
                    migration.version,
                    migration.name,
                    timeout=timeout_s,
                )
            applied.append(migration)
    return applied


def _check_name(migration: Migration, recorded: dict[int, str], server: str) -> None:
    name = recorded.get(migration.version)
    if name is not None and name != migration.name:
        raise MigrationError(
            f"{server} records migration {migration.version:04d} as {name!r}, but the file "
            f"is {migration.file_name}: an applied migration was renamed or replaced — "
            "restore it, and put changes in a new file with the next version"
        )
