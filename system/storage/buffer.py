"""The write path that loses nothing across an outage: ``WriteBuffer``.

The trading loop must not wait for PostgreSQL, and must not lose what it records when the
database is gone for a while. So ``submit`` only numbers records (``seq``) and queues them;
one drain task writes the queue to a ``Sink`` in batches, oldest first, one transaction per
batch. A record leaves the queue only when the sink has confirmed its batch.

**Groups.** The records of one ``submit(*records)`` call are a *group*: consecutive seqs,
written all-or-nothing. A batch holds whole groups only (up to ``batch_size`` records; a
group larger than that is a batch of its own), so a sink that writes a batch in one
transaction never commits half a group: an order without its audit event, say. Shedding
and rejection, below, also take whole groups.

**Outage.** When a write fails with a transient error (by default every ``Exception``), the
batch stays at the head of the queue and the drain retries it after a jittered exponential
backoff (``system.broker.backoff.jittered_backoff``, on the loop's clock), or sooner when
told the database is back (``retry_now``), until the sink works again; then it writes the
backlog in order. The retry may carry more records than the failed attempt (what arrived
meanwhile), never fewer and never in another order, with one exception each for the two
cases below. A write that got no answer within ``write_timeout_s`` counts as a transient
failure: its transaction may have committed, so the retry may deliver rows the database
already has, which the INSERTs' ``on conflict`` clauses make harmless
(``system.storage.records``). A sink that can never write again raises ``SinkClosed``: the
drain stops, and the records stay for ``close`` to hand back.

**Poison.** A failure the ``is_transient`` predicate calls permanent says that the data,
not the database, is at fault (a constraint violation), and retrying it would block the
queue for good. The drain then retries that batch one group at a time; the group that
fails again is *rejected*: taken out whole, counted (``rejected``, in records), logged
with its seqs and content, and kept in ``dead_letters`` (the latest ``DEAD_LETTERS_KEPT``
records). With the default predicate nothing is ever rejected. Classify server and schema
trouble (connection lost, missing table) as transient: the buffer then waits for the
database to be fixed.

**Full.** ``capacity`` bounds the queue in records (waiting, including the batch in
flight); a group that does not fit is refused whole. When it does not fit, ``on_full``
decides, and both outcomes are counted:

- ``"refuse"`` (default): ``submit`` raises ``BufferFull``, whose message says how many
  records are waiting, the capacity, how long the database has been failing and what to do.
- ``"shed-oldest-snapshots"``: the oldest waiting ``QuoteSnapshot``s submitted alone (a
  later one supersedes each) are dropped to make room for the new group, whatever it
  holds, and counted as ``shed``; snapshots in the batch being written, and snapshots
  inside a larger group, are never shed. Without enough of them to shed, nothing is shed
  and ``submit`` raises ``BufferFull`` as above: orders, signals, halts and audit events
  are never shed. A shed snapshot may leave a failed batch before its retry.

**State** (``stats().state``, ``on_change``): ``"full"`` at capacity, else ``"backlogged"``
while the last write failed transiently (records are held back), else ``"flowing"``.

**Sequence numbers.** ``seq`` counts up from ``start_seq`` without gaps; a refused record
takes none. A restarted process must pass ``start_seq`` = 1 + the largest seq in the
database (over all tables): the INSERTs skip a seq that already exists, so reusing one
would lose the new record without an error. Seqs missing from the database are accounted
for by ``shed`` and ``rejected``, by order updates (the row keeps its first seq), and by
the records ``close`` hands back (``UnwrittenRecords``).

``Backlog`` makes every decision (what to write next, what to do when full, the state, the
counters) as a pure class, given the time; ``WriteBuffer`` is the asyncio driver around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Self, get_args

from system.broker.backoff import jittered_backoff
from system.broker.clock import loop_time
from system.storage.failures import describe
from system.storage.records import RECORD_TYPES, QuoteSnapshot, Record

log = logging.getLogger(__name__)

OnFull = Literal["refuse", "shed-oldest-snapshots"]
BufferState = Literal["flowing", "backlogged", "full"]
Batch = tuple[tuple[int, Record], ...]
ON_FULL_POLICIES: tuple[OnFull, ...] = get_args(OnFull)

# Rejected records kept for inspection; all of them are counted and logged.
DEAD_LETTERS_KEPT = 100


class Sink(Protocol):
    """Where the records go: ``write`` stores a whole batch in one transaction, or raises.

    ``batch`` is ``(seq, record)`` pairs in increasing seq order, whole groups only, so one
    transaction per batch makes every group all-or-nothing. Returning means committed.
    Raise ``SinkClosed`` when the sink can never write again (it stops the drain).
    """

    async def write(self, batch: Sequence[tuple[int, Record]]) -> None: ...


def any_exception_is_transient(error: Exception) -> bool:
    """The default ``is_transient``: retry whatever went wrong (never reject a record)."""
    return True


@dataclass(frozen=True)
class BufferStats:
    """The buffer at one moment, for ``/health``, metrics and error messages.

    Counters since the buffer was made: ``submitted`` records accepted (each got a seq);
    ``written`` confirmed by the sink, ``replayed`` of them after a failed write while they
    waited; ``refused`` records turned away (full or closed); ``shed`` snapshots dropped
    by ``on_full="shed-oldest-snapshots"``; ``rejected`` records a permanent error took out;
    ``failures`` failed writes. Always ``submitted == written + shed + rejected + pending``.

    ``failing_since`` is the loop time of the first failure of the current outage (None
    when the last write worked), ``failing_for_s`` how long ago that was (0 when none);
    ``oldest_pending_age_s`` how long the oldest waiting record has waited (0 when none).
    """

    state: BufferState
    capacity: int
    on_full: OnFull
    pending: int
    submitted: int
    written: int
    replayed: int
    refused: int
    shed: int
    rejected: int
    failures: int
    oldest_pending_age_s: float
    failing_since: float | None
    failing_for_s: float
    last_error: str | None
    next_seq: int


@dataclass(frozen=True)
class DeadLetter:
    """A record taken out of the buffer because writing it failed permanently."""

    seq: int
    record: Record
    error: str


def describe_database(stats: BufferStats) -> str:
    """The database's side of a full or stuck buffer, for messages and logs."""
    if stats.failing_since is None:
        return "the database accepts writes, but more slowly than records arrive"
    return (
        f"the database has been failing for {stats.failing_for_s:.1f} s "
        f"(last error: {stats.last_error})"
    )


class WriteBufferError(Exception):
    """Base of the write buffer's errors; ``message`` says what happened and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def describe_group(records: Sequence[Record]) -> str:
    """``a Halt``, or ``a group of 2 records (StoredOrder, AuditEvent)``: for messages."""
    if len(records) == 1:
        return f"a {type(records[0]).__name__}"
    kinds = ", ".join(type(record).__name__ for record in records)
    return f"a group of {len(records)} records ({kinds})"


class BufferFull(WriteBufferError):
    """``submit`` refused ``records`` (one group, all of it): they do not fit (``on_full``).

    ``record`` is the group's first record; ``refused`` counts records.
    """

    def __init__(
        self, records: Sequence[Record], stats: BufferStats, *, capacity_setting: str
    ) -> None:
        what = describe_group(records)
        if len(records) > stats.capacity:
            message = (
                f"write buffer: refused {what} ({stats.refused} refused so far): it is "
                f"larger than the whole buffer (capacity {stats.capacity}) and can never "
                f"fit. Raise the write buffer's capacity ({capacity_setting}), or record "
                "smaller groups."
            )
        else:
            waiting = (
                f"{stats.pending} records are waiting to be written (capacity {stats.capacity})"
            )
            if stats.on_full == "shed-oldest-snapshots":
                waiting += (
                    ", none of them a quote snapshot that can be shed"
                    if len(records) == 1
                    else f", too few of them quote snapshots that can be shed to make room "
                    f"for {len(records)}"
                )
            message = (
                f"write buffer full: refused {what} ({stats.refused} refused so far); "
                f"{waiting}, and {describe_database(stats)}. Restore the database, or raise "
                f"the write buffer's capacity ({capacity_setting}) to ride out longer outages."
            )
        super().__init__(message)
        self.records = tuple(records)
        self.record = records[0]
        self.stats = stats
        self.pending = stats.pending
        self.capacity = stats.capacity
        self.failing_for_s = stats.failing_for_s


class BufferClosed(WriteBufferError):
    """The buffer is closed (or its drain is not running): nothing more will be written."""


class SinkClosed(WriteBufferError):
    """Raised by a sink that can never write again (its connection pool was closed).

    Retrying would spin until ``close``, and rejecting would lose the records: the drain
    stops instead, the buffer refuses new records, and ``close`` hands back what is left.
    """


class FlushTimeout(WriteBufferError, TimeoutError):
    """``flush`` gave up: ``waiting`` records submitted before it are still not written."""

    def __init__(
        self, *, timeout_s: float, through_seq: int, waiting: int, stats: BufferStats
    ) -> None:
        super().__init__(
            f"write buffer flush: {waiting} records submitted up to seq {through_seq} are "
            f"still not written after {timeout_s:.1f} s ({stats.pending} waiting in all, "
            f"{stats.written} written so far), and {describe_database(stats)}"
        )
        self.through_seq = through_seq
        self.waiting = waiting
        self.stats = stats


class UnwrittenRecords(WriteBufferError):
    """``close`` stopped with records not written; they are in ``records``, oldest first."""

    def __init__(self, records: Batch, stats: BufferStats, *, started: bool = True) -> None:
        why = describe_database(stats) if started else "it was never started"
        super().__init__(
            f"write buffer closed with {len(records)} records not written "
            f"(seq {records[0][0]}..{records[-1][0]}), and {why}. They are "
            "attached to this error as .records: store them elsewhere, or submit them to a "
            "new buffer once the database is back."
        )
        self.records = records
        self.stats = stats


@dataclass(slots=True)
class _Entry:
    record: Record
    submitted_at: float
    # The last seq of the record's group (its own seq when alone): groups are consecutive
    # seqs, and leave the queue whole, so this is all ``take`` needs to keep them together.
    group_end: int


class Backlog:
    """The buffer's decisions, without I/O or a clock (see the module docstring).

    The driver ``add``s records, ``take``s a batch, writes it, and reports the outcome with
    ``confirm`` or ``fail`` (or ``requeue`` if the write was abandoned). Only one batch is
    in flight at a time. Methods that need the time take ``now`` (loop seconds).
    """

    def __init__(
        self,
        *,
        capacity: int,
        batch_size: int,
        on_full: OnFull = "refuse",
        start_seq: int = 1,
        capacity_setting: str = "capacity",
    ) -> None:
        if capacity < 1 or batch_size < 1 or start_seq < 1:
            raise ValueError(
                "a write buffer needs capacity >= 1, batch_size >= 1 and start_seq >= 1, "
                f"got {capacity}, {batch_size} and {start_seq}"
            )
        if on_full not in ON_FULL_POLICIES:
            raise ValueError(f"on_full must be one of {ON_FULL_POLICIES}, got {on_full!r}")
        self.capacity = capacity
        self.batch_size = batch_size
        self.on_full: OnFull = on_full
        self.capacity_setting = capacity_setting
        self._pending: OrderedDict[int, _Entry] = OrderedDict()
        # Seqs of waiting snapshots, oldest first, so shedding need not scan the queue.
        # Written ones leave lazily: they are always at the front (writes take the oldest).
        self._snapshots: deque[int] = deque()
        self._in_flight: Batch = ()
        self._next_seq = start_seq
        # After a permanent failure of a batch, its groups go one at a time up to this seq.
        self._isolate_through = 0
        # Records up to this seq were waiting when a write failed: written, they are replayed.
        self._replay_through = 0
        self.submitted = self.written = self.replayed = 0
        self.refused = self.shed = self.rejected = self.failures = 0
        self.consecutive_failures = 0  # transient ones in a row: the backoff's attempt number
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self.dead_letters: deque[DeadLetter] = deque(maxlen=DEAD_LETTERS_KEPT)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def state(self) -> BufferState:
        if len(self._pending) >= self.capacity:
            return "full"
        return "flowing" if self.failing_since is None else "backlogged"

    def add(self, record: Record, now: float) -> tuple[int, int | None]:
        """Queue ``record`` as a group of its own: its seq, and the seq of a snapshot shed
        for it (or None). Raises ``BufferFull`` as ``add_group`` does."""
        seq, shed = self.add_group((record,), now)
        return seq, shed[0] if shed else None

    def add_group(self, records: Sequence[Record], now: float) -> tuple[int, tuple[int, ...]]:
        """Queue ``records`` as one group: the seq of its last record, and the seqs of the
        snapshots shed to make room for it, oldest first.

        Raises ``BufferFull`` (and counts each record as refused) when the group does not
        fit whole and the policy frees no room for it; then nothing is shed.
        """
        size = len(records)
        if size < 1:
            raise ValueError("a group needs at least one record")
        shed: tuple[int, ...] = ()
        room = self.capacity - len(self._pending)
        if size > room:
            if self.on_full == "shed-oldest-snapshots" and size <= self.capacity:
                shed = self._shed(size - room)
            if not shed:
                self.refused += size
                raise BufferFull(records, self.stats(now), capacity_setting=self.capacity_setting)
        first = self._next_seq
        last = first + size - 1
        self._next_seq = last + 1
        for seq, record in enumerate(records, start=first):
            self._pending[seq] = _Entry(record, now, last)
        if size == 1 and isinstance(records[0], QuoteSnapshot):
            self._snapshots.append(first)  # a snapshot inside a group is never shed
        if self.failing_since is not None:
            self._replay_through = last
        self.submitted += size
        return last, shed

    def _shed(self, need: int) -> tuple[int, ...]:
        """Drop the ``need`` oldest lone snapshots not being written, or none if there are
        fewer: shedding without making room would lose them for nothing."""
        snapshots = self._snapshots
        # Every other way out of the queue takes its oldest records, so the seqs of
        # snapshots that left some other way are at the front.
        while snapshots and snapshots[0] not in self._pending:
            snapshots.popleft()
        # The batch in flight is the head of the queue: skip its snapshots (at most a batch).
        in_flight_through = self._in_flight[-1][0] if self._in_flight else 0
        chosen = list(itertools.islice((s for s in snapshots if s > in_flight_through), need))
        if len(chosen) < need:
            return ()
        for seq in chosen:
            snapshots.remove(seq)  # near the front: behind at most a batch in flight
            del self._pending[seq]
        self.shed += need
        return tuple(chosen)

    def take(self) -> Batch:
        """The next batch to write: the oldest waiting groups in seq order, at most
        ``batch_size`` records (a larger group alone; one group while isolating a permanent
        failure). Empty when there is nothing to write or a batch is already in flight."""
        if self._in_flight or not self._pending:
            return ()
        isolating = next(iter(self._pending)) <= self._isolate_through
        batch: list[tuple[int, Record]] = []
        group_end = 0
        for seq, entry in self._pending.items():
            if seq > group_end:  # the first record of the next group
                size = entry.group_end - seq + 1
                if batch and (isolating or len(batch) + size > self.batch_size):
                    break
                group_end = entry.group_end
            batch.append((seq, entry.record))
        self._in_flight = tuple(batch)
        return self._in_flight

    def confirm(self) -> Batch:
        """The sink committed the batch in flight: it leaves the queue."""
        batch, self._in_flight = self._in_flight, ()
        for seq, _ in batch:
            del self._pending[seq]  # never shed while in flight
            if seq <= self._replay_through:
                self.replayed += 1
        self.written += len(batch)
        self.consecutive_failures = 0
        self.failing_since = None
        return batch

    def fail(self, error: str, now: float, *, transient: bool) -> tuple[DeadLetter, ...]:
        """Writing the batch in flight failed with ``error``; returns the records rejected.

        Transient: the batch stays, the outage starts (or goes on); nothing is rejected.
        Permanent: the database answered, so there is no outage; a batch of several groups
        is retried one group at a time, and a lone group is rejected whole (one
        ``DeadLetter`` per record), as its transaction would have been.
        """
        batch, self._in_flight = self._in_flight, ()
        self.failures += 1
        self.last_error = error
        if transient:
            self.consecutive_failures += 1
            if self.failing_since is None:
                self.failing_since = now
            self._replay_through = self._next_seq - 1
            return ()
        self.consecutive_failures = 0
        self.failing_since = None
        if self._pending[batch[0][0]].group_end < batch[-1][0]:  # several groups
            self._isolate_through = max(self._isolate_through, batch[-1][0])
            return ()
        letters = tuple(DeadLetter(seq, record, error) for seq, record in batch)
        for seq, _ in batch:
            del self._pending[seq]
        self.rejected += len(batch)
        self.dead_letters.extend(letters)
        return letters

    def requeue(self) -> None:
        """The write in flight was abandoned (cancelled): its records stay, untouched."""
        self._in_flight = ()

    def settled(self, through_seq: int) -> bool:
        """No record with a seq up to ``through_seq`` is waiting any more."""
        return not self._pending or next(iter(self._pending)) > through_seq

    def waiting_through(self, through_seq: int) -> int:
        """How many records with a seq up to ``through_seq`` are still waiting."""
        return sum(1 for _ in itertools.takewhile(lambda s: s <= through_seq, self._pending))

    def records(self) -> Batch:
        """Every waiting record, oldest first."""
        return tuple((seq, entry.record) for seq, entry in self._pending.items())

    def stats(self, now: float) -> BufferStats:
        oldest = next(iter(self._pending.values()), None)
        return BufferStats(
            state=self.state,
            capacity=self.capacity,
            on_full=self.on_full,
            pending=len(self._pending),
            submitted=self.submitted,
            written=self.written,
            replayed=self.replayed,
            refused=self.refused,
            shed=self.shed,
            rejected=self.rejected,
            failures=self.failures,
            oldest_pending_age_s=0.0 if oldest is None else now - oldest.submitted_at,
            failing_since=self.failing_since,
            failing_for_s=0.0 if self.failing_since is None else now - self.failing_since,
            last_error=self.last_error,
            next_seq=self._next_seq,
        )


class WriteBuffer:
    """Records in, batches out to ``sink``, nothing lost; see the module docstring.

    - ``capacity``, ``on_full``: the bound and what happens at it; ``capacity_setting``
      names the setting that sets ``capacity``, for ``BufferFull``'s advice.
    - ``batch_size``: most records per ``sink.write`` (one transaction), in whole groups.
    - ``linger_s``: when a record arrives at an idle buffer, how long to wait for others
      to join its batch. Records come in bursts (each code's snapshot in the same second,
      an order and its audit event): one transaction for the burst instead of one each.
    - ``start_seq``: the first seq; after a restart, 1 + the database's largest seq.
    - ``is_transient``: whether a sink error is worth retrying (default: every one).
    - ``backoff_base_s``, ``backoff_max_s``, ``rng``: retry delays; seed ``rng`` to make a
      scenario repeatable.
    - ``write_timeout_s``: a write without an answer by then counts as a transient failure.
    - ``on_change``: called with ``stats()`` whenever ``state`` changes; it must not block.

    Use ``async with`` (or ``start()`` and ``close()``). ``submit`` works before ``start``;
    records then wait for it. ``retry_now()`` cuts a retry's backoff short (the owner of the
    sink calls it when the database is back).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        capacity: int = 10_000,
        batch_size: int = 100,
        linger_s: float = 0.0,
        on_full: OnFull = "refuse",
        start_seq: int = 1,
        is_transient: Callable[[Exception], bool] = any_exception_is_transient,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 10.0,
        write_timeout_s: float | None = 30.0,
        rng: random.Random | None = None,
        on_change: Callable[[BufferStats], None] | None = None,
        capacity_setting: str = "capacity",
    ) -> None:
        if backoff_base_s <= 0 or backoff_max_s < backoff_base_s:
            raise ValueError(
                "a write buffer needs 0 < backoff_base_s <= backoff_max_s, "
                f"got {backoff_base_s} and {backoff_max_s}"
            )
        if write_timeout_s is not None and write_timeout_s <= 0:
            raise ValueError(f"write_timeout_s must be > 0 or None, got {write_timeout_s}")
        if linger_s < 0:
            raise ValueError(f"linger_s must be >= 0, got {linger_s}")
        self._linger_s = linger_s
        self._backlog = Backlog(
            capacity=capacity,
            batch_size=batch_size,
            on_full=on_full,
            start_seq=start_seq,
            capacity_setting=capacity_setting,
        )
        self._sink = sink
        self._is_transient = is_transient
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._write_timeout_s = write_timeout_s
        self._rng = rng or random.Random()
        self._on_change = on_change
        self._published: BufferState = self._backlog.state
        self._wake = asyncio.Event()  # something was submitted
        self._retry = asyncio.Event()  # retry_now(): don't wait out the backoff
        self._progress = asyncio.Event()  # something left the queue; replaced once set
        self._task: asyncio.Task[None] | None = None
        self._stopped = False  # the drain ran, and close() stopped it
        self._closed = False

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the drain task (on the running loop); idempotent."""
        if self._closed:
            raise BufferClosed("the write buffer is closed; make a new one")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="storage write buffer"
            )

    @property
    def state(self) -> BufferState:
        return self._backlog.state

    def stats(self) -> BufferStats:
        return self._backlog.stats(loop_time())

    @property
    def dead_letters(self) -> tuple[DeadLetter, ...]:
        """The latest records rejected by a permanent error (all are counted and logged)."""
        return tuple(self._backlog.dead_letters)

    def submit(self, *records: Record) -> int:
        """Queue ``records`` (one or more) for writing as one group, and return the seq of
        the last; the group gets consecutive seqs and is written all-or-nothing.

        Raises ``BufferFull`` when the group does not fit and ``on_full`` frees no room for
        it, ``BufferClosed`` after ``close``; either way none of it is queued, and every
        record of it counts in ``refused``.
        """
        if not records:
            raise TypeError("WriteBuffer.submit takes one or more records, got none")
        for record in records:
            if not isinstance(record, RECORD_TYPES):
                # Caught here: in the queue it would fail every write and block the rest.
                kinds = ", ".join(t.__name__ for t in RECORD_TYPES)
                raise TypeError(
                    f"WriteBuffer.submit takes a record ({kinds}), got {type(record).__name__}"
                )
        if self._closed:
            self._backlog.refused += len(records)
            raise BufferClosed(
                f"the write buffer is closed: {describe_group(records)} was refused "
                f"({self._backlog.refused} refused so far); submit before close()"
            )
        last, shed = self._backlog.add_group(records, loop_time())
        self._publish()
        self._wake.set()
        if shed:
            self._progressed()
        return last

    def retry_now(self) -> None:
        """Retry a failed write now instead of after its backoff (say, the database answers
        again). Does nothing while nothing is failing."""
        self._retry.set()

    async def flush(self, timeout_s: float | None = None) -> BufferStats:
        """Wait until every record submitted so far has left the queue (written, or shed or
        rejected, as ``stats()`` counts), and return the stats.

        Raises ``FlushTimeout`` after ``timeout_s`` seconds (None: no limit), with the counts,
        and ``BufferClosed`` if the drain is not running (not started, or closed).
        """
        through = self._backlog.next_seq - 1
        try:
            async with asyncio.timeout(timeout_s):
                while not self._backlog.settled(through):
                    if not self._running:
                        why = (
                            "the buffer is closed (its sink is)"
                            if self._closed
                            else "the buffer's drain is not running (start() it)"
                        )
                        raise BufferClosed(
                            f"write buffer flush: {self._backlog.waiting_through(through)} "
                            f"records are waiting but {why}"
                        )
                    await self._progress.wait()
        except TimeoutError:
            assert timeout_s is not None
            raise FlushTimeout(
                timeout_s=timeout_s,
                through_seq=through,
                waiting=self._backlog.waiting_through(through),
                stats=self.stats(),
            ) from None
        return self.stats()

    async def close(self, timeout_s: float | None = 10.0) -> BufferStats:
        """Refuse new records, write what can be written within ``timeout_s``, stop the drain.

        Returns the final stats when everything was written; otherwise raises
        ``UnwrittenRecords`` carrying the records left (a batch whose write was cut short
        is among them, though the database may have committed it).
        """
        self._closed = True
        started = self._task is not None or self._stopped
        if self._running:
            # What is left is reported below, with the records themselves.
            with contextlib.suppress(WriteBufferError):
                await self.flush(timeout_s)
        task, self._task = self._task, None
        if task is not None:
            self._stopped = True
            task.cancel()
            await asyncio.wait([task])
        self._publish()
        stats = self.stats()
        if stats.pending:
            raise UnwrittenRecords(self._backlog.records(), stats, started=started)
        return stats

    @property
    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _drain(self) -> None:
        try:
            while True:
                batch = self._backlog.take()
                if not batch:
                    self._wake.clear()
                    await self._wake.wait()
                    if self._linger_s:
                        await asyncio.sleep(self._linger_s)
                    continue
                # Cleared before the attempt: a retry_now() during it still cuts the wait.
                self._retry.clear()
                delay = await self._write(batch)
                if delay is None:
                    return
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._retry.wait()
        finally:
            self._backlog.requeue()
            self._progressed()  # flush() waiters learn that the drain stopped

    async def _write(self, batch: Batch) -> float | None:
        """Write ``batch``; the delay before the next attempt (0 unless it failed), or
        None when the sink is closed for good and the drain must stop."""
        deadline = asyncio.timeout(self._write_timeout_s)
        try:
            async with deadline:
                await self._sink.write(batch)
        except SinkClosed as error:
            self._sink_closed(batch, error)
            return None
        except Exception as error:
            if deadline.expired():
                error_text = f"no answer within {self._write_timeout_s:.1f} s"
                transient = True  # it may have committed: the retry is harmless, see above
            else:
                error_text = describe(error)
                transient = self._classify(error)
            return self._failed(batch, error_text, transient=transient)
        self._backlog.confirm()
        self._progressed()
        self._publish()
        return 0.0

    def _sink_closed(self, batch: Batch, error: SinkClosed) -> None:
        self._closed = True  # nothing submitted from now on could be written
        self._backlog.fail(describe(error), loop_time(), transient=True)
        self._publish()
        log.error(
            "storage: the write buffer's sink is closed (%s); the drain stops with %d records "
            "not written (from seq %d), which close() hands back",
            error,
            self._backlog.pending,
            batch[0][0],
        )

    def _classify(self, error: Exception) -> bool:
        try:
            return bool(self._is_transient(error))
        except Exception:
            # A broken predicate must not cost records: retrying keeps them.
            log.exception("storage: is_transient(%r) failed; retrying as transient", error)
            return True

    def _failed(self, batch: Batch, error: str, *, transient: bool) -> float:
        letters = self._backlog.fail(error, loop_time(), transient=transient)
        self._publish()
        if letters:
            self._progressed()
            first, last = letters[0].seq, letters[-1].seq
            log.error(
                "storage: rejected %s after a permanent error (%s); %s not be written: %r",
                f"seq {first}" if first == last else f"seq {first}..{last} (one group)",
                error,
                "it will" if first == last else "none of them will",
                tuple(letter.record for letter in letters),
            )
            return 0.0
        if not transient:
            log.error(
                "storage: writing seq %d..%d failed permanently (%s); retrying one group "
                "at a time to find the one at fault",
                batch[0][0],
                batch[-1][0],
                error,
            )
            return 0.0
        delay = jittered_backoff(
            self._backlog.consecutive_failures,
            base_s=self._backoff_base_s,
            max_s=self._backoff_max_s,
            rng=self._rng,
        )
        log.warning(
            "storage: writing %d records (seq %d..%d) failed (%s); %d waiting, retry in %.1f s",
            len(batch),
            batch[0][0],
            batch[-1][0],
            error,
            self._backlog.pending,
            delay,
        )
        return delay

    def _progressed(self) -> None:
        # Wake every flush() waiting now; later ones wait on a fresh event.
        self._progress.set()
        self._progress = asyncio.Event()

    def _publish(self) -> None:
        state = self._backlog.state
        if state == self._published:
            return
        previous, self._published = self._published, state
        stats = self.stats()
        if state == "flowing":
            log.info("storage: write buffer %s -> flowing (%d waiting)", previous, stats.pending)
        else:
            log.warning(
                "storage: write buffer %s -> %s: %d waiting (capacity %d, on_full=%s); %s",
                previous,
                state,
                stats.pending,
                stats.capacity,
                stats.on_full,
                describe_database(stats),
            )
        if self._on_change is not None:
            try:
                self._on_change(stats)
            except Exception:
                # A broken listener must not stop the drain or refuse a record.
                log.exception("storage: write buffer on_change listener failed")
