"""The system's parsers of what a realtime feed sends, under fuzzed messages, and the feed
clients that must drop a bad message, count it and keep going.

``KisSession.parse`` (KIS frames ``flag|tr_id|count|rec^rec…`` and JSON control messages),
``KiwoomSession.parse`` (Kiwoom's ``trnm``-keyed JSON) and the rate feed's
``parse_message`` (Kraken's ticker channel) must each, for every example, return one of
their documented events, well formed, or raise one of the documented ``FeedProtocolError``
subclasses (``MalformedMessage``, ``FieldCountMismatch``, ``UnknownTrId``,
``InvalidValue``): never another exception, and never hang. An error's text is an excerpt
that never shows the approval key or token a message carried (``system.market.errors``
promises it; a server that echoes a subscribe message echoes the key).

Examples start from valid messages written by the mock feed's own encoders
(``mocks.feed.protocol``, ``records``, ``kiwoom_protocol``, ``fx_protocol``) and break
them: fields given absurd numbers, records with a field too few or too many, record
counts that disagree with the records, unknown tr_ids and flags, JSON fields junked or
dropped, messages cut at any length or edited a few characters at a time, lone
surrogates, nesting past the JSON reader's limit, and a megabyte in one message.

Then the clients (``FeedClient`` in both dialects, ``RateFeedClient``) on the unit tests'
in-memory server: good messages interleaved with bad ones give every good update, in
order, a malformed-message counter equal to the number of bad ones, and one connection
throughout.
"""

from __future__ import annotations

import base64
import faulthandler
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from mocks.clock import KST, MockClock
from mocks.feed import fx_protocol as fx_wire
from mocks.feed import kiwoom_protocol as kiwoom_wire
from mocks.feed import protocol as kis_wire
from mocks.feed.records import Tape
from mocks.fx import FxMarket
from mocks.market import Market
from system.market import (
    KIS,
    KIWOOM,
    FeedClient,
    FeedProtocolError,
    FieldCountMismatch,
    InvalidValue,
    MalformedMessage,
    PriceUpdate,
    RateFeedClient,
    RateQuote,
    UnknownTrId,
)
from system.market import rate_protocol as rates
from system.market.columns import BOOK_MIDPOINT_COLUMNS, TRADE_INDEX
from system.market.dialect import Answer, Data, Dialect, Event, Heartbeat
from system.market.kiwoom_protocol import KiwoomSession
from system.market.model import OrderBook
from system.market.protocol import KisSession
from system.market.records import Trade
from system.market.settings import RateFeedSettings
from tests.fuzz.strategies import (
    ABSURD_NUMBERS,
    DEEP_JSON,
    HUGE_TEXT,
    JSON_VALUES,
    LONE_SURROGATES,
    NASTY_TEXT,
    TEXT,
    as_text,
    either,
    mostly,
    mutated,
    prefixes,
    variants,
)
from tests.unit.market.conftest import Approvals, FakeServer, Quotes
from tests.unit.market.conftest import settings as feed_settings

# What a server could echo: a KIS approval key (a UUID) and a Kiwoom access token.
APPROVAL_KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"
TOKEN = "kiwoom-token-" + "Zq8" * 14
CREDENTIAL_FIELDS = ("approval_key", "appkey", "appsecret", "secretkey", "token")
DOCUMENTED_ERRORS = (MalformedMessage, FieldCountMismatch, UnknownTrId, InvalidValue)
NOW = 1234.5  # the loop time a message arrives; an order book is stamped with it

# -- valid messages, from the mock feed's own encoders ------------------------------------

OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)
_MARKET = Market(0)
_TAPE = Tape(_MARKET, MockClock(OPEN))
CODES = list(_MARKET.instruments)[:3]
CODE = CODES[0]
TRADE_RECORDS = [_TAPE.trade(code, step) for code in CODES for step in range(6)]
BOOK_RECORDS = [_TAPE.book(code, step) for code in CODES for step in range(6)]
# Newer KIS samples append four mid-price columns to a book record; both widths are valid.
MIDPOINT = ("0", "0", "0", "0")
assert len(MIDPOINT) == len(BOOK_MIDPOINT_COLUMNS)
CIPHER = kis_wire.Cipher(key="k" * 32, iv="i" * 16)
ENCRYPTED = "1|H0STCNI0|001|" + base64.b64encode(b"an AES-encrypted fill notice").decode()
# The columns the client reads, so edits land where they reach its checks.
READ_TRADE_COLUMNS = sorted(
    TRADE_INDEX[name]
    for name in (
        *("MKSC_SHRN_ISCD", "STCK_CNTG_HOUR", "STCK_PRPR", "PRDY_VRSS_SIGN"),
        *("PRDY_VRSS", "PRDY_CTRT", "CNTG_VOL", "ACML_VOL"),
    )
)
READ_BOOK_COLUMNS = list(range(0, 43))  # code, time, class, 10 asks, 10 bids, 20 sizes

KIWOOM_ENTRIES: list[dict[str, Any]] = [
    {
        "type": kiwoom_wire.TRADES,
        "name": kiwoom_wire.NAMES[kiwoom_wire.TRADES],
        "item": record[0],
        "values": kiwoom_wire.trade_values(record, _MARKET.instrument(record[0]).base_price),
    }
    for record in TRADE_RECORDS
]
KIWOOM_READ_FIDS = ["20", "10", "11", "12", "15", "13"]
KIWOOM_CODES = [0, kiwoom_wire.TOKEN_INVALID, kiwoom_wire.UNKNOWN_ITEM, kiwoom_wire.BAD_INPUT]
KIWOOM_CODES += [kiwoom_wire.MOCK_NOT_LOGGED_IN, kiwoom_wire.MOCK_TOO_MANY]

_FX = FxMarket(0)
FX_QUOTES = [_FX.quote(pair, step) for pair in _FX.pairs for step in range(3)]
FX_AT = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
TICKER_KINDS: tuple[Literal["snapshot", "update"], ...] = ("snapshot", "update")


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- the oracle's pieces --------------------------------------------------------------------


@contextmanager
def answered_at_once(seconds: float = 10.0) -> Iterator[None]:
    """A parser must answer one message at once: a message that takes ``seconds`` fails its
    example. One that never returns to Python (an int() of a billion-digit number) can't be
    interrupted, so faulthandler ends the run after a minute with every thread's traceback,
    rather than leaving CI to hang."""
    faulthandler.dump_traceback_later(60, exit=True)
    started = time.perf_counter()
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
    elapsed = time.perf_counter() - started
    assert elapsed < seconds, f"one message took {elapsed:.1f} s to parse"


def _check_error(error: FeedProtocolError, *secrets: str) -> None:
    event(f"raised {type(error).__name__}")
    assert isinstance(error, DOCUMENTED_ERRORS), repr(error)
    assert error.problem, repr(error)
    assert error.message == str(error), repr(error)
    for secret in secrets:
        assert secret not in str(error), f"the error shows a credential: {error}"
    # An excerpt (80 characters, repr-escaped, plus the length), however long the message.
    assert len(error.text) < 1000, len(error.text)


def _check_trade(trade: Trade) -> None:
    assert len(trade.code) == 6, trade
    assert trade.code.isalnum(), trade
    assert len(trade.time) == 6, trade
    assert trade.price >= 1, trade
    assert min(trade.volume, trade.accumulated_volume) >= 0, trade
    assert math.isfinite(trade.change_rate), trade


def _check_book(book: OrderBook) -> None:
    assert len(book.code) == 6, book
    assert book.at == NOW, book
    for side in (book.asks, book.bids):
        assert len(side) <= 10, book
        assert all(level.price > 0 and level.quantity >= 0 for level in side), book


ANSWER_OUTCOMES = {"accepted", "removed", "refused", "credential-refused", "session-refused"}


def _check_answer(answer: Answer) -> None:
    event(f"answer {answer.outcome}")
    assert answer.outcome in ANSWER_OUTCOMES, answer
    assert isinstance(answer.why, str), answer
    if answer.registration is not None:
        assert all(isinstance(part, str) for part in answer.registration), answer


def _check_data(data: Data) -> None:
    assert 1 <= data.count <= 999, data
    if data.encrypted:
        event("data, encrypted")
        assert data.trades == (), data
        assert data.books == (), data
        return
    event("data, trades" if data.trades else "data, books")
    # A frame counts whole or not at all: every record it claims was read.
    assert data.count == len(data.trades) + len(data.books), data
    assert not (data.trades and data.books), data
    for trade in data.trades:
        _check_trade(trade)
    for book in data.books:
        _check_book(book)


def _check_event(parsed: Event, text: str) -> None:
    if isinstance(parsed, Heartbeat):
        event("heartbeat")
        assert parsed.raw == text  # echoed verbatim, or the server drops the session
    elif isinstance(parsed, Answer):
        _check_answer(parsed)
    else:
        assert isinstance(parsed, Data), repr(parsed)
        _check_data(parsed)


# -- KIS ------------------------------------------------------------------------------------

KIS_VALID = st.one_of(
    st.lists(st.sampled_from(TRADE_RECORDS), min_size=1, max_size=3).map(
        lambda records: kis_wire.frame(kis_wire.TRADES, records)
    ),
    st.lists(st.sampled_from(BOOK_RECORDS), min_size=1, max_size=2).map(
        lambda records: kis_wire.frame(kis_wire.BOOK, records)
    ),
    st.builds(
        kis_wire.ack,
        st.sampled_from(sorted(kis_wire.MESSAGES)),
        st.sampled_from(kis_wire.SERVED_TR_IDS),
        st.sampled_from(CODES),
        cipher=st.just(CIPHER),
    ),
    st.datetimes(min_value=datetime(2000, 1, 1)).map(kis_wire.pingpong),
    st.just(ENCRYPTED),
)
COUNT_JUNK = st.one_of(
    st.sampled_from(["000", "0", "1", "01", "1000", "999", "-01", "+01", " 01", "01 ", "٠٠١"]),
    st.integers(0, 1200).map(lambda n: f"{n:03d}"),
    ABSURD_NUMBERS,
)
FLAG_JUNK = st.sampled_from(["1", "2", "", "00", " 0", "٠", "O", "1|1"]) | TEXT
TR_ID_JUNK = st.sampled_from(
    ["H0STCNI0", "H0STCNI9", "H0STCNT1", "h0stcnt0", "H0STCNT0 ", "", "PINGPONG", "X" * 300]
)
FIELD_JUNK = st.one_of(ABSURD_NUMBERS, NASTY_TEXT, LONE_SURROGATES, st.just("^"), TEXT)


@st.composite
def kis_frames(draw: st.DrawFn) -> str:
    """A data frame of the mock's records with one thing wrong, most often a value: a
    column the client reads given an absurd number or junk in some records; else a field
    dropped or added, or the count, flag or tr_id off. One thing at a time, so each check
    is reached past the others."""
    tr_id = draw(st.sampled_from(kis_wire.SERVED_TR_IDS))
    trades = tr_id == kis_wire.TRADES
    pool = TRADE_RECORDS if trades else BOOK_RECORDS
    records = [
        list(record) for record in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    ]
    if not trades and draw(st.booleans()):
        records = [record + list(MIDPOINT) for record in records]
    read = READ_TRADE_COLUMNS if trades else READ_BOOK_COLUMNS
    count, flag, shown_tr_id = f"{len(records):03d}", "0", tr_id
    wrong = draw(st.sampled_from(["value", "value", "value", "field", "count", "flag", "tr_id"]))
    if wrong == "value":
        for record in records[: draw(st.integers(1, len(records)))]:
            record[draw(st.sampled_from(read))] = draw(FIELD_JUNK)
    elif wrong == "field":
        record = records[draw(st.integers(0, len(records) - 1))]
        index = draw(st.integers(0, len(record) - 1))
        if draw(st.booleans()):
            del record[index]
        else:
            record.insert(index, draw(FIELD_JUNK))
    elif wrong == "count":
        count = draw(COUNT_JUNK)
    elif wrong == "flag":
        flag = draw(FLAG_JUNK)
    else:
        shown_tr_id = draw(TR_ID_JUNK | TEXT)
    payload = "^".join(value for record in records for value in record)
    return f"{flag}|{shown_tr_id}|{count}|{payload}"


@st.composite
def kis_controls(draw: st.DrawFn) -> str:
    """An ack or a PINGPONG as JSON, with fields junked, dropped or added, and now and then
    the approval key in it, as a server that echoes a subscribe message would send it."""
    code = draw(st.sampled_from(sorted(kis_wire.MESSAGES)))
    rt_cd, msg1 = kis_wire.MESSAGES[code]
    header: dict[str, Any] = {
        "tr_id": draw(st.sampled_from([*kis_wire.SERVED_TR_IDS, kis_wire.HEARTBEAT])),
        "tr_key": draw(st.sampled_from(CODES)),
        "encrypt": "N",
    }
    if header["tr_id"] == kis_wire.HEARTBEAT:
        header = {"tr_id": kis_wire.HEARTBEAT, "datetime": "20250106090000"}
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": code, "msg1": msg1}
    if rt_cd == "0":
        body["output"] = {"iv": CIPHER.iv, "key": CIPHER.key}
    header, body = draw(variants(header)), draw(variants(body))
    # The credential goes first where it goes, as in the subscribe message a server would
    # echo: an error shows the first 80 characters of the message.
    where = draw(st.sampled_from(["nowhere", "header", "body", "top", "echo"]))
    field = draw(st.sampled_from(CREDENTIAL_FIELDS))
    if where == "header":
        header = {field: APPROVAL_KEY, **header}
    elif where == "body":
        body = {field: APPROVAL_KEY, **body}
    message = draw(variants({"header": header, "body": body}))
    if where == "top":
        message = {field: APPROVAL_KEY, **message}
    elif where == "echo":  # our own subscribe message, sent back
        echoed = kis_wire.Subscription(APPROVAL_KEY, "P", "subscribe", kis_wire.TRADES, CODE)
        message = draw(variants(echoed.as_message()))
    return draw(as_text(message))


# A quarter each: valid, broken frames (most reach the records' values), broken control
# messages, and valid messages cut, edited, or replaced by something huge or deep.
KIS_BROKEN = either(
    kis_controls().flatmap(prefixes),
    KIS_VALID.flatmap(prefixes),
    KIS_VALID.flatmap(mutated),
    st.sampled_from(DEEP_JSON + HUGE_TEXT),
    # The longest frame the count allows, about 160 KB.
    st.sampled_from(TRADE_RECORDS).map(
        lambda record: kis_wire.frame(kis_wire.TRADES, [record] * 999)
    ),
)
KIS_MESSAGES = st.one_of(KIS_VALID, kis_frames(), kis_controls(), KIS_BROKEN)


def parse_kis(text: str) -> Event:
    return KisSession(APPROVAL_KEY, "P").parse(text, now=NOW)


@given(text=KIS_MESSAGES)
def test_kis_frames_parse_to_documented_events_or_documented_errors(text: str) -> None:
    if APPROVAL_KEY in text:
        event("carries the approval key")
    with answered_at_once():
        try:
            parsed = parse_kis(text)
        except FeedProtocolError as error:
            _check_error(error, APPROVAL_KEY)
            return
    _check_event(parsed, text)


# -- Kiwoom ---------------------------------------------------------------------------------

RETURN_CODE_JUNK = st.one_of(
    st.sampled_from(["0", "-1", "8005", " 0", "²", "--5", "٣", "0x1", "1e3", "", "-", "+0"]),
    st.sampled_from([True, False, None, 1.5, 10**30, -(10**30), [0], {"code": 0}]),
    ABSURD_NUMBERS,
    JSON_VALUES,
)
SIGNED_NUMBERS = st.tuples(st.sampled_from(["", "+", "-"]), ABSURD_NUMBERS).map("".join)


@st.composite
def kiwoom_values(draw: st.DrawFn, values: dict[str, str]) -> dict[str, Any]:
    """A REAL entry's FID values with one the client reads given a signed absurd number or
    junk, or dropped; or the values as they were, or junked anywhere."""
    edit = draw(st.sampled_from(["keep", "value", "value", "drop", "anywhere"]))
    fid = draw(st.sampled_from(KIWOOM_READ_FIDS))
    if edit == "value":
        return {**values, fid: draw(SIGNED_NUMBERS | FIELD_JUNK | JSON_VALUES)}
    if edit == "drop":
        return {key: value for key, value in values.items() if key != fid}
    if edit == "anywhere":
        return draw(variants(values))
    return values


@st.composite
def kiwoom_objects(draw: st.DrawFn) -> str:
    """A REAL, an answer or a PING, fields junked, dropped or added, and now and then the
    access token in it (a server echoing the LOGIN)."""
    kind = draw(st.sampled_from(["real", "real", "answer", "ping"]))
    message: dict[str, Any]
    if kind == "real":
        entries = [
            draw(variants({**entry, "values": draw(kiwoom_values(entry["values"]))}))
            for entry in draw(st.lists(st.sampled_from(KIWOOM_ENTRIES), min_size=1, max_size=3))
        ]
        message = {"trnm": kiwoom_wire.REAL, "data": draw(mostly(entries, JSON_VALUES))}
    elif kind == "answer":
        message = {
            "trnm": draw(st.sampled_from([kiwoom_wire.LOGIN, kiwoom_wire.REG, kiwoom_wire.REMOVE])),
            "return_code": draw(mostly(0, st.sampled_from(KIWOOM_CODES) | RETURN_CODE_JUNK)),
            "return_msg": draw(TEXT),
        }
    else:
        message = {"trnm": kiwoom_wire.PING}
    message = draw(variants(message))
    # Now and then the token, first, as in the LOGIN a server would echo: an error shows
    # the first 80 characters of the message.
    if draw(st.integers(0, 2)) == 0:
        message = {"token": TOKEN, **message}
    return draw(as_text(message))


KIWOOM_VALID = st.one_of(
    st.sampled_from(KIWOOM_ENTRIES).map(
        lambda entry: kiwoom_wire.real(entry["type"], entry["item"], entry["values"])
    ),
    st.lists(st.sampled_from(KIWOOM_ENTRIES), min_size=2, max_size=4).map(
        lambda entries: _compact({"trnm": kiwoom_wire.REAL, "data": entries})
    ),
    st.builds(
        kiwoom_wire.answer,
        st.sampled_from([kiwoom_wire.LOGIN, kiwoom_wire.REG, kiwoom_wire.REMOVE]),
        st.sampled_from(KIWOOM_CODES),
        st.sampled_from(["", kiwoom_wire.LOGIN_OK]),
    ),
    st.just(kiwoom_wire.ping()),
)
KIWOOM_BROKEN = either(
    kiwoom_objects().flatmap(prefixes),
    KIWOOM_VALID.flatmap(prefixes),
    KIWOOM_VALID.flatmap(mutated),
    st.sampled_from(DEEP_JSON + HUGE_TEXT),
)
KIWOOM_MESSAGES = st.one_of(KIWOOM_VALID, kiwoom_objects(), KIWOOM_BROKEN)


def parse_kiwoom(text: str, pending: list[tuple[str, bool]] | None = None) -> Event:
    session = KiwoomSession(TOKEN)
    # Registrations sent and not answered yet: the session pairs answers with them.
    for code, subscribe in pending or []:
        session.registration((kiwoom_wire.TRADES, code), subscribe=subscribe)
    return session.parse(text, now=NOW)


@given(
    text=KIWOOM_MESSAGES,
    pending=st.lists(st.tuples(st.sampled_from(CODES), st.booleans()), max_size=3),
)
def test_kiwoom_messages_parse_to_documented_events_or_documented_errors(
    text: str, pending: list[tuple[str, bool]]
) -> None:
    if TOKEN in text:
        event("carries the token")
    with answered_at_once():
        try:
            parsed = parse_kiwoom(text, pending)
        except FeedProtocolError as error:
            _check_error(error, TOKEN)
            return
    _check_event(parsed, text)
    if isinstance(parsed, Data):
        assert parsed.books == (), parsed  # Kiwoom: trades only, never encrypted
        assert not parsed.encrypted, parsed


# -- the FX venue (Kraken's ticker channel) ---------------------------------------------------

# Kraken writes prices as JSON numbers; as_text writes NaN and Infinity, which json reads.
PRICE_JUNK = st.one_of(
    st.floats(),
    st.integers(min_value=-(10**400), max_value=10**400),
    # Past float's range: a JSON integer may have any length, float() raises on this one.
    st.sampled_from([10**309, -(10**309), 2**1024, 0, -1, True, None, [1.0], {"price": 1.0}]),
    ABSURD_NUMBERS,
)


@st.composite
def fx_tickers(draw: st.DrawFn) -> str:
    """A ticker message of the mock's quotes, its items' bid, ask or symbol junked, crossed,
    dropped, or joined by fields nobody reads."""
    quotes = draw(st.lists(st.sampled_from(FX_QUOTES), min_size=1, max_size=3))
    message = json.loads(fx_wire.ticker(draw(st.sampled_from(TICKER_KINDS)), quotes, FX_AT))
    items = []
    for item in message["data"]:
        edit = draw(st.sampled_from(["keep", "price", "price", "cross", "symbol", "anywhere"]))
        if edit == "price":
            item[draw(st.sampled_from(["bid", "ask"]))] = draw(PRICE_JUNK)
        elif edit == "cross":
            item["bid"], item["ask"] = item["ask"], item["bid"]
        elif edit == "symbol":
            item["symbol"] = draw(st.sampled_from(["USD", "USD/USD", "/KRW", "A/B/C", ""]) | TEXT)
        elif edit == "anywhere":
            item = draw(variants(item))
        items.append(item)
    message["data"] = draw(mostly(items, JSON_VALUES))
    return draw(as_text(draw(mostly(message, variants(message)))))


FX_VALID = st.one_of(
    st.lists(st.sampled_from(FX_QUOTES), min_size=1, max_size=3).flatmap(
        lambda quotes: st.sampled_from(TICKER_KINDS).map(
            lambda kind: fx_wire.ticker(kind, quotes, FX_AT)
        )
    ),
    st.just(fx_wire.HEARTBEAT),
    st.integers(0, 10**6).map(fx_wire.status),
    st.builds(
        lambda quote, method, error, req_id: fx_wire.answer(
            fx_wire.TickerRequest(method, (quote.pair,), req_id=req_id),
            quote.pair,
            at=FX_AT,
            error=error,
        ),
        st.sampled_from(FX_QUOTES),
        st.sampled_from(["subscribe", "unsubscribe"]),
        st.sampled_from([None, fx_wire.PAIR_NOT_SUPPORTED]),
        st.none() | st.integers(0, 100),
    ),
    st.integers(0, 100).map(lambda req_id: fx_wire.pong(fx_wire.Ping(req_id), at=FX_AT)),
)
FX_JUNKED = FX_VALID.map(json.loads).flatmap(lambda message: variants(message).flatmap(as_text))
FX_BROKEN = either(
    FX_VALID.flatmap(prefixes),
    FX_VALID.flatmap(mutated),
    st.sampled_from(DEEP_JSON + HUGE_TEXT),
)
FX_MESSAGES = st.one_of(FX_VALID, fx_tickers(), FX_JUNKED, FX_BROKEN)


def _check_rate_message(message: rates.ServerMessage) -> None:
    event(f"parsed {type(message).__name__}")
    if isinstance(message, rates.Ticker):
        assert message.kind in ("snapshot", "update"), message
        assert message.quotes, message
        for quote in message.quotes:
            assert quote.at == NOW, quote
            base, _, counter = quote.pair.partition("/")
            assert "" != base != counter != "", quote
            assert math.isfinite(quote.ask), quote
            assert 0 < quote.bid <= quote.ask, quote  # a crossed quote is bad data
    elif isinstance(message, rates.Answer):
        assert all(isinstance(part, str) for part in (message.method, message.symbol)), message
        assert isinstance(message.ok, bool), message
        assert isinstance(message.error, str), message
    elif isinstance(message, rates.Status):
        assert isinstance(message.system, str), message
    else:
        assert isinstance(message, rates.Heartbeat | rates.Pong), repr(message)


@given(text=FX_MESSAGES)
def test_rate_feed_messages_parse_to_documented_events_or_documented_errors(text: str) -> None:
    with answered_at_once():
        try:
            message = rates.parse_message(text, at=NOW)
        except FeedProtocolError as error:
            _check_error(error)
            return
    _check_rate_message(message)


# -- drop, count, keep going: the clients ---------------------------------------------------

# Good messages (None: the test writes the next one) and bad ones, in the order sent.
Stream = list[str | None]


def _rejected(parse: Callable[[str], object], text: str) -> bool:
    """Whether ``parse`` refuses ``text``: it raises, whatever it raises (an exception the
    parser should not raise is a bad message to the client too, and must be survived)."""
    try:
        parse(text)
    except Exception:
        return True
    return False


@st.composite
def streams(
    draw: st.DrawFn, candidates: st.SearchStrategy[str], parse: Callable[[str], object]
) -> Stream:
    """Good messages (``None``: the test writes the next one) and bad ones (the candidates
    the parser refuses), interleaved in a drawn order."""
    drawn = draw(st.lists(candidates, min_size=1, max_size=8))
    bad = [text for text in drawn if _rejected(parse, text)]
    good = draw(st.integers(1, 5))
    slots: list[str | None] = [*bad, *([None] * good)]
    order = draw(st.permutations(range(len(slots))))
    event(f"{len(bad)} bad messages")
    return [slots[i] for i in order]


def _kis_trade(volume: int, accumulated: int) -> str:
    record = list(TRADE_RECORDS[0])
    record[TRADE_INDEX["CNTG_VOL"]], record[TRADE_INDEX["ACML_VOL"]] = str(volume), str(accumulated)
    return kis_wire.frame(kis_wire.TRADES, [record])


def _kiwoom_trade(volume: int, accumulated: int) -> str:
    entry = KIWOOM_ENTRIES[0]
    values = {**entry["values"], "15": f"+{volume}", "13": str(accumulated)}
    return kiwoom_wire.real(entry["type"], entry["item"], values)


DIALECTS: dict[str, tuple[Dialect, Callable[[int, int], str], st.SearchStrategy[Stream]]] = {
    "KIS": (KIS, _kis_trade, streams(either(kis_frames(), kis_controls(), KIS_BROKEN), parse_kis)),
    "Kiwoom": (
        KIWOOM,
        _kiwoom_trade,
        streams(either(kiwoom_objects(), KIWOOM_BROKEN), parse_kiwoom),
    ),
}
assert TRADE_RECORDS[0][0] == KIWOOM_ENTRIES[0]["item"] == CODE


@pytest.mark.looptime
@pytest.mark.parametrize("broker", sorted(DIALECTS))
@given(data=st.data())
async def test_the_feed_client_drops_and_counts_every_bad_message_and_keeps_going(
    broker: str, data: st.DataObject
) -> None:
    dialect, good_trade, stream_of = DIALECTS[broker]
    stream = data.draw(stream_of, label="stream")
    server = FakeServer()
    client = FeedClient(
        feed_settings(),
        credential=Approvals(),
        resync=Quotes(),
        dialect=dialect,
        connect=server.connect,
        rng=random.Random(7),
    )
    heard: list[PriceUpdate] = []
    client.add_listener(heard.append)
    await client.subscribe(CODE)
    client.start()
    sent: list[int] = []  # the accumulated volume of each good trade, in order
    try:
        connection = await server.connection(1)
        for text in stream:
            if text is None:
                sent.append(1000 + 10 * len(sent))
                text = good_trade(10, sent[-1])
            connection.push(text)
        await connection.delivered()
        metrics = client.metrics()
    finally:
        await client.aclose()
    bad = sum(text is not None for text in stream)
    # Every good trade, in order, each once: in sequence, so no gap and no REST resync.
    assert [(u.source, u.volume) for u in heard] == [("feed", volume) for volume in sent]
    assert metrics["feed_malformed_frames"] == bad
    assert metrics["feed_trades"] == len(sent)
    # The same connection throughout: a bad message is no reason to reconnect.
    assert len(server.connections) == 1
    assert metrics["feed_reconnects"] == 0


RATE_PAIRS = ("USD/KRW", "JPY/KRW", "EUR/KRW")
GOOD_QUOTES = [quote for quote in FX_QUOTES if quote.pair in RATE_PAIRS]


@pytest.mark.looptime
@given(
    stream=streams(
        either(fx_tickers(), FX_JUNKED, FX_BROKEN), lambda text: rates.parse_message(text, at=NOW)
    )
)
async def test_the_rate_feed_client_drops_and_counts_every_bad_message_and_keeps_going(
    stream: Stream,
) -> None:
    venue = FakeServer()  # it leaves the rate feed's subscribe unanswered
    settings = RateFeedSettings(url="ws://venue.test/v2", pairs=RATE_PAIRS, stall_after_s=60.0)
    client = RateFeedClient(settings, connect=venue.connect, rng=random.Random(7))
    heard: list[RateQuote] = []
    client.add_listener(heard.append)
    sent: list[tuple[str, float, float]] = []
    async with client:
        connection = await venue.connection(1)
        for text in stream:
            if text is None:
                quote = GOOD_QUOTES[len(sent) % len(GOOD_QUOTES)]
                sent.append((quote.pair, quote.bid, quote.ask))
                text = fx_wire.ticker("update", [quote], FX_AT)
            connection.push(text)
        await connection.delivered()
        metrics = client.metrics()
    bad = sum(text is not None for text in stream)
    assert [(q.pair, q.bid, q.ask) for q in heard] == sent
    assert metrics["rates_malformed_messages"] == bad
    assert metrics["rates_messages"] == len(stream)
    assert len(venue.connections) == 1
    assert metrics["rates_reconnects"] == 0
