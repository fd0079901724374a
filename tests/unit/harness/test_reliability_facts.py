"""What the runner gathers for the reliability report: the tallies of lost, duplicated and
unknown orders, writes and calls, and the timeline facts (strikes, feed connections,
spells of unknown outcome)."""

from __future__ import annotations

from harness.reliability.facts import (
    call_tally,
    feed_connections,
    order_tally,
    strikes,
    unknown_outcomes,
    write_tally,
)
from harness.result import FeedConnection, Strike, SystemCall, Tally, UnknownOutcome
from harness.scenario import load_text
from harness.stored import StoredRows
from mocks.journal import Entry, FeedEntry
from system.broker import OrderRequest
from system.service import OrderRecord
from system.storage.records import AuditEvent, Record, StoredOrder


def record(
    cid: str, odno: str | None, status: str = "acked", events: list[tuple[float, str]] | None = None
) -> OrderRecord:
    order = OrderRequest(cid, "buy", "005930", 10)
    return OrderRecord(cid, order, status, odno, events or [(0.0, status)])  # type: ignore[arg-type]


def test_a_clean_history_tallies_nothing_lost_duplicated_or_unknown() -> None:
    records = [record("a", "1"), record("b", "2", "reconciled"), record("c", None, "rejected")]
    assert order_tally(records, ["1", "2"]) == Tally("orders", 3, 0, 0, 0)


def test_an_order_held_as_placed_but_not_at_the_broker_is_lost() -> None:
    tally = order_tally([record("a", "1"), record("b", "2")], ["1"])
    assert (tally.lost, tally.duplicated, tally.unknown) == (1, 0, 0)


def test_a_blind_resend_and_a_doubly_claimed_order_are_duplicates() -> None:
    # "a" was sent twice: the broker booked 1 and 2, the system knows only 2. "b" and "c"
    # both claim broker order 3.
    records = [record("a", "2"), record("b", "3"), record("c", "3")]
    tally = order_tally(records, ["1", "2", "3"])
    assert (tally.lost, tally.duplicated, tally.unknown) == (0, 2, 0)


def test_an_order_left_of_unknown_outcome_is_counted_unknown() -> None:
    tally = order_tally([record("a", None, "unknown"), record("b", "1")], ["1"])
    assert (tally.lost, tally.duplicated, tally.unknown) == (0, 0, 1)


def test_a_write_is_lost_when_its_row_is_not_in_the_database() -> None:
    audit = AuditEvent(kind="order-recorded", detail={}, at=1.0)
    order = StoredOrder("a", "005930", "buy", 1, None, "acked", None, 1.0)
    accepted: list[tuple[int, Record]] = [(1, audit), (2, order), (3, audit), (4, order)]
    stored = StoredRows({"audit_events": {1, 3}}, [], {"a": "acked"})
    assert write_tally(accepted, stored) == Tally("writes", 4, 0)
    # Seq 3 never arrived, nor did order "a": both of its accepted updates are lost.
    assert write_tally(accepted, StoredRows({"audit_events": {1}}, [], {})).lost == 3


def test_a_call_still_waiting_at_the_end_is_lost_and_a_refusal_is_not() -> None:
    calls = [
        SystemCall(1.0, "crowd", "api", "ok", 0.1),
        SystemCall(1.0, "crowd", "api", "refused", 0.1),
        SystemCall(1.0, "crowd", "api", "unfinished", None),
    ]
    assert call_tally(calls) == Tally("calls", 3, 1)


SCENARIO = """
name: struck
duration: 100
needs: [broker, feed]
timeline:
  - name: lost answers
    at: 0
    fault: {match: {kind: order}, do: {kind: drop}}
  - name: resets
    at: 10
    fault: {target: feed, do: {kind: reset}, every: 5}
"""


def test_strikes_are_named_after_their_timeline_step() -> None:
    scenario = load_text(SCENARIO)
    journal = [
        Entry(1, 2.0, "POST", "/order", None, {}, fault="lost-answers:drop"),
        Entry(2, 3.0, "GET", "/quote", None, {}),
    ]
    feed = [
        FeedEntry(1, 12.0, 4, "fault", fault="resets:reset", outcome="reset"),
        FeedEntry(2, 13.0, 5, "fault", fault="resets:reset", outcome="not applied"),
    ]
    assert strikes(scenario.faults, journal, feed) == [
        Strike(2.0, "lost answers", "broker", "drop"),
        Strike(12.0, "resets", "feed", "reset", 4),
    ]


def test_a_feed_connection_knows_its_first_trade() -> None:
    feed = [
        FeedEntry(1, 0.0, 1, "connect"),
        FeedEntry(2, 0.5, 1, "frame", tr_id="H0STASP0", outcome="sent"),  # a book, not a trade
        FeedEntry(3, 1.0, 1, "frame", tr_id="H0STCNT0", outcome="sent"),
        FeedEntry(4, 5.0, 1, "disconnect"),
        FeedEntry(5, 5.5, 2, "connect"),
        FeedEntry(6, 6.0, 2, "frame", tr_id="H0STCNT0", outcome="skipped"),
    ]
    assert feed_connections(feed) == [
        FeedConnection(1, 0.0, 1.0, 5.0),
        FeedConnection(2, 5.5, None, None),
    ]


def test_each_spell_of_unknown_outcome_ends_when_reconciled() -> None:
    events = [
        (100.0, "sending"),
        (102.0, "outcome unknown: timed out"),
        (104.0, "reconciled: absent"),
        (105.0, "outcome unknown: timed out"),
        (107.5, "reconciled: present ODNO 9"),
    ]
    records = [record("a", "9", "reconciled", events), record("b", None, "unknown", events[:2])]
    assert unknown_outcomes(records, origin=100.0) == [
        UnknownOutcome("a", 2.0, 4.0),
        UnknownOutcome("b", 2.0, None),
        UnknownOutcome("a", 5.0, 7.5),
    ]
