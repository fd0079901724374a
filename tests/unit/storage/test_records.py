"""Records: each table's INSERT, its parameters given a seq, JSON details, and the checks
that keep a record the database would refuse out of the write buffer."""

from __future__ import annotations

import math
from typing import Any

import pytest

from system.storage.records import (
    RECORD_TYPES,
    AuditEvent,
    Halt,
    QuoteSnapshot,
    Record,
    Signal,
    StoredOrder,
    encode_detail,
    statements,
)

SNAPSHOT = QuoteSnapshot(code="005930", price=71_000, volume=1_234_567, at=1.5)
SIGNAL = Signal(code="000660", kind="spike", detail={"z": 3.2, "window_s": 60}, at=2.0)
ORDER = StoredOrder(
    client_order_id="c-0001",
    code="005930",
    side="buy",
    quantity=10,
    price=71_000,
    state="pending",
    broker_order_id=None,
    at=3.0,
)
HALT = Halt(reason="daily loss limit", released=False, at=4.0)
AUDIT = AuditEvent(kind="kill_switch", detail={"by": "ops", "on": True}, at=5.0)


@pytest.mark.parametrize(
    ("record", "sql", "args"),
    [
        (
            SNAPSHOT,
            "insert into quote_snapshots (seq, code, price, volume, at) "
            "values ($1, $2, $3, $4, $5) on conflict (seq) do nothing",
            (7, "005930", 71_000, 1_234_567, 1.5),
        ),
        (
            SIGNAL,
            "insert into signals (seq, code, kind, detail, at) "
            "values ($1, $2, $3, $4, $5) on conflict (seq) do nothing",
            (7, "000660", "spike", '{"window_s":60,"z":3.2}', 2.0),
        ),
        (
            HALT,
            "insert into halts (seq, reason, released, at) "
            "values ($1, $2, $3, $4) on conflict (seq) do nothing",
            (7, "daily loss limit", False, 4.0),
        ),
        (
            AUDIT,
            "insert into audit_events (seq, kind, detail, at) "
            "values ($1, $2, $3, $4) on conflict (seq) do nothing",
            (7, "kill_switch", '{"by":"ops","on":true}', 5.0),
        ),
    ],
)
def test_each_record_inserts_once_per_seq(
    record: Record, sql: str, args: tuple[object, ...]
) -> None:
    assert record.insert_sql == sql
    assert record.args(7) == args
    assert record.insert_sql.startswith(f"insert into {record.table} ")


def test_an_order_upserts_on_its_client_order_id_keeping_its_first_seq() -> None:
    assert ORDER.table == "orders"
    assert ORDER.insert_sql == (
        "insert into orders "
        "(seq, client_order_id, code, side, quantity, price, state, broker_order_id, at) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "on conflict (client_order_id) do update set "
        "state = excluded.state, "
        "broker_order_id = coalesce(excluded.broker_order_id, orders.broker_order_id)"
    )
    # seq is not among the updated columns: the row keeps the seq it was first written with.
    assert "seq = " not in ORDER.insert_sql.split("do update set")[1]
    assert ORDER.args(9) == (9, "c-0001", "005930", "buy", 10, 71_000, "pending", None, 3.0)


def test_a_market_order_has_no_price() -> None:
    market = StoredOrder("c-0002", "005930", "sell", 5, None, "pending", None, 3.5)
    assert market.args(10)[5] is None  # the column's NULL: a market order
    with pytest.raises(TypeError, match="price must be an int"):
        StoredOrder("c-0003", "005930", "sell", 5, 1.5, "pending", None, 3.5)  # type: ignore[arg-type]


def test_details_are_compact_sorted_json_that_keeps_korean_readable() -> None:
    detail = {"msg": "주문 거부", "b": [1, None, 2.5], "a": {"y": True, "x": "\\u0000 as text"}}
    assert encode_detail(detail) == (
        '{"a":{"x":"\\\\u0000 as text","y":true},"b":[1,null,2.5],"msg":"주문 거부"}'
    )


def test_a_detail_is_encoded_when_the_record_is_made() -> None:
    detail: dict[str, Any] = {"n": 1}
    event = AuditEvent(kind="k", detail=detail, at=0.0)
    detail["n"] = 2  # too late: what gets written was fixed at construction
    assert event.args(1)[2] == '{"n":1}'


def test_records_with_equal_details_are_equal_and_hashable() -> None:
    one = Signal(code="005930", kind="k", detail={"a": 1, "b": 2}, at=1.0)
    two = Signal(code="005930", kind="k", detail={"b": 2, "a": 1}, at=1.0)
    assert one == two
    assert hash(one) == hash(two)
    assert one != Signal(code="005930", kind="k", detail={"a": 1}, at=1.0)


@pytest.mark.parametrize(
    ("detail", "error", "words"),
    [
        ({"x": math.nan}, ValueError, "not storable as JSON"),
        ({"x": math.inf}, ValueError, "not storable as JSON"),
        ({"x": object()}, TypeError, "not storable as JSON"),
        ({"x": "a\x00b"}, ValueError, "NUL"),
        ({"a\x00": 1}, ValueError, "NUL"),
        (["not", "an", "object"], TypeError, "must be a mapping"),
    ],
)
def test_a_detail_jsonb_cannot_hold_is_refused_up_front(
    detail: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        AuditEvent(kind="k", detail=detail, at=0.0)


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: QuoteSnapshot("0059300", 1, 1, 0.0), ValueError, "6-character stock code"),
        (lambda: QuoteSnapshot("5930", 1, 1, 0.0), ValueError, "6-character stock code"),
        (lambda: QuoteSnapshot("005930", 2**63, 1, 0.0), ValueError, "bigint"),
        (lambda: QuoteSnapshot("005930", 1.5, 1, 0.0), TypeError, "price must be an int"),
        (lambda: QuoteSnapshot("005930", 1, True, 0.0), TypeError, "volume must be an int"),
        (lambda: QuoteSnapshot("005930", 1, 1, math.nan), ValueError, "finite"),
        (lambda: QuoteSnapshot("005930", 1, 1, "now"), TypeError, "seconds"),
        (lambda: Signal("005930", "", {}, 0.0), ValueError, "kind must not be empty"),
        (lambda: Halt("a\x00b", False, 0.0), ValueError, "NUL"),
        (lambda: Halt("why", 1, 0.0), TypeError, "released must be a bool"),
        (
            lambda: StoredOrder("", "005930", "buy", 1, 1, "pending", None, 0.0),
            ValueError,
            "client_order_id must not be empty",
        ),
        (
            lambda: StoredOrder("c", "005930", "buy", 1, 1, "acked", "", 0.0),
            ValueError,
            "broker_order_id must not be empty",
        ),
        (
            lambda: StoredOrder("c", "005930", "buy", 1, 1, 7, None, 0.0),
            TypeError,
            "state must be a str",
        ),
    ],
)
def test_a_value_its_column_cannot_hold_is_refused_up_front(
    make: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        make()


def test_statements_group_consecutive_records_of_a_table_in_seq_order() -> None:
    acked = StoredOrder("c-0001", "005930", "buy", 10, 71_000, "acked", "0000123", 6.0)
    later = QuoteSnapshot(code="005930", price=71_100, volume=1_234_600, at=7.0)
    batch: list[tuple[int, Record]] = [
        (1, SNAPSHOT),
        (2, later),
        (3, ORDER),
        (4, acked),
        (5, SNAPSHOT),
        (6, HALT),
    ]
    assert statements(batch) == [
        (QuoteSnapshot.insert_sql, [SNAPSHOT.args(1), later.args(2)]),
        (StoredOrder.insert_sql, [ORDER.args(3), acked.args(4)]),
        (QuoteSnapshot.insert_sql, [SNAPSHOT.args(5)]),
        (Halt.insert_sql, [HALT.args(6)]),
    ]
    assert statements([]) == []


def test_the_record_union_names_every_table_once() -> None:
    tables = [record_type.table for record_type in RECORD_TYPES]
    assert tables == [
        "quote_snapshots",
        "signals",
        "orders",
        "halts",
        "audit_events",
        "opportunities",
    ]
