"""What the system stored, checked against what it was told to store.

The harness sits at the system's recording seam (``RecordLog`` wraps the service's
recorder) and notes every group of records the storage *accepted*, with its seqs. It reads
PostgreSQL directly, never through the fault proxy, so a check sees what the server holds:

- **writes-not-lost**: after the run (and the write buffer's final flush), every accepted
  record is in its table — a snapshot, signal, halt, audit event or opportunity under its
  own seq, an order under its client order id in the last state the system gave it — and
  the rows were committed in seq order.
- **groups-not-half-written**: an order the system recorded and the audit event recorded
  with it are one group, written in one transaction; ``HalfWrittenProbe`` looks four times
  a second during the run for an order without its event or an event without its order.

Every wait on PostgreSQL is held in the loop's ``realtime_guard()``, so the checks' own
timeouts hold on virtual time too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from harness.clock import realtime_guard
from harness.result import Check
from system.service import Recorder
from system.storage.records import Record, StoredOrder
from system.storage.store import TABLES

WRITES_NOT_LOST = "no write the storage accepted is lost, and rows were committed in seq order"
GROUPS_NOT_HALF_WRITTEN = "no order is stored without its audit event, or the other way round"
# How often the half-written probe looks: near a database fault, and away from any.
BUSY_EVERY_S = 0.25
QUIET_EVERY_S = 120.0
# How long after a fault ends the probe keeps looking closely: a cut batch is retried
# within the write buffer's backoff, a few seconds.
SETTLE_S = 15.0

# Orders without their "order-recorded" event, and such events without their order.
_HALF_WRITTEN = """
select
  (select count(*) from orders o where not exists (
     select 1 from audit_events a
     where a.kind = 'order-recorded' and a.detail->>'client_order_id' = o.client_order_id))
  +
  (select count(*) from audit_events a where a.kind = 'order-recorded' and not exists (
     select 1 from orders o where o.client_order_id = a.detail->>'client_order_id'))
"""


@dataclass
class RecordLog:
    """A recorder that passes everything to ``inner`` and notes what it accepted."""

    inner: Recorder
    accepted: list[tuple[int, Record]] = field(default_factory=list)

    def record(self, *records: Record) -> int:
        last = self.inner.record(*records)  # a refusal raises: nothing to note
        first = last - len(records) + 1
        self.accepted.extend(zip(range(first, last + 1), records, strict=True))
        return last


@dataclass
class HalfWrittenProbe:
    """Counts half-written order groups, on a connection of its own: four times a second
    from a database fault's start until ``SETTLE_S`` after its end, once every
    ``QUIET_EVERY_S`` otherwise.

    A group left half-written by a cut is repaired when its batch is retried, a second or
    two later: a slower look could miss it (and did, once a second, on a busy machine). Away
    from the faults a group is written in one transaction, whole or not at all; a quick
    look there would only spend the run's time (on virtual time every look is real time:
    a trading day at four a second is 94,000 queries)."""

    direct_url: str
    origin: float
    # The database faults' windows, in scenario seconds.
    faults: Sequence[tuple[float, float]] = ()
    worst: int = 0
    worst_at: float | None = None
    probes: int = 0
    errors: list[str] = field(default_factory=list)

    def every_s(self, at: float) -> float:
        """Seconds until the next look, at scenario second ``at``."""
        near = any(start <= at <= end + SETTLE_S for start, end in self.faults)
        if near:
            return BUSY_EVERY_S
        # Quiet: but wake for the next fault's start. Never sooner than a busy look: a
        # sleep too short to move the loop's clock would wake at the same moment forever.
        upcoming = [max(BUSY_EVERY_S, start - at) for start, _ in self.faults if start > at]
        return min([QUIET_EVERY_S, *upcoming])

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        guard = realtime_guard()
        try:
            with guard:
                conn = await asyncpg.connect(self.direct_url, timeout=10)
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            self.errors.append(f"connect: {type(exc).__name__}")  # the check says why
            return
        try:
            while True:
                try:
                    with guard:
                        count = int(await conn.fetchval(_HALF_WRITTEN, timeout=5))
                except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                    self.errors.append(type(exc).__name__)
                else:
                    self.probes += 1
                    if count > self.worst:
                        self.worst, self.worst_at = count, loop.time() - self.origin
                await asyncio.sleep(self.every_s(loop.time() - self.origin))
        finally:
            with contextlib.suppress(Exception), guard:
                await conn.close(timeout=2)

    def check(self) -> Check:
        if self.probes == 0:
            errors = ", ".join(sorted(set(self.errors))) or "none ran"
            return Check(
                GROUPS_NOT_HALF_WRITTEN, False, f"no probe succeeded ({errors})", "invariant"
            )
        if self.worst:
            return Check(
                GROUPS_NOT_HALF_WRITTEN,
                False,
                f"{self.worst} half-written order group(s) at t={self.worst_at:.1f} "
                f"({self.probes} probes)",
                "invariant",
            )
        return Check(
            GROUPS_NOT_HALF_WRITTEN,
            True,
            f"none in {self.probes} probes (four a second around database faults)",
            "invariant",
        )


@dataclass(frozen=True)
class StoredRows:
    """What PostgreSQL holds once a run is over, read once (directly, not through the
    proxy) for every check and tally that needs it: each table's seqs, every row's seq
    with its commit time, and each order's state by client order id."""

    seqs: dict[str, set[int]]
    committed: list[tuple[int, datetime]]
    orders: dict[str, str]


async def read_stored(direct_url: str) -> StoredRows:
    with realtime_guard():
        conn = await asyncpg.connect(direct_url, timeout=10)
        try:
            seqs: dict[str, set[int]] = {}
            committed: list[tuple[int, datetime]] = []
            for table in TABLES:
                rows = await conn.fetch(f"select seq, recorded_at from {table}")
                seqs[table] = {row["seq"] for row in rows}
                committed += [(row["seq"], row["recorded_at"]) for row in rows]
            orders = {
                row["client_order_id"]: row["state"]
                for row in await conn.fetch("select client_order_id, state from orders")
            }
        finally:
            await conn.close(timeout=5)
    return StoredRows(seqs, committed, orders)


def writes_not_lost(stored_rows: StoredRows, accepted: Sequence[tuple[int, Record]]) -> Check:
    """Every accepted record in PostgreSQL (see the module docstring)."""
    stored, orders = stored_rows.seqs, stored_rows.orders
    committed = sorted(stored_rows.committed, key=lambda row: row[0])
    problems: list[str] = []
    final_state: dict[str, str] = {}
    for seq, record in accepted:
        if isinstance(record, StoredOrder):
            final_state[record.client_order_id] = record.state
        elif seq not in stored[record.table]:
            problems.append(f"{type(record).__name__} seq {seq} (at {record.at:.1f}) is missing")
    for cid, state in final_state.items():
        if cid not in orders:
            problems.append(f"order {cid} is missing")
        elif orders[cid] != state:
            problems.append(f"order {cid} is stored as {orders[cid]!r}, last recorded {state!r}")
    for (seq, at), (next_seq, next_at) in itertools.pairwise(committed):
        if next_at < at:
            problems.append(f"seq {next_seq} was committed before seq {seq}")
            break
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return Check(
            WRITES_NOT_LOST, False, f"{len(problems)} problem(s): {shown}{more}", "invariant"
        )
    return Check(
        WRITES_NOT_LOST,
        True,
        f"all {len(accepted)} accepted records stored, committed in seq order",
        "invariant",
    )
