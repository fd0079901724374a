"""WriteBuffer: nothing lost across an outage, order kept, full handled out loud.

``Backlog`` (the pure decisions) is tested directly; ``WriteBuffer`` (its asyncio driver)
against ``FakeSink``, a table keyed by seq like the real ones (``on conflict (seq) do
nothing``) that can be told to fail. Driver tests run on looptime: a 30 s outage takes no
wall time, and times are compared on the loop's clock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence

import pytest

from system.broker.backoff import jittered_backoff
from system.storage.buffer import (
    Backlog,
    BufferClosed,
    BufferFull,
    BufferStats,
    DeadLetter,
    FlushTimeout,
    UnwrittenRecords,
    WriteBuffer,
)
from system.storage.records import AuditEvent, Halt, QuoteSnapshot, Record, Signal, StoredOrder

DOWN = ConnectionRefusedError("db down")


def snap(n: int) -> QuoteSnapshot:
    return QuoteSnapshot(code="005930", price=70_000 + n, volume=n, at=float(n))


def order(n: int, state: str = "pending") -> StoredOrder:
    return StoredOrder(f"c-{n}", "005930", "buy", 1, 70_000, state, None, float(n))


def signal(n: int) -> Signal:
    return Signal(code="000660", kind="spike", detail={"n": n}, at=float(n))


MAKERS: list[Callable[[int], Record]] = [snap, order, signal]


def seqs(batch: Sequence[tuple[int, Record]]) -> list[int]:
    return [seq for seq, _ in batch]


def now() -> float:
    return asyncio.get_running_loop().time()


class Poison(ValueError):
    """A permanent error: the data is at fault (as a constraint violation would be)."""


class FakeSink:
    """A table keyed by seq, written a batch at a time, that fails when told to.

    ``error``: raise it before writing anything. ``ambiguous``: commit, then raise anyway
    (the connection died before the answer). ``hang``: never answer. ``poison``: seqs whose
    batch fails with ``Poison``. ``write_s``: how long a write takes.
    """

    def __init__(self) -> None:
        self.rows: dict[int, Record] = {}
        self.attempts: list[tuple[float, list[int]]] = []  # (loop time, seqs), every call
        self.commits: list[list[int]] = []
        self.error: BaseException | None = None
        self.ambiguous = False
        self.hang = False
        self.poison: set[int] = set()
        self.write_s = 0.0

    async def write(self, batch: Sequence[tuple[int, Record]]) -> None:
        self.attempts.append((now(), seqs(batch)))
        await asyncio.sleep(self.write_s)
        if self.hang:
            await asyncio.Event().wait()
        if self.poison.intersection(seqs(batch)):
            raise Poison(f"seq {sorted(self.poison)} violates a check constraint")
        if self.error is not None:
            raise self.error
        for seq, record in batch:
            self.rows.setdefault(seq, record)  # on conflict (seq) do nothing
        self.commits.append(seqs(batch))
        if self.ambiguous:
            raise ConnectionResetError("connection lost before the commit was acknowledged")

    def committed(self) -> list[int]:
        return [seq for batch in self.commits for seq in batch]


async def settle(rounds: int = 20) -> None:
    """Let the drain task run; no time passes."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def check_order(sink: FakeSink) -> None:
    """Every attempt is strictly increasing, and the first commit of each seq comes in seq
    order: a record never reaches the table after a later one."""
    for _, attempt in sink.attempts:
        assert attempt == sorted(set(attempt))
    first_commits = list(dict.fromkeys(sink.committed()))
    assert first_commits == sorted(first_commits)


# --- Backlog: the decisions, without a loop ------------------------------------------------


def test_seqs_count_up_from_the_start_a_restarted_process_gives() -> None:
    backlog = Backlog(capacity=10, batch_size=5, start_seq=1001)
    assert [backlog.add(snap(n), 0.0) for n in range(3)] == [
        (1001, None),
        (1002, None),
        (1003, None),
    ]
    assert backlog.next_seq == 1004
    assert Backlog(capacity=1, batch_size=1).add(snap(0), 0.0) == (1, None)


def test_batches_are_the_oldest_records_in_seq_order_one_at_a_time() -> None:
    backlog = Backlog(capacity=10, batch_size=3)
    for n in range(5):
        backlog.add(snap(n), 0.0)
    assert seqs(backlog.take()) == [1, 2, 3]
    assert backlog.take() == ()  # one batch in flight at a time
    assert seqs(backlog.confirm()) == [1, 2, 3]
    assert seqs(backlog.take()) == [4, 5]
    backlog.confirm()
    assert backlog.take() == ()
    assert (backlog.pending, backlog.written) == (0, 5)


def test_a_failed_batch_stays_and_its_retry_starts_at_the_same_seq() -> None:
    backlog = Backlog(capacity=10, batch_size=3)
    backlog.add(snap(1), 0.0)
    backlog.add(order(2), 0.0)
    assert seqs(backlog.take()) == [1, 2]
    assert backlog.fail("ConnectionRefusedError: db down", 5.0, transient=True) == ()
    backlog.add(signal(3), 6.0)
    backlog.add(snap(4), 6.0)
    # The same batch, extended by what arrived meanwhile (up to the batch size).
    assert seqs(backlog.take()) == [1, 2, 3]
    backlog.fail("ConnectionRefusedError: db down", 7.0, transient=True)
    assert seqs(backlog.take()) == [1, 2, 3]
    assert (backlog.failures, backlog.consecutive_failures, backlog.failing_since) == (2, 2, 5.0)
    backlog.confirm()
    assert (backlog.consecutive_failures, backlog.failing_since) == (0, None)
    assert seqs(backlog.take()) == [4]


def test_refuse_says_how_many_wait_the_capacity_the_outage_and_what_to_do() -> None:
    backlog = Backlog(capacity=3, batch_size=2, capacity_setting="SQUALL_STORAGE_BUFFER_CAPACITY")
    for n in range(3):
        backlog.add(snap(n), 10.0)
    backlog.take()
    backlog.fail("ConnectionRefusedError: db down", 10.0, transient=True)
    halt = Halt(reason="loss limit", released=False, at=52.0)
    with pytest.raises(BufferFull) as refused:
        backlog.add(halt, 52.0)
    assert refused.value.message == (
        "write buffer full: refused a Halt (1 refused so far); 3 records are waiting to be "
        "written (capacity 3), and the database has been failing for 42.0 s (last error: "
        "ConnectionRefusedError: db down). Restore the database, or raise the write buffer's "
        "capacity (SQUALL_STORAGE_BUFFER_CAPACITY) to ride out longer outages."
    )
    full = refused.value
    assert (full.pending, full.capacity, full.failing_for_s, full.record) == (3, 3, 42.0, halt)
    assert (backlog.refused, backlog.next_seq, backlog.pending) == (1, 4, 3)  # no seq taken


def test_a_full_buffer_whose_database_works_says_it_is_too_slow() -> None:
    backlog = Backlog(capacity=1, batch_size=1)
    backlog.add(snap(1), 0.0)
    with pytest.raises(BufferFull, match="the database accepts writes, but more slowly than"):
        backlog.add(snap(2), 1.0)


def test_shedding_drops_the_oldest_snapshot_for_any_kind_and_never_anything_else() -> None:
    backlog = Backlog(capacity=3, batch_size=10, on_full="shed-oldest-snapshots")
    backlog.add(snap(1), 0.0)
    backlog.add(order(2), 0.0)
    backlog.add(snap(3), 0.0)
    assert backlog.add(order(4), 1.0) == (4, 1)  # an order takes the oldest snapshot's place
    assert backlog.add(snap(5), 1.0) == (5, 3)  # so does a newer snapshot
    assert backlog.add(signal(6), 1.0) == (6, 5)
    with pytest.raises(BufferFull, match="none of them a quote snapshot that can be shed"):
        backlog.add(snap(7), 1.0)
    assert (backlog.shed, backlog.refused, backlog.submitted) == (3, 1, 6)
    assert seqs(backlog.records()) == [2, 4, 6]


def test_snapshots_being_written_are_not_shed_but_those_of_a_failed_batch_are() -> None:
    backlog = Backlog(capacity=3, batch_size=2, on_full="shed-oldest-snapshots")
    for n in (1, 2, 3):
        backlog.add(snap(n), 0.0)
    assert seqs(backlog.take()) == [1, 2]
    assert backlog.add(order(4), 0.0) == (4, 3)  # 1 and 2 are in flight
    with pytest.raises(BufferFull):
        backlog.add(order(5), 0.0)
    backlog.fail("OSError: reset", 1.0, transient=True)
    assert backlog.add(order(6), 1.0) == (5, 1)
    assert seqs(backlog.take()) == [2, 4]  # the retry, less the shed snapshot


def test_the_state_is_full_at_capacity_else_backlogged_while_failing() -> None:
    backlog = Backlog(capacity=2, batch_size=1)
    assert backlog.state == "flowing"
    backlog.add(snap(1), 0.0)
    assert backlog.state == "flowing"  # waiting, but nothing has failed
    backlog.take()
    backlog.fail("OSError: down", 1.0, transient=True)
    assert backlog.state == "backlogged"
    backlog.add(snap(2), 2.0)
    assert backlog.state == "full"
    backlog.take()
    backlog.confirm()
    assert backlog.state == "flowing"


def test_a_permanent_failure_is_narrowed_to_one_record_which_is_rejected() -> None:
    backlog = Backlog(capacity=10, batch_size=3)
    for n in range(1, 6):
        backlog.add(signal(n), 0.0)
    assert seqs(backlog.take()) == [1, 2, 3]
    assert backlog.fail("Poison: check", 1.0, transient=False) == ()
    assert backlog.state == "flowing"  # the database answered: no outage
    assert seqs(backlog.take()) == [1]
    backlog.confirm()
    assert seqs(backlog.take()) == [2]
    assert backlog.fail("Poison: check", 1.0, transient=False) == (
        DeadLetter(2, signal(2), "Poison: check"),
    )
    assert seqs(backlog.take()) == [3]
    backlog.confirm()
    assert seqs(backlog.take()) == [4, 5]  # past the failed batch: full batches again
    backlog.confirm()
    assert (backlog.written, backlog.rejected, backlog.failures) == (4, 1, 2)
    assert list(backlog.dead_letters) == [DeadLetter(2, signal(2), "Poison: check")]


def test_replayed_counts_records_written_after_a_failure_while_they_waited() -> None:
    backlog = Backlog(capacity=10, batch_size=10)
    backlog.add(snap(1), 0.0)
    backlog.add(snap(2), 0.0)
    backlog.take()
    backlog.fail("OSError: down", 1.0, transient=True)
    backlog.add(snap(3), 2.0)  # arrived during the outage
    backlog.take()
    backlog.confirm()
    backlog.add(snap(4), 3.0)  # after it
    backlog.take()
    backlog.confirm()
    assert (backlog.written, backlog.replayed) == (4, 3)


def test_stats_give_ages_on_the_callers_clock() -> None:
    backlog = Backlog(capacity=10, batch_size=1)
    empty = backlog.stats(100.0)
    assert (empty.oldest_pending_age_s, empty.failing_since, empty.failing_for_s) == (0, None, 0)
    backlog.add(snap(1), 100.0)
    backlog.add(snap(2), 104.0)
    backlog.take()
    backlog.fail("OSError: down", 101.0, transient=True)
    stats = backlog.stats(110.0)
    assert stats == BufferStats(
        state="backlogged",
        capacity=10,
        on_full="refuse",
        pending=2,
        submitted=2,
        written=0,
        replayed=0,
        refused=0,
        shed=0,
        rejected=0,
        failures=1,
        oldest_pending_age_s=10.0,
        failing_since=101.0,
        failing_for_s=9.0,
        last_error="OSError: down",
        next_seq=3,
    )


def test_random_histories_keep_every_record_accounted_for_and_in_order() -> None:
    rng = random.Random(7)
    for _ in range(200):
        backlog = Backlog(
            capacity=rng.randint(1, 8),
            batch_size=rng.randint(1, 4),
            on_full=rng.choice(["refuse", "shed-oldest-snapshots"]),
        )
        accepted: set[int] = set()
        written: list[int] = []
        removed: set[int] = set()  # shed or rejected
        in_flight: list[int] = []
        for step in range(60):
            action = rng.random()
            if action < 0.4:
                kind = rng.choice(MAKERS)
                try:
                    seq, shed = backlog.add(kind(step), float(step))
                except BufferFull:
                    continue
                assert shed not in in_flight
                accepted.add(seq)
                if shed is not None:
                    removed.add(shed)
            elif action < 0.6:
                batch = seqs(backlog.take())
                assert batch == [] if in_flight else batch == sorted(batch)
                in_flight = in_flight or batch
            elif in_flight:
                if action < 0.8:
                    assert seqs(backlog.confirm()) == in_flight
                    written += in_flight
                else:
                    letters = backlog.fail("E", float(step), transient=action < 0.95)
                    removed.update(letter.seq for letter in letters)
                in_flight = []
            stats = backlog.stats(float(step))
            assert stats.submitted == stats.written + stats.shed + stats.rejected + stats.pending
            assert stats.pending <= stats.capacity
        assert written == sorted(written)  # no reordering
        assert len(written) == len(set(written))  # no duplicates
        assert accepted == set(written) | removed | set(seqs(backlog.records()))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 0, "batch_size": 1},
        {"capacity": 1, "batch_size": 0},
        {"capacity": 1, "batch_size": 1, "start_seq": 0},
        {"capacity": 1, "batch_size": 1, "on_full": "drop-newest"},
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"write buffer needs|on_full must be one of"):
        Backlog(**kwargs)  # type: ignore[arg-type]


# --- WriteBuffer: the driver, on virtual time ----------------------------------------------


@pytest.mark.looptime
async def test_records_reach_the_sink_in_seq_order_in_batches() -> None:
    sink = FakeSink()
    buffer = WriteBuffer(sink, batch_size=10)
    submitted = [buffer.submit(snap(n)) for n in range(35)]  # before start: they wait
    assert submitted == list(range(1, 36))
    buffer.start()
    stats = await buffer.flush(1.0)
    assert [attempt for _, attempt in sink.attempts] == [
        list(range(1, 11)),
        list(range(11, 21)),
        list(range(21, 31)),
        list(range(31, 36)),
    ]
    assert sink.rows == {seq: snap(seq - 1) for seq in range(1, 36)}
    assert (stats.state, stats.written, stats.pending, stats.failures) == ("flowing", 35, 0, 0)
    await buffer.close()


@pytest.mark.looptime
async def test_a_30_s_outage_then_recovery_replays_everything_once_in_order() -> None:
    sink = FakeSink()
    sink.error = DOWN
    started = time.perf_counter()
    records: list[Record] = []
    async with WriteBuffer(sink, batch_size=4, rng=random.Random(1)) as buffer:
        for n in range(30):  # one record a second, all through the outage
            record = MAKERS[n % 3](n)
            records.append(record)
            assert buffer.submit(record) == n + 1
            await asyncio.sleep(1.0)
        assert buffer.state == "backlogged"
        assert buffer.stats().failing_for_s == pytest.approx(30.0)
        assert sink.rows == {}
        sink.error = None
        stats = await buffer.flush(30.0)
    assert sink.rows == dict(enumerate(records, 1))
    assert sorted(sink.committed()) == list(range(1, 31))  # each exactly once
    check_order(sink)
    failed = sink.attempts[:-8]
    assert all(attempt[0] == 1 for _, attempt in failed)  # every retry starts at seq 1
    assert stats.state == "flowing"
    assert (stats.written, stats.replayed, stats.pending, stats.failures) == (
        30,
        30,
        0,
        len(sink.attempts) - 8,
    )
    assert stats.last_error == "ConnectionRefusedError: db down"
    assert now() >= 30.0
    assert time.perf_counter() - started < 5.0  # 30 s of outage, no wall time


@pytest.mark.looptime
async def test_retries_back_off_exponentially_with_seeded_jitter_on_the_loop_clock() -> None:
    sink = FakeSink()
    sink.error = DOWN
    buffer = WriteBuffer(sink, backoff_base_s=0.5, backoff_max_s=8.0, rng=random.Random(3))
    buffer.start()
    buffer.submit(snap(1))
    await asyncio.sleep(60.0)
    times = [at for at, _ in sink.attempts]
    expected_rng = random.Random(3)
    expected = [
        jittered_backoff(n, base_s=0.5, max_s=8.0, rng=expected_rng) for n in range(1, len(times))
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps == pytest.approx(expected, abs=0.01)
    assert max(gaps) <= 8.0
    assert len(times) >= 8  # doubling up to the cap, then every 4-8 s
    with pytest.raises(UnwrittenRecords):
        await buffer.close(0.0)


@pytest.mark.looptime
async def test_refuse_raises_buffer_full_when_full_and_recovers_after_the_outage() -> None:
    sink = FakeSink()
    sink.error = DOWN
    buffer = WriteBuffer(
        sink, capacity=5, batch_size=2, capacity_setting="SQUALL_STORAGE_BUFFER_CAPACITY"
    )
    buffer.start()
    for n in range(5):
        buffer.submit(order(n))
    await asyncio.sleep(12.0)
    with pytest.raises(BufferFull) as refused:
        buffer.submit(order(99))
    assert refused.value.message.startswith(
        "write buffer full: refused a StoredOrder (1 refused so far); 5 records are waiting "
        "to be written (capacity 5), and the database has been failing for 12.0 s (last "
        "error: ConnectionRefusedError: db down). Restore the database, or raise the write "
        "buffer's capacity (SQUALL_STORAGE_BUFFER_CAPACITY)"
    )
    assert (buffer.stats().refused, buffer.state) == (1, "full")
    sink.error = None
    await buffer.flush(30.0)
    assert buffer.submit(order(99)) == 6  # room again; the refusal took no seq
    stats = await buffer.close()
    assert sorted(sink.rows) == [1, 2, 3, 4, 5, 6]
    assert (stats.written, stats.refused, stats.shed) == (6, 1, 0)


@pytest.mark.looptime
async def test_shedding_keeps_orders_and_drops_the_oldest_snapshots_counted() -> None:
    sink = FakeSink()
    sink.error = DOWN
    buffer = WriteBuffer(
        sink,
        capacity=4,
        batch_size=10,
        on_full="shed-oldest-snapshots",
        rng=random.Random(0),
    )
    buffer.start()
    for n in range(4):
        buffer.submit(snap(n))  # seqs 1-4
    await asyncio.sleep(1.0)  # the first attempt failed: nothing in flight
    buffer.submit(order(1))  # 5, sheds 1
    buffer.submit(snap(5))  # 6, sheds 2
    buffer.submit(Halt(reason="limit", released=False, at=1.0))  # 7, sheds 3
    buffer.submit(order(2))  # 8, sheds 4
    buffer.submit(AuditEvent(kind="k", detail={}, at=1.0))  # 9, sheds 6
    with pytest.raises(BufferFull, match="none of them a quote snapshot that can be shed"):
        buffer.submit(snap(7))
    sink.error = None
    stats = await buffer.close(30.0)
    assert sorted(sink.rows) == [5, 7, 8, 9]
    check_order(sink)
    assert (stats.submitted, stats.written, stats.shed, stats.refused) == (9, 4, 5, 1)


@pytest.mark.looptime
async def test_on_change_hears_each_state_once_and_cannot_break_the_buffer() -> None:
    sink = FakeSink()
    heard: list[tuple[str, int]] = []

    def listen(stats: BufferStats) -> None:
        heard.append((stats.state, stats.pending))
        raise RuntimeError("a broken listener")

    buffer = WriteBuffer(sink, capacity=3, batch_size=1, on_change=listen)
    buffer.start()
    buffer.submit(snap(1))
    await buffer.flush(1.0)
    assert heard == []  # flowing all along
    sink.error = DOWN
    buffer.submit(snap(2))
    await settle()
    buffer.submit(snap(3))
    buffer.submit(snap(4))
    await asyncio.sleep(5.0)
    sink.error = None
    await buffer.flush(30.0)
    assert heard == [("backlogged", 1), ("full", 3), ("flowing", 2)]
    assert sorted(sink.rows) == [1, 2, 3, 4]
    await buffer.close()


@pytest.mark.looptime
async def test_flush_times_out_with_the_counts_then_succeeds_after_recovery() -> None:
    sink = FakeSink()
    sink.error = DOWN
    async with WriteBuffer(sink) as buffer:
        for n in range(3):
            buffer.submit(snap(n))
        with pytest.raises(FlushTimeout) as timed_out:
            await buffer.flush(5.0)
        assert isinstance(timed_out.value, TimeoutError)
        assert timed_out.value.message == (
            "write buffer flush: 3 records submitted up to seq 3 are still not written after "
            "5.0 s (3 waiting in all, 0 written so far), and the database has been failing "
            "for 5.0 s (last error: ConnectionRefusedError: db down)"
        )
        assert now() == pytest.approx(5.0)
        sink.error = None
        stats = await buffer.flush()
        assert (stats.written, stats.replayed) == (3, 3)


@pytest.mark.looptime
async def test_flush_waits_for_what_was_submitted_before_it_only() -> None:
    sink = FakeSink()
    sink.write_s = 1.0
    async with WriteBuffer(sink, batch_size=2) as buffer:
        buffer.submit(snap(1))
        buffer.submit(snap(2))
        await settle()  # 1-2 in flight
        flushing = asyncio.create_task(buffer.flush())
        await settle()
        buffer.submit(snap(3))
        stats = await flushing
        assert (now(), stats.written, stats.pending) == (pytest.approx(1.0), 2, 1)


@pytest.mark.looptime
async def test_flush_without_a_running_drain_says_so() -> None:
    buffer = WriteBuffer(FakeSink())
    assert (await buffer.flush()).pending == 0  # nothing to wait for
    buffer.submit(snap(1))
    with pytest.raises(BufferClosed, match=r"1 records are waiting but .* not running"):
        await buffer.flush()


@pytest.mark.looptime
async def test_closing_a_buffer_that_never_started_hands_back_its_records() -> None:
    buffer = WriteBuffer(FakeSink())
    buffer.submit(snap(1))
    with pytest.raises(UnwrittenRecords) as unwritten:
        await buffer.close()
    assert unwritten.value.records == ((1, snap(1)),)
    assert unwritten.value.message.startswith(
        "write buffer closed with 1 records not written (seq 1..1), and it was never started."
    )


@pytest.mark.looptime
async def test_close_writes_what_is_waiting_then_refuses_new_records() -> None:
    sink = FakeSink()
    buffer = WriteBuffer(sink)
    buffer.start()
    for n in range(5):
        buffer.submit(signal(n))
    stats = await buffer.close()
    assert (stats.written, stats.pending) == (5, 0)
    assert sorted(sink.rows) == [1, 2, 3, 4, 5]
    with pytest.raises(BufferClosed, match="the write buffer is closed: a QuoteSnapshot was"):
        buffer.submit(snap(1))
    assert buffer.stats().refused == 1
    assert (await buffer.close()).written == 5  # again: same answer
    with pytest.raises(BufferClosed):
        buffer.start()


@pytest.mark.looptime
async def test_close_during_an_outage_hands_back_what_was_not_written() -> None:
    sink = FakeSink()
    sink.error = DOWN
    buffer = WriteBuffer(sink, batch_size=2)
    buffer.start()
    records = [order(1), snap(2), signal(3)]
    for record in records:
        buffer.submit(record)
    await asyncio.sleep(2.0)
    with pytest.raises(UnwrittenRecords) as unwritten:
        await buffer.close(3.0)
    assert unwritten.value.records == ((1, records[0]), (2, records[1]), (3, records[2]))
    assert unwritten.value.message == (
        "write buffer closed with 3 records not written (seq 1..3), and the database has "
        "been failing for 5.0 s (last error: ConnectionRefusedError: db down). They are "
        "attached to this error as .records: store them elsewhere, or submit them to a new "
        "buffer once the database is back."
    )
    assert now() == pytest.approx(5.0)
    tried = len(sink.attempts)
    sink.error = None
    await asyncio.sleep(60.0)
    assert len(sink.attempts) == tried  # the drain has stopped
    with pytest.raises(UnwrittenRecords):
        await buffer.close()


@pytest.mark.looptime
async def test_close_cuts_a_hanging_write_short_and_reports_its_records() -> None:
    sink = FakeSink()
    sink.hang = True
    buffer = WriteBuffer(sink, write_timeout_s=None)
    buffer.start()
    buffer.submit(snap(1))
    with pytest.raises(UnwrittenRecords, match=r"1 records not written \(seq 1\.\.1\)"):
        await buffer.close(2.0)


@pytest.mark.looptime
async def test_a_write_without_an_answer_times_out_and_is_retried() -> None:
    sink = FakeSink()
    sink.hang = True
    async with WriteBuffer(sink, write_timeout_s=2.0) as buffer:
        buffer.submit(snap(1))
        await asyncio.sleep(2.1)
        assert buffer.state == "backlogged"
        assert buffer.stats().last_error == "no answer within 2.0 s"
        sink.hang = False
        await buffer.flush(30.0)
    assert sink.rows == {1: snap(1)}


@pytest.mark.looptime
async def test_a_commit_whose_answer_was_lost_is_replayed_harmlessly() -> None:
    sink = FakeSink()
    sink.ambiguous = True
    async with WriteBuffer(sink, batch_size=2) as buffer:
        buffer.submit(order(1, "pending"))
        buffer.submit(order(1, "acked"))
        await asyncio.sleep(1.0)
        sink.ambiguous = False
        stats = await buffer.flush(30.0)
    # The sink saw 1-2 more than once; the table has each row once (on conflict), and the
    # buffer counted each record written once.
    assert sink.commits[0] == sink.commits[-1] == [1, 2]
    assert len(sink.commits) >= 2
    assert sorted(sink.rows) == [1, 2]
    assert (stats.written, stats.submitted) == (2, 2)


@pytest.mark.looptime
async def test_a_permanent_error_rejects_only_the_record_at_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FakeSink()
    sink.poison = {3}

    def is_transient(error: Exception) -> bool:
        return not isinstance(error, Poison)

    async with WriteBuffer(sink, batch_size=4, is_transient=is_transient) as buffer:
        for n in range(1, 7):
            buffer.submit(signal(n))
        with caplog.at_level(logging.ERROR, logger="system.storage.buffer"):
            stats = await buffer.flush(1.0)
    assert sorted(sink.rows) == [1, 2, 4, 5, 6]
    check_order(sink)
    assert [attempt for _, attempt in sink.attempts] == [[1, 2, 3, 4], [1], [2], [3], [4], [5, 6]]
    assert (stats.written, stats.rejected, stats.failures, stats.state) == (5, 1, 2, "flowing")
    [letter] = buffer.dead_letters
    assert (letter.seq, letter.record) == (3, signal(3))
    assert letter.error.startswith("Poison: seq [3] violates a check constraint")
    assert any("rejected seq 3" in message for message in caplog.messages)


@pytest.mark.looptime
async def test_a_broken_predicate_counts_as_transient() -> None:
    sink = FakeSink()
    sink.error = DOWN

    def broken(error: Exception) -> bool:
        raise RuntimeError("bug")

    async with WriteBuffer(sink, is_transient=broken) as buffer:
        buffer.submit(snap(1))
        await asyncio.sleep(1.0)
        assert (buffer.state, buffer.stats().rejected) == ("backlogged", 0)
        sink.error = None
        await buffer.flush(30.0)
    assert sink.rows == {1: snap(1)}


@pytest.mark.looptime
async def test_seq_continues_from_the_given_start() -> None:
    sink = FakeSink()
    async with WriteBuffer(sink, start_seq=501) as buffer:
        assert [buffer.submit(snap(n)) for n in range(3)] == [501, 502, 503]
        stats = await buffer.flush(1.0)
    assert sorted(sink.rows) == [501, 502, 503]
    assert stats.next_seq == 504


@pytest.mark.looptime
async def test_only_records_are_accepted() -> None:
    async with WriteBuffer(FakeSink()) as buffer:
        with pytest.raises(TypeError, match=r"WriteBuffer\.submit takes a record"):
            buffer.submit(("005930", 1, 1, 0.0))  # type: ignore[arg-type]
        assert buffer.stats().submitted == 0


@pytest.mark.looptime
@pytest.mark.parametrize(("linger_s", "batches"), [(0.0, [[1], [2], [3]]), (0.05, [[1, 2, 3]])])
async def test_a_burst_lingered_over_goes_in_one_batch(
    linger_s: float, batches: list[list[int]]
) -> None:
    sink = FakeSink()
    async with WriteBuffer(sink, linger_s=linger_s) as buffer:
        await settle()  # the drain is idle, waiting for a record
        start = now()
        for n in range(3):  # three records 10 ms apart, as a burst of snapshots comes
            buffer.submit(snap(n))
            await asyncio.sleep(0.01)
        await buffer.flush(1.0)
    assert [attempt for _, attempt in sink.attempts] == batches
    # The first record waited the linger, not more.
    assert sink.attempts[0][0] - start == pytest.approx(linger_s, abs=1e-6)


def test_a_negative_linger_is_refused() -> None:
    with pytest.raises(ValueError, match="linger_s must be >= 0"):
        WriteBuffer(FakeSink(), linger_s=-1)
