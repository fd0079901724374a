"""Migration files: naming, ordering, and the shipped initial schema (no database here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from system.storage import Migration, MigrationError, load_migrations

TABLES = ["quote_snapshots", "signals", "orders", "halts", "audit_events"]


def write(folder: Path, **files: str) -> Path:
    for name, sql in files.items():
        (folder / name).write_text(sql, encoding="utf-8")
    return folder


def test_migrations_load_in_version_order_and_ignore_other_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        **{
            "0002_add_fills.sql": "create table fills ();",
            "0001_initial.sql": "create table a ();",
            "README.md": "not a migration",
        },
    )
    assert load_migrations(tmp_path) == [
        Migration(1, "initial", "create table a ();"),
        Migration(2, "add_fills", "create table fills ();"),
    ]


@pytest.mark.parametrize("name", ["1_initial.sql", "0001-initial.sql", "0001_Initial.sql"])
def test_a_misnamed_sql_file_is_an_error_that_shows_the_form(tmp_path: Path, name: str) -> None:
    write(tmp_path, **{name: "select 1;"})
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql.*0002_add_fills\.sql"):
        load_migrations(tmp_path)


def test_two_files_with_one_version_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, **{"0003_a.sql": "", "0003_b.sql": ""})
    with pytest.raises(MigrationError, match="share version 3"):
        load_migrations(tmp_path)


def test_the_shipped_initial_migration_creates_the_tables() -> None:
    migrations = load_migrations()
    assert migrations[0].file_name == "0001_initial.sql"
    sql = migrations[0].sql
    for table in TABLES:
        body = re.search(rf"create table {table} \((.*?)\n\);", sql, re.S)
        assert body is not None, table
        columns = body.group(1)
        # The spine every table shares: its key, the system's write sequence, and times.
        assert re.search(r"id\s+bigserial primary key", columns), table
        assert re.search(r"seq\s+bigint not null unique", columns), table
        assert re.search(r"at\s+double precision not null", columns), table
        assert re.search(r"recorded_at\s+timestamptz not null default now\(\)", columns), table
