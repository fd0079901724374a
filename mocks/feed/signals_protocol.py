"""The signals channel's protocol, server side, without I/O: the seed's simple JSON.

The seed (a Kiwoom project's mock WebSocket service at ``WS /ws``) sent the clients
subscribed to a ticker its price every two seconds and, now and then (10 % each), a VCP or
a closing-bet (종가베팅) signal. Its message types are kept as it named them; the fields of
a price, the errors and the reasons are the mock's choices, written out here.

JSON text messages, both ways:

- client: ``{"type": "subscribe", "ticker": "005930"}``, ``{"type": "unsubscribe",
  "ticker": "005930"}``, ``{"type": "ping"}``; other fields are ignored;
- answers: ``{"type": "subscribed", "ticker": …}``, ``{"type": "unsubscribed", "ticker":
  …}``, ``{"type": "pong"}``; a message the channel can't act on gets ``{"type": "error",
  "code": …, "message": …}`` (the codes are ``ERRORS``), and the connection stays open;
- per subscribed ticker, every interval: ``{"type": "price", "ticker", "price", "change",
  "change_rate", "volume", "time"}``;
- signals: ``{"type": "signal", "signal": "vcp" | "closing_bet", "ticker", "price",
  "time", "reason"}``.

Numbers are JSON numbers: ``price`` and ``change`` (against the previous close) in won,
``change_rate`` a percentage with two decimals, ``volume`` the day's cumulative volume;
``time`` is the market step's KST wall time, HHMMSS, as the KIS and Kiwoom channels stamp
theirs. They are read off the KIS channel's H0STCNT0 record of the step
(``mocks.feed.records``), so every channel of the feed shows one market.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from mocks.feed.records import TRADE_COLUMNS

SignalKind = Literal["vcp", "closing_bet"]
SIGNALS: tuple[SignalKind, ...] = get_args(SignalKind)  # in the order they are drawn
# What a signal's reason calls it.
NAMES: dict[SignalKind, str] = {
    "vcp": "VCP (volatility contraction pattern)",
    "closing_bet": "closing bet (종가베팅)",
}
REQUESTS = ("subscribe", "unsubscribe", "ping")  # the client message types served

# Error codes (the mock's; the seed named none).
TOO_LARGE = "too_large"  # longer than the feed's max_message_chars
NOT_JSON = "not_json"  # not JSON text, not a JSON object, or a binary message
UNKNOWN_TYPE = "unknown_type"  # no type, or a type not in REQUESTS
BAD_TICKER = "bad_ticker"  # no ticker, or one that isn't a 6-digit code
UNKNOWN_TICKER = "unknown_ticker"  # a 6-digit code the simulated market doesn't list
INTERNAL = "internal"  # the mock failed on a message (a bug; the log shows it)
ERRORS = (TOO_LARGE, NOT_JSON, UNKNOWN_TYPE, BAD_TICKER, UNKNOWN_TICKER, INTERNAL)

_TICKER = re.compile(r"[0-9]{6}")  # ASCII digits only: str.isdigit() takes "٠٠٥٩٣٠" too
_EXAMPLE = '{"type": "subscribe", "ticker": "005930"}'
_EXCERPT = 20  # characters of a client's value an error message repeats
_JSON_KINDS = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}


@dataclass(frozen=True)
class TickerRequest:
    """Subscribe to (or unsubscribe from) one ticker's prices and signals."""

    action: Literal["subscribe", "unsubscribe"]
    ticker: str

    def as_message(self) -> dict[str, str]:
        return {"type": self.action, "ticker": self.ticker}


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Invalid:
    """A message the channel can't act on: the error's code and what to send instead."""

    code: str
    message: str


ClientMessage = TickerRequest | Ping | Invalid


@dataclass(frozen=True)
class Quote:
    """One ticker at one market step, as price and signal messages show it."""

    ticker: str
    price: int
    change: int
    change_rate: float
    volume: int
    time: str  # HHMMSS, KST


def parse_client_message(text: str, *, max_chars: int = 4096) -> ClientMessage:
    """What a client's text asks for; never raises on any input. Whether the ticker is
    listed is ``check``'s question: the market's listing is not the protocol's."""
    if len(text) > max_chars:
        return Invalid(
            TOO_LARGE, f"a message is at most {max_chars} characters; this one has {len(text)}"
        )
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, nested absurdly deep, a huge number
        return Invalid(NOT_JSON, f"the message is not JSON; send a JSON object such as {_EXAMPLE}")
    if not isinstance(message, dict):
        return Invalid(
            NOT_JSON, f"the message is {_kind(message)}; send a JSON object such as {_EXAMPLE}"
        )
    kind = message.get("type")
    valid = ", ".join(REQUESTS)
    if kind is None:
        return Invalid(UNKNOWN_TYPE, f"the message has no type; valid types: {valid}")
    if not isinstance(kind, str):
        return Invalid(UNKNOWN_TYPE, f"type is {_kind(kind)}, not a string; valid types: {valid}")
    if kind not in REQUESTS:
        return Invalid(UNKNOWN_TYPE, f"type {_shown(kind)} is not served; valid types: {valid}")
    if kind == "ping":
        return Ping()
    ticker = message.get("ticker")
    if not isinstance(ticker, str) or not _TICKER.fullmatch(ticker):
        got = "no ticker" if ticker is None else f"got {_shown(ticker)}"
        return Invalid(
            BAD_TICKER, f'{kind} needs a ticker, a 6-digit stock code such as "005930"; {got}'
        )
    return TickerRequest("subscribe" if kind == "subscribe" else "unsubscribe", ticker)


def check(ticker: str, listed: Collection[str]) -> Invalid | None:
    """The error for a ticker the market doesn't list; None if it does. The channel checks
    an unsubscribe's ticker too: one that can't be subscribed is a client's mistake."""
    if ticker in listed:
        return None
    return Invalid(
        UNKNOWN_TICKER,
        f"ticker {ticker!r} is not listed in the simulated market; listed: {', '.join(listed)}",
    )


def _shown(value: object) -> str:
    """A client's value as an error message repeats it: a short excerpt of a string, the
    JSON kind of anything else (never a repr of whatever the client nested)."""
    if isinstance(value, str):
        excerpt = value[:_EXCERPT] + ("…" if len(value) > _EXCERPT else "")
        return repr(excerpt)
    return _kind(value)


def _kind(value: object) -> str:
    return _JSON_KINDS.get(type(value), "a string" if isinstance(value, str) else "a number")


# -- server messages ---------------------------------------------------------------------


def answer(request: TickerRequest) -> str:
    """The answer to a subscribe or unsubscribe that was carried out."""
    return _compact({"type": f"{request.action}d", "ticker": request.ticker})


def pong() -> str:
    return _compact({"type": "pong"})


def error(problem: Invalid) -> str:
    return _compact({"type": "error", "code": problem.code, "message": problem.message})


def quote(record: Sequence[str]) -> Quote:
    """The quote in one KIS H0STCNT0 record (``records.TRADE_COLUMNS`` order)."""
    kis = dict(zip(TRADE_COLUMNS, record, strict=True))
    return Quote(
        ticker=kis["MKSC_SHRN_ISCD"],
        price=int(kis["STCK_PRPR"]),
        change=int(kis["PRDY_VRSS"]),
        change_rate=float(kis["PRDY_CTRT"]),
        volume=int(kis["ACML_VOL"]),
        time=kis["STCK_CNTG_HOUR"],
    )


def price(at: Quote) -> str:
    return _compact(
        {
            "type": "price",
            "ticker": at.ticker,
            "price": at.price,
            "change": at.change,
            "change_rate": at.change_rate,
            "volume": at.volume,
            "time": at.time,
        }
    )


def signal(kind: SignalKind, at: Quote, reason: str) -> str:
    return _compact(
        {
            "type": "signal",
            "signal": kind,
            "ticker": at.ticker,
            "price": at.price,
            "time": at.time,
            "reason": reason,
        }
    )


def drawn_reason(kind: SignalKind, probability: float) -> str:
    return f"simulated {NAMES[kind]}: drawn with probability {probability:g}"


def cued_reason(kind: SignalKind) -> str:
    return f"simulated {NAMES[kind]}: cued by the control plane"


# -- drawing -----------------------------------------------------------------------------


def fired(
    seed: int, ticker: str, interval: int, probabilities: Mapping[SignalKind, float]
) -> list[SignalKind]:
    """The signals ``ticker`` sends at ``interval`` (the interval's number on the feed's
    clock), in ``SIGNALS`` order, each firing with its probability (absent: 0).

    A pure function of its arguments: the same seed sends the same signals in every run,
    every connection subscribed to the ticker gets the same ones, and each kind is drawn
    every time whatever the other's probability, so changing one never moves the other.
    """
    rng = random.Random(f"squall-feed:{seed}:signals:{ticker}:{interval}")
    draws = {kind: rng.random() for kind in SIGNALS}
    return [kind for kind in SIGNALS if draws[kind] < probabilities.get(kind, 0.0)]


def _compact(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
