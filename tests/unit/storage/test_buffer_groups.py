"""Atomic groups in the write buffer: ``submit(*records)`` is written all-or-nothing.

A group is never split across batches, is refused whole when it doesn't fit, is shed only
when it is a lone snapshot, and is rejected whole by a permanent error. ``Backlog`` is
tested directly; ``WriteBuffer`` against ``TransactionalSink``, which commits a batch whole
or not at all, as PostgreSQL does with one transaction per batch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from system.storage.buffer import (
    Backlog,
    BufferClosed,
    BufferFull,
    DeadLetter,
    SinkClosed,
    UnwrittenRecords,
    WriteBuffer,
)
from system.storage.records import AuditEvent, QuoteSnapshot, Record, Signal, StoredOrder

DOWN = ConnectionRefusedError("db down")


def snap(n: int) -> QuoteSnapshot:
    return QuoteSnapshot(code="005930", price=70_000 + n, volume=n, at=float(n))


def order(n: int) -> StoredOrder:
    return StoredOrder(f"c-{n}", "005930", "buy", 1, 70_000, "pending", None, float(n))


def audit(n: int) -> AuditEvent:
    return AuditEvent(kind="order_placed", detail={"client_order_id": f"c-{n}"}, at=float(n))


def signal(n: int) -> Signal:
    return Signal(code="000660", kind="spike", detail={"n": n}, at=float(n))


def placed(n: int) -> tuple[Record, Record]:
    """An order and its audit event: the group the service records before sending."""
    return order(n), audit(n)


def seqs(batch: Sequence[tuple[int, Record]]) -> list[int]:
    return [seq for seq, _ in batch]


class Poison(ValueError):
    """A permanent error: the data is at fault."""


class TransactionalSink:
    """A table keyed by seq; each ``write`` commits the whole batch or nothing."""

    def __init__(self) -> None:
        self.rows: dict[int, Record] = {}
        self.attempts: list[list[int]] = []
        self.error: BaseException | None = None
        self.poison: set[int] = set()

    async def write(self, batch: Sequence[tuple[int, Record]]) -> None:
        self.attempts.append(seqs(batch))
        await asyncio.sleep(0)
        if self.poison.intersection(seqs(batch)):
            raise Poison(f"seq {sorted(self.poison)} violates a check constraint")
        if self.error is not None:
            raise self.error
        for seq, record in batch:
            self.rows.setdefault(seq, record)


def not_poison(error: Exception) -> bool:
    return not isinstance(error, Poison)


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


# --- Backlog ---------------------------------------------------------------------------------


def test_a_group_takes_consecutive_seqs_and_answers_its_last() -> None:
    backlog = Backlog(capacity=10, batch_size=10, start_seq=41)
    assert backlog.add_group(placed(1), 0.0) == (42, ())
    assert backlog.add(snap(2), 0.0) == (43, None)
    assert backlog.add_group((signal(3),), 0.0) == (44, ())
    assert seqs(backlog.records()) == [41, 42, 43, 44]
    assert (backlog.submitted, backlog.pending) == (4, 4)
    with pytest.raises(ValueError, match="at least one record"):
        backlog.add_group((), 0.0)


def test_a_batch_ends_before_a_group_that_would_not_fit_in_it() -> None:
    backlog = Backlog(capacity=20, batch_size=3)
    backlog.add(snap(1), 0.0)  # 1
    backlog.add_group(placed(2), 0.0)  # 2-3
    backlog.add_group(placed(4), 0.0)  # 4-5
    backlog.add(snap(6), 0.0)  # 6
    assert seqs(backlog.take()) == [1, 2, 3]
    backlog.confirm()
    assert seqs(backlog.take()) == [4, 5, 6]
    backlog.confirm()
    backlog.add(snap(7), 0.0)  # 7
    backlog.add_group(placed(8), 0.0)  # 8-9
    backlog.add_group(placed(10), 0.0)  # 10-11
    assert seqs(backlog.take()) == [7, 8, 9]  # 10-11 would make it 5
    backlog.confirm()
    assert seqs(backlog.take()) == [10, 11]


def test_a_group_larger_than_a_batch_is_a_batch_of_its_own() -> None:
    backlog = Backlog(capacity=20, batch_size=2)
    backlog.add(snap(1), 0.0)
    big = tuple(signal(n) for n in range(5))
    assert backlog.add_group(big, 0.0) == (6, ())
    backlog.add(snap(7), 0.0)
    assert seqs(backlog.take()) == [1]
    backlog.confirm()
    assert seqs(backlog.take()) == [2, 3, 4, 5, 6]
    backlog.confirm()
    assert seqs(backlog.take()) == [7]


def test_a_failed_batch_is_retried_with_whole_groups_only() -> None:
    backlog = Backlog(capacity=20, batch_size=4)
    backlog.add_group(placed(1), 0.0)  # 1-2
    assert seqs(backlog.take()) == [1, 2]
    backlog.fail("OSError: down", 1.0, transient=True)
    backlog.add_group((order(3), audit(3), signal(3)), 2.0)  # 3-5: would make it 5
    backlog.add(snap(6), 2.0)
    assert seqs(backlog.take()) == [1, 2]
    backlog.confirm()
    assert seqs(backlog.take()) == [3, 4, 5, 6]


def test_a_group_that_does_not_fit_is_refused_whole_and_takes_no_seq() -> None:
    backlog = Backlog(capacity=3, batch_size=2, capacity_setting="SQUALL_STORAGE_BUFFER_CAPACITY")
    backlog.add(snap(1), 10.0)
    backlog.add(snap(2), 10.0)
    with pytest.raises(BufferFull) as refused:
        backlog.add_group(placed(3), 10.0)
    full = refused.value
    assert full.message == (
        "write buffer full: refused a group of 2 records (StoredOrder, AuditEvent) (2 refused "
        "so far); 2 records are waiting to be written (capacity 3), and the database accepts "
        "writes, but more slowly than records arrive. Restore the database, or raise the write "
        "buffer's capacity (SQUALL_STORAGE_BUFFER_CAPACITY) to ride out longer outages."
    )
    assert (full.records, full.record) == (placed(3), order(3))
    assert (backlog.refused, backlog.next_seq, backlog.pending) == (2, 3, 2)
    assert backlog.add(snap(3), 11.0) == (3, None)  # a single record still fits


def test_a_group_larger_than_the_buffer_can_never_fit_and_says_so() -> None:
    backlog = Backlog(capacity=2, batch_size=2)
    with pytest.raises(BufferFull, match=r"larger than the whole buffer \(capacity 2\)"):
        backlog.add_group((order(1), audit(1), signal(1)), 0.0)
    assert (backlog.refused, backlog.pending) == (3, 0)


def test_shedding_takes_only_lone_snapshots_enough_for_the_whole_group_or_none() -> None:
    backlog = Backlog(capacity=4, batch_size=10, on_full="shed-oldest-snapshots")
    backlog.add_group((snap(1), order(1)), 0.0)  # 1-2: a snapshot inside a group
    backlog.add(snap(3), 0.0)  # 3
    backlog.add(snap(4), 0.0)  # 4
    assert backlog.add_group(placed(5), 1.0) == (6, (3, 4))  # both lone snapshots go
    assert seqs(backlog.records()) == [1, 2, 5, 6]
    # Nothing lone is left to shed: the snapshot inside the first group stays.
    with pytest.raises(BufferFull, match="none of them a quote snapshot that can be shed"):
        backlog.add(snap(7), 1.0)
    assert (backlog.shed, backlog.refused) == (2, 1)


def test_shedding_sheds_nothing_when_it_cannot_make_room_for_the_whole_group() -> None:
    backlog = Backlog(capacity=3, batch_size=10, on_full="shed-oldest-snapshots")
    backlog.add(order(1), 0.0)
    backlog.add(order(2), 0.0)
    backlog.add(snap(3), 0.0)
    with pytest.raises(BufferFull, match=r"too few of them quote snapshots .* room for 2"):
        backlog.add_group(placed(4), 1.0)
    assert seqs(backlog.records()) == [1, 2, 3]  # the one snapshot was kept
    assert (backlog.shed, backlog.refused) == (0, 2)


def test_a_permanent_failure_is_narrowed_to_one_group_which_is_rejected_whole() -> None:
    backlog = Backlog(capacity=20, batch_size=6)
    backlog.add(signal(1), 0.0)  # 1
    backlog.add_group(placed(2), 0.0)  # 2-3
    backlog.add_group(placed(4), 0.0)  # 4-5
    backlog.add(signal(6), 0.0)  # 6
    backlog.add(signal(7), 0.0)  # 7
    assert seqs(backlog.take()) == [1, 2, 3, 4, 5, 6]
    assert backlog.fail("Poison: check", 1.0, transient=False) == ()
    assert seqs(backlog.take()) == [1]
    backlog.confirm()
    assert seqs(backlog.take()) == [2, 3]  # one group at a time, not one record
    assert backlog.fail("Poison: check", 1.0, transient=False) == (
        DeadLetter(2, order(2), "Poison: check"),
        DeadLetter(3, audit(2), "Poison: check"),
    )
    assert seqs(backlog.take()) == [4, 5]
    backlog.confirm()
    assert seqs(backlog.take()) == [6]
    backlog.confirm()
    assert seqs(backlog.take()) == [7]  # past the failed batch: full batches again
    backlog.confirm()
    assert (backlog.written, backlog.rejected, backlog.pending) == (5, 2, 0)


def test_a_lone_group_failing_permanently_is_rejected_at_once() -> None:
    backlog = Backlog(capacity=20, batch_size=2)
    backlog.add_group((order(1), audit(1), signal(1)), 0.0)
    assert seqs(backlog.take()) == [1, 2, 3]
    letters = backlog.fail("Poison: check", 1.0, transient=False)
    assert [letter.seq for letter in letters] == [1, 2, 3]
    assert (backlog.rejected, backlog.pending, len(backlog.dead_letters)) == (3, 0, 3)


def test_random_histories_write_or_remove_every_group_whole_and_in_order() -> None:
    rng = random.Random(11)
    makers = [snap, order, audit, signal]
    for _ in range(300):
        backlog = Backlog(
            capacity=rng.randint(1, 10),
            batch_size=rng.randint(1, 5),
            on_full=rng.choice(["refuse", "shed-oldest-snapshots"]),
        )
        groups: dict[int, tuple[int, ...]] = {}  # every seq -> its group's seqs
        kinds: dict[int, type[Record]] = {}
        written: list[int] = []
        removed: list[int] = []
        in_flight: list[int] = []
        for step in range(80):
            action = rng.random()
            if action < 0.45:
                size = rng.choice([1, 1, 2, 3])
                records = [rng.choice(makers)(step) for _ in range(size)]
                try:
                    last, shed = backlog.add_group(records, float(step))
                except BufferFull:
                    continue
                group = tuple(range(last - size + 1, last + 1))
                groups.update(dict.fromkeys(group, group))
                kinds.update(zip(group, map(type, records), strict=True))
                for seq in shed:
                    assert groups[seq] == (seq,), "only a lone snapshot is shed"
                    assert kinds[seq] is QuoteSnapshot
                    assert seq not in in_flight
                removed += shed
            elif action < 0.65:
                batch = seqs(backlog.take())
                if not in_flight:
                    in_flight = batch
            elif in_flight:
                if action < 0.85:
                    assert seqs(backlog.confirm()) == in_flight
                    written += in_flight
                else:
                    letters = backlog.fail("E", float(step), transient=action < 0.95)
                    removed += [letter.seq for letter in letters]
                in_flight = []
            stats = backlog.stats(float(step))
            assert stats.submitted == stats.written + stats.shed + stats.rejected + stats.pending
            assert stats.pending <= stats.capacity
        assert written == sorted(written)
        assert len(written) == len(set(written))
        gone = set(written) | set(removed)
        waiting = set(seqs(backlog.records()))
        assert gone | waiting == set(groups)
        for group in set(groups.values()):
            # Whole: written together, removed together, or waiting together.
            assert (
                set(group) <= set(written) or set(group) <= set(removed) or (set(group) <= waiting)
            ), group


# --- WriteBuffer -----------------------------------------------------------------------------


@pytest.mark.looptime
async def test_submit_queues_a_group_and_returns_its_last_seq() -> None:
    sink = TransactionalSink()
    async with WriteBuffer(sink, batch_size=3) as buffer:
        assert buffer.submit(snap(1)) == 1
        assert buffer.submit(*placed(2)) == 3
        assert buffer.submit(*placed(4)) == 5
        stats = await buffer.flush(1.0)
    assert sink.attempts == [[1, 2, 3], [4, 5]]
    assert sink.rows == {1: snap(1), 2: order(2), 3: audit(2), 4: order(4), 5: audit(4)}
    assert (stats.submitted, stats.written) == (5, 5)


@pytest.mark.looptime
async def test_a_group_with_one_non_record_is_refused_whole() -> None:
    async with WriteBuffer(TransactionalSink()) as buffer:
        with pytest.raises(TypeError, match=r"WriteBuffer\.submit takes a record"):
            buffer.submit(order(1), {"kind": "audit"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="one or more records, got none"):
            buffer.submit()
        assert (buffer.stats().submitted, buffer.stats().pending) == (0, 0)


@pytest.mark.looptime
async def test_a_closed_buffer_refuses_a_group_and_counts_its_records() -> None:
    buffer = WriteBuffer(TransactionalSink())
    buffer.start()
    await buffer.close()
    with pytest.raises(BufferClosed, match=r"a group of 2 records \(StoredOrder, AuditEvent\)"):
        buffer.submit(*placed(1))
    assert buffer.stats().refused == 2


@pytest.mark.looptime
async def test_through_an_outage_every_attempt_carries_whole_groups() -> None:
    sink = TransactionalSink()
    sink.error = DOWN
    async with WriteBuffer(sink, batch_size=5, rng=random.Random(2)) as buffer:
        for n in range(20):
            if n % 3:
                buffer.submit(*placed(n))
            else:
                buffer.submit(snap(n))
            await asyncio.sleep(0.5)
        sink.error = None
        stats = await buffer.flush(60.0)
    starts = {seq for seq, record in sink.rows.items() if not isinstance(record, AuditEvent)}
    for attempt in sink.attempts:
        assert attempt[0] in starts  # begins with the first record of a group
        assert isinstance(sink.rows[attempt[-1]], AuditEvent | QuoteSnapshot)  # ends one
    assert stats.written == stats.submitted == len(sink.rows)


@pytest.mark.looptime
async def test_a_poisoned_group_is_rejected_whole_and_the_rest_written() -> None:
    sink = TransactionalSink()
    sink.poison = {5}  # the audit event of the second group
    async with WriteBuffer(sink, batch_size=10, is_transient=not_poison) as buffer:
        buffer.submit(signal(1))  # 1
        buffer.submit(*placed(2))  # 2-3
        buffer.submit(*placed(4))  # 4-5
        buffer.submit(signal(6))  # 6
        stats = await buffer.flush(1.0)
    assert sink.attempts == [[1, 2, 3, 4, 5, 6], [1], [2, 3], [4, 5], [6]]
    assert sorted(sink.rows) == [1, 2, 3, 6]  # neither 4 nor 5: the order has no audit
    assert (stats.written, stats.rejected) == (4, 2)
    assert [letter.seq for letter in buffer.dead_letters] == [4, 5]


@pytest.mark.looptime
async def test_retry_now_cuts_the_backoff_short() -> None:
    sink = TransactionalSink()
    sink.error = DOWN
    buffer = WriteBuffer(sink, backoff_base_s=30.0, backoff_max_s=60.0)
    buffer.start()
    buffer.submit(snap(1))
    await asyncio.sleep(1.0)
    assert len(sink.attempts) == 1  # and the next is 15-30 s away
    sink.error = None
    loop = asyncio.get_running_loop()
    began = loop.time()
    buffer.retry_now()
    await buffer.flush(1.0)
    assert loop.time() - began < 0.01
    assert sink.rows == {1: snap(1)}
    buffer.retry_now()  # nothing failing: nothing happens
    await buffer.close()


@pytest.mark.looptime
async def test_a_closed_sink_stops_the_drain_and_close_hands_the_records_back() -> None:
    sink = TransactionalSink()
    sink.error = SinkClosed("the database pool is closed")
    buffer = WriteBuffer(sink)
    buffer.start()
    buffer.submit(*placed(1))
    await asyncio.sleep(5.0)
    assert sink.attempts == [[1, 2]]  # no spinning into a closed pool
    with pytest.raises(BufferClosed, match="the write buffer is closed"):
        buffer.submit(snap(3))
    assert buffer.stats().last_error == "SinkClosed: the database pool is closed"
    with pytest.raises(UnwrittenRecords) as unwritten:
        await buffer.close(1.0)
    assert seqs(unwritten.value.records) == [1, 2]
