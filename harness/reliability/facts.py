"""What a run gathers for the reliability report, from evidence the runner already holds.

Every scenario result carries these (they cost a few set operations on what the runner
already read for its checks: the broker's books and, with a database, its rows), so any
report can use them; ``harness.reliability`` turns them into its
table.

Tallies: what was lost, duplicated or left unknown, counted rather than judged
  - **orders** (runs where the system placed any): ``total`` the system's client order ids;
    ``lost`` those it holds as placed (acked, or reconciled as present) whose order number
    is not in the broker's books; ``duplicated`` the broker's orders beyond one per system
    order: those no system order claims (a blind re-send, or one it never knew of) and
    every extra claim on one broker order; ``unknown`` those still of unknown outcome once
    the run has wound down. These are the anomalies the history checks
    ``orders-not-lost`` and ``orders-placed-once`` look for (``harness.history``).
  - **writes** (runs with a database): records the storage accepted; ``lost`` those whose
    row is not in PostgreSQL after the final flush, read directly (not through the proxy).
  - **calls** (runs whose workloads call the system): ``lost`` those never answered, still
    waiting when the run ended.

Timeline facts
  - **strikes**: each time a broker or feed fault rule acted (the mocks' journals name the
    rule on every request, frame or connection it acted on).
  - **feed connections**: each connection of the system to the mock feed, with the moment
    the first trade went out on it.
  - **unknown outcomes**: each spell of an order's outcome being unknown, until the system
    settled it by asking the broker (its "reconciled: ..." event).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.history import PLACED
from harness.invariants import TRADE_TYPES
from harness.result import FeedConnection, Strike, SystemCall, Tally, UnknownOutcome
from harness.scenario.model import Step, slug
from harness.stack import Stack
from harness.stored import StoredRows
from mocks.journal import Entry, FeedEntry
from system.service import OrderRecord
from system.storage.records import Record, StoredOrder

# The service's order events that open and close a spell of unknown outcome.
_UNKNOWN = "outcome unknown"
_SETTLED = "reconciled"


def gather_tallies(
    stack: Stack,
    calls: Sequence[SystemCall],
    booked: Sequence[Mapping[str, Any]],
    stored: StoredRows | None,
) -> list[Tally]:
    """The run's tallies, once its orders have wound down and its writes been flushed:
    ``booked`` is the broker's books and ``stored`` what PostgreSQL holds then, as the
    runner read them for its checks."""
    tallies: list[Tally] = []
    records = stack.service.orders()
    odnos = [str(row["odno"]) for row in booked]
    if records or odnos:
        tallies.append(order_tally(records, odnos))
    if stored is not None and stack.records is not None:
        tallies.append(write_tally(stack.records.accepted, stored))
    if calls:
        tallies.append(call_tally(calls))
    return tallies


def order_tally(records: Sequence[OrderRecord], booked: Sequence[str]) -> Tally:
    """``records``: the system's orders; ``booked``: the order numbers in the broker's books."""
    at_broker = set(booked)
    claims = Counter(record.odno for record in records if record.odno is not None)
    unclaimed = sum(1 for odno in booked if odno not in claims)
    extra_claims = sum(count - 1 for count in claims.values())
    return Tally(
        "orders",
        total=len(records),
        lost=sum(1 for r in records if r.status in PLACED and r.odno not in at_broker),
        duplicated=unclaimed + extra_claims,
        unknown=sum(1 for record in records if record.status == "unknown"),
    )


def write_tally(accepted: Sequence[tuple[int, Record]], stored: StoredRows) -> Tally:
    """An order's row is kept by client order id (each update overwrites it), so an
    accepted order update is there when its order's row is."""
    lost = 0
    for seq, record in accepted:
        if isinstance(record, StoredOrder):
            lost += record.client_order_id not in stored.orders
        else:
            lost += seq not in stored.seqs.get(record.table, set())
    return Tally("writes", total=len(accepted), lost=lost)


def call_tally(calls: Sequence[SystemCall]) -> Tally:
    return Tally(
        "calls", total=len(calls), lost=sum(1 for call in calls if call.outcome == "unfinished")
    )


def strikes(
    faults: Iterable[Step], journal: Sequence[Entry], feed_journal: Sequence[FeedEntry]
) -> list[Strike]:
    """Every journal entry a fault rule acted on, named by its step (rule ids are the steps'
    slugs; the journals write ``"<rule id>:<kind>"``)."""
    labels = {slug(step.label): step.label for step in faults}
    found: list[Strike] = []
    for entry in journal:
        if entry.fault:
            rule, _, kind = entry.fault.rpartition(":")
            found.append(Strike(entry.at, labels.get(rule, rule), "broker", kind))
    for event in feed_journal:
        if event.fault and event.outcome != "not applied":
            rule, _, kind = event.fault.rpartition(":")
            found.append(Strike(event.at, labels.get(rule, rule), "feed", kind, event.connection))
    found.sort(key=lambda strike: strike.at)
    return found


def feed_connections(feed_journal: Sequence[FeedEntry]) -> list[FeedConnection]:
    opened: dict[int, float] = {}
    first_price: dict[int, float] = {}
    closed: dict[int, float] = {}
    for event in feed_journal:
        number = event.connection
        if number is None:
            continue
        if event.kind == "connect":
            opened.setdefault(number, event.at)
        elif event.kind == "disconnect":
            closed.setdefault(number, event.at)
        elif (
            event.kind == "frame"
            and event.outcome == "sent"
            and (event.tr_id or "").upper() in TRADE_TYPES
        ):
            first_price.setdefault(number, event.at)
    return [
        FeedConnection(number, at, first_price.get(number), closed.get(number))
        for number, at in sorted(opened.items())
    ]


def unknown_outcomes(records: Sequence[OrderRecord], origin: float) -> list[UnknownOutcome]:
    """``origin``: the loop time of the scenario's start (the records' events are loop
    times)."""
    spells: list[UnknownOutcome] = []
    for record in records:
        since: float | None = None
        for at, what in record.events:
            if what.startswith(_UNKNOWN) and since is None:
                since = at - origin
            elif what.startswith(_SETTLED) and since is not None:
                spells.append(UnknownOutcome(record.client_order_id, since, at - origin))
                since = None
        if since is not None:
            spells.append(UnknownOutcome(record.client_order_id, since, None))
    spells.sort(key=lambda spell: spell.since)
    return spells
