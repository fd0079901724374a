"""What the system writes to PostgreSQL: one frozen dataclass per table, and its INSERT.

Every row carries ``seq``, the system's own write sequence number (assigned by
``WriteBuffer.submit``, not by the record): it proves the order writes were made in, and makes
a replay harmless. The write buffer re-sends a batch whose transaction may or may not have
committed (the connection died before the answer), so every INSERT here is idempotent:
``on conflict (seq) do nothing`` — except ``orders``, where one row stands for one client
order id and a later state change of that order updates it (see ``StoredOrder``).

A record is checked when it is made, not when it is written: a value the column cannot hold
(a 7-character code, a price beyond ``bigint``, NaN in ``detail``, a NUL character) would
fail its INSERT every time, and the write buffer would hold everything queued behind it.
Failing in the constructor puts the error where the bug is.

Pure: no I/O, no clock. ``at`` is whatever time the caller stamps (seconds, as a float).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

# PostgreSQL's bigint.
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
# A JSON "\u0000" escape (an even number of backslashes before it, so not the text "\\u0000"):
# jsonb refuses it ("unsupported Unicode escape sequence").
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _text(name: str, value: object, *, empty_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if not empty_ok and not value:
        raise ValueError(f"{name} must not be empty")
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL; the INSERT would fail on every retry.
        raise ValueError(f"{name} must not contain NUL characters, got {value!r}")
    return value


def _code(value: object) -> None:
    if len(_text("code", value)) != 6:
        # char(6) pads a shorter code (silently wrong) and refuses a longer one.
        raise ValueError(f"code must be a 6-character stock code like '005930', got {value!r}")


def _bigint(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not _BIGINT_MIN <= value <= _BIGINT_MAX:
        raise ValueError(f"{name} {value} does not fit a PostgreSQL bigint")


def _finite(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (double precision), got {value!r}")


def _seconds(value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"at must be a number of seconds, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"at must be a finite number of seconds, got {value!r}")


def encode_detail(detail: Mapping[str, Any]) -> str:
    """``detail`` as the JSON text a ``jsonb`` parameter takes (asyncpg's default codec).

    Deterministic (sorted keys, no spaces) so equal details give equal text; non-ASCII kept
    as is (Korean broker messages stay readable in the database). Raises ``ValueError`` or
    ``TypeError`` for what jsonb cannot hold: non-JSON values, NaN/Infinity, NUL.
    """
    if not isinstance(detail, Mapping):
        raise TypeError(f"detail must be a mapping (a JSON object), got {type(detail).__name__}")
    try:
        text = json.dumps(
            detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise type(error)(f"detail is not storable as JSON: {error}") from error
    if _JSON_NUL.search(text):
        raise ValueError("detail must not contain NUL characters (jsonb cannot store them)")
    return text


class _Row:
    """What every record class shares: its INSERT, made from ``table`` and ``columns``, and
    the INSERT's parameters for a seq (``args``).

    ``columns`` are the attributes written after ``seq``, in order; an attribute named
    ``{column}_json`` fills the jsonb column ``{column}`` with its JSON text.
    ``on_conflict`` makes the INSERT idempotent (see the module docstring).
    """

    table: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    on_conflict: ClassVar[str] = "on conflict (seq) do nothing"
    insert_sql: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in cls.columns if name not in cls.__annotations__]
        if missing:
            raise TypeError(f"{cls.__name__}.columns names no attribute {missing}")
        names = ["seq", *(name.removesuffix("_json") for name in cls.columns)]
        placeholders = ", ".join(f"${number}" for number in range(1, len(names) + 1))
        cls.insert_sql = (
            f"insert into {cls.table} ({', '.join(names)}) values ({placeholders}) "
            f"{cls.on_conflict}"
        )

    def args(self, seq: int) -> tuple[object, ...]:
        """The INSERT's parameters, ``$1`` being ``seq``."""
        return (seq, *(getattr(self, name) for name in self.columns))


@dataclass(frozen=True)
class QuoteSnapshot(_Row):
    """A stock's price and the day's volume at ``at``. The only kind a full buffer may shed
    (``on_full="shed-oldest-snapshots"``): the next snapshot supersedes it."""

    table: ClassVar[str] = "quote_snapshots"
    columns: ClassVar[tuple[str, ...]] = ("code", "price", "volume", "at")

    code: str
    price: int
    volume: int
    at: float

    def __post_init__(self) -> None:
        _code(self.code)
        _bigint("price", self.price)
        _bigint("volume", self.volume)
        _seconds(self.at)


@dataclass(frozen=True)
class Signal(_Row):
    """Something the trading logic detected about ``code`` (``kind``, with ``detail``)."""

    table: ClassVar[str] = "signals"
    columns: ClassVar[tuple[str, ...]] = ("code", "kind", "detail_json", "at")

    code: str
    kind: str
    # Encoded once, here: equality and hashing go by the JSON text, and mutating the dict
    # after submitting it cannot change what gets written.
    detail: Mapping[str, Any] = field(compare=False)
    at: float
    detail_json: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _code(self.code)
        _text("kind", self.kind, empty_ok=False)
        _seconds(self.at)
        object.__setattr__(self, "detail_json", encode_detail(self.detail))


@dataclass(frozen=True)
class StoredOrder(_Row):
    """An order as the system last knew it, keyed by ``client_order_id``.

    Writing a ``StoredOrder`` for an id already stored updates that row's ``state`` and
    ``broker_order_id`` and keeps the rest — its original ``seq`` (when the system first
    wrote the order), ``at``, code, side, quantity, price. A ``broker_order_id`` of None
    leaves a known one in place: a later state change need not repeat it. A ``price`` of
    None is a market order.

    (Named apart from ``system.service.OrderRecord``, the service's in-memory snapshot.)
    """

    table: ClassVar[str] = "orders"
    columns: ClassVar[tuple[str, ...]] = (
        "client_order_id",
        "code",
        "side",
        "quantity",
        "price",
        "state",
        "broker_order_id",
        "at",
    )
    on_conflict: ClassVar[str] = (
        "on conflict (client_order_id) do update set "
        "state = excluded.state, "
        "broker_order_id = coalesce(excluded.broker_order_id, orders.broker_order_id)"
    )

    client_order_id: str
    code: str
    side: str
    quantity: int
    price: int | None
    state: str
    broker_order_id: str | None
    at: float

    def __post_init__(self) -> None:
        _text("client_order_id", self.client_order_id, empty_ok=False)
        _code(self.code)
        _text("side", self.side, empty_ok=False)
        _bigint("quantity", self.quantity)
        if self.price is not None:
            _bigint("price", self.price)
        _text("state", self.state, empty_ok=False)
        if self.broker_order_id is not None:
            _text("broker_order_id", self.broker_order_id, empty_ok=False)
        _seconds(self.at)


@dataclass(frozen=True)
class Halt(_Row):
    """Trading was halted (``released=False``) or a halt was lifted (``released=True``)."""

    table: ClassVar[str] = "halts"
    columns: ClassVar[tuple[str, ...]] = ("reason", "released", "at")

    reason: str
    released: bool
    at: float

    def __post_init__(self) -> None:
        _text("reason", self.reason, empty_ok=False)
        if not isinstance(self.released, bool):
            raise TypeError(f"released must be a bool, got {self.released!r}")
        _seconds(self.at)


@dataclass(frozen=True)
class AuditEvent(_Row):
    """Anything worth a line in the audit trail (``kind``, with ``detail``)."""

    table: ClassVar[str] = "audit_events"
    columns: ClassVar[tuple[str, ...]] = ("kind", "detail_json", "at")

    kind: str
    detail: Mapping[str, Any] = field(compare=False)  # as in Signal
    at: float
    detail_json: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _text("kind", self.kind, empty_ok=False)
        _seconds(self.at)
        object.__setattr__(self, "detail_json", encode_detail(self.detail))


@dataclass(frozen=True)
class Opportunity(_Row):
    """An arbitrage ``cycle`` (``"KRW->EUR->JPY->KRW"``) that ``detector`` found profitable:
    ``net_rate`` is what one unit becomes after fees, ``est_profit`` the gain on the capital
    allotted, in the cycle's first currency; ``detail`` holds the legs and the rest."""

    table: ClassVar[str] = "opportunities"
    columns: ClassVar[tuple[str, ...]] = (
        "opportunity_id",
        "detector",
        "cycle",
        "net_rate",
        "est_profit",
        "detail_json",
        "at",
    )

    opportunity_id: str
    detector: str
    cycle: str
    net_rate: float
    est_profit: float
    detail: Mapping[str, Any] = field(compare=False)  # as in Signal
    at: float
    detail_json: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _text("opportunity_id", self.opportunity_id, empty_ok=False)
        _text("detector", self.detector, empty_ok=False)
        _text("cycle", self.cycle, empty_ok=False)
        _finite("net_rate", self.net_rate)
        _finite("est_profit", self.est_profit)
        _seconds(self.at)
        object.__setattr__(self, "detail_json", encode_detail(self.detail))


Record: TypeAlias = QuoteSnapshot | Signal | StoredOrder | Halt | AuditEvent | Opportunity
RECORD_TYPES: tuple[type[Record], ...] = (
    QuoteSnapshot,
    Signal,
    StoredOrder,
    Halt,
    AuditEvent,
    Opportunity,
)


def statements(batch: Sequence[tuple[int, Record]]) -> list[tuple[str, list[tuple[object, ...]]]]:
    """``batch`` (seq-ordered) as ``(insert_sql, [args, ...])`` runs for ``executemany``.

    Consecutive records of one table share a run; the runs keep the batch's order, so an
    order's later state change is applied after its earlier one within the transaction.
    """
    runs: list[tuple[str, list[tuple[object, ...]]]] = []
    for seq, record in batch:
        if runs and runs[-1][0] == record.insert_sql:
            runs[-1][1].append(record.args(seq))
        else:
            runs.append((record.insert_sql, [record.args(seq)]))
    return runs
