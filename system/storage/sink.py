"""The write buffer's way into PostgreSQL: ``PostgresSink`` and its ``is_transient``.

One transaction per batch: the batch's records become one ``executemany`` per run of a
table (``records.statements``), committed together, so a group of records (an order and
its audit event) is stored whole or not at all. A batch of one table's records is one
``executemany`` alone, which asyncpg makes atomic itself (since 0.22): the same guarantee
in one round trip instead of three (BEGIN, the statement, COMMIT). A lost ``COMMIT`` (or
a lost answer to that one statement) is retried by the buffer like any transient failure:
every INSERT is idempotent by ``seq``.

``transactional=False`` is the deliberately unsafe mode (see ``StorageSettings``): each
record is committed on its own, so a connection lost in mid-batch leaves part of a group.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from system.storage.buffer import SinkClosed
from system.storage.errors import PoolClosedError
from system.storage.pool import PoolManager
from system.storage.records import Record, statements

# The server refused the data itself (SQLSTATE classes 22 and 23): the same rows fail the
# same way on every retry, so retrying would hold up the whole queue for good. asyncpg's
# client-side encoding errors (a value its codec cannot send) are the same case.
_DATA_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions._base.DataError,
)


def is_transient(error: Exception) -> bool:
    """Whether a failed write is worth retrying (the write buffer's predicate).

    Permanent: the server refused the data (a constraint violation, a value out of range).
    Transient: everything else — the storage errors (``DatabaseUnavailable``,
    ``PoolTimeoutError``, ``QueryTimeoutError``, ``PoolClosedError``: nothing about the
    records), server and schema trouble (a missing table waits for the migration), and
    anything unknown, because a record kept can still be written and a record rejected
    cannot. ``PostgresSink`` turns ``PoolClosedError`` into ``SinkClosed``, which stops
    the drain instead of retrying into a closed pool.
    """
    return not isinstance(error, _DATA_ERRORS)


class PostgresSink:
    """``Sink`` over a ``PoolManager``: one transaction per batch (see the module docstring)."""

    def __init__(self, pool: PoolManager, *, transactional: bool = True) -> None:
        self.pool = pool
        self.transactional = transactional

    async def write(self, batch: Sequence[tuple[int, Record]]) -> None:
        """Store ``batch``; returning means committed. Errors are the pool's (see
        ``is_transient``), or ``SinkClosed`` once the pool is closed."""
        try:
            if not self.transactional:
                # Autocommit: every statement is its own transaction (the unsafe mode).
                async with self.pool.connection() as conn:
                    for seq, record in batch:
                        await conn.execute(record.insert_sql, *record.args(seq))
                return
            runs = statements(batch)
            if len(runs) == 1:  # one executemany is atomic by itself
                ((sql, args),) = runs
                await self.pool.executemany(sql, args)
                return
            async with self.pool.transaction() as conn:
                for sql, args in runs:
                    await conn.executemany(sql, args)
        except PoolClosedError as exc:
            raise SinkClosed(
                f"the database pool for {self.pool.server} is closed, so nothing more can be "
                "written through it"
            ) from exc
