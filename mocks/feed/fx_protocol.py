"""The FX venue's realtime protocol, server side, without I/O: Kraken's WebSocket API v2
``ticker`` channel, as Kraken documents it (docs.kraken.com, "Ticker (Level 1)").

Why Kraken's: it is the documented public protocol of a real multi-currency venue, its
symbols are written "BASE/QUOTE" as the detector's pairs are, and its ticker channel is
level-1 data, the best bid and ask, which is all a triangle is priced from. KIS has no
cross-rate stream to copy. The pairs are the simulator's (``mocks.fx``), not Kraken's
listings.

JSON text messages, both ways:

- client requests: ``{"method": "subscribe" | "unsubscribe", "params": {"channel":
  "ticker", "symbol": ["EUR/JPY", …], "snapshot": true, "event_trigger": "bbo"},
  "req_id": 1}`` and ``{"method": "ping", "req_id": 2}``;
- ``status`` on connect: ``{"channel": "status", "type": "update", "data": [{"system":
  "online", "api_version": "v2", "connection_id": N, "version": …}]}``;
- one answer per symbol of a request: ``{"method": "subscribe", "result": {"channel":
  "ticker", "symbol": "EUR/JPY", …}, "success": true, "time_in": …, "time_out": …}``, or
  ``"success": false`` with ``"error"`` and ``"symbol"``;
- ``{"method": "pong", "req_id": …}`` for a ping;
- ticker data: ``{"channel": "ticker", "type": "snapshot" | "update", "data": [{"symbol",
  "bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high", "change",
  "change_pct", "timestamp"}]}``, numbers as JSON numbers, ``timestamp`` RFC 3339;
- ``{"channel": "heartbeat"}`` once a second while subscribed and nothing else was sent.

Error texts: "Currency pair not supported" is Kraken's; the others, for malformed requests
Kraken's documentation does not show an answer to, are the mock's choice (``MOCK_*``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from mocks.feed.protocol import echoed
from mocks.fx import FxQuote

CHANNEL = "ticker"
API_VERSION = "v2"
VERSION = "2.0.10"  # what the status message reports; the mock's, Kraken's form
PAIR_NOT_SUPPORTED = "Currency pair not supported"
MOCK_NOT_JSON = "Malformed request: not a JSON object"  # mock's choice
MOCK_UNKNOWN_METHOD = "Method not supported"  # mock's choice
MOCK_UNKNOWN_CHANNEL = "Channel not supported"  # mock's choice
MOCK_NO_SYMBOLS = "Symbols must be a non-empty list of strings"  # mock's choice
MOCK_TOO_LARGE = "Request too large"  # mock's choice
_EVENT_TRIGGERS = ("bbo", "trades")


@dataclass(frozen=True)
class TickerRequest:
    """Subscribe to (or unsubscribe from) the ticker of ``symbols``."""

    method: Literal["subscribe", "unsubscribe"]
    symbols: tuple[str, ...]
    snapshot: bool = True
    req_id: int | None = None


@dataclass(frozen=True)
class Ping:
    req_id: int | None = None


@dataclass(frozen=True)
class Invalid:
    """A request the venue can't act on, and the error it answers with."""

    error: str
    method: str | None = None
    req_id: int | None = None


ClientMessage = TickerRequest | Ping | Invalid


def parse_client_message(text: str, *, max_chars: int = 4096) -> ClientMessage:
    """What a client's text asks for; never raises on any input."""
    if len(text) > max_chars:
        return Invalid(MOCK_TOO_LARGE)
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return Invalid(MOCK_NOT_JSON)
    if not isinstance(message, dict):
        return Invalid(MOCK_NOT_JSON)
    method = message.get("method")
    req_id = message.get("req_id")
    req_id = req_id if isinstance(req_id, int) and not isinstance(req_id, bool) else None
    shown = echoed(method, None) if isinstance(method, str) else None
    if method == "ping":
        return Ping(req_id)
    if method not in ("subscribe", "unsubscribe"):
        return Invalid(MOCK_UNKNOWN_METHOD, shown, req_id)
    params = message.get("params")
    if not isinstance(params, dict) or params.get("channel") != CHANNEL:
        return Invalid(MOCK_UNKNOWN_CHANNEL, shown, req_id)
    symbols = params.get("symbol")
    if (
        not isinstance(symbols, list)
        or not symbols
        or not all(isinstance(symbol, str) for symbol in symbols)
    ):
        return Invalid(MOCK_NO_SYMBOLS, shown, req_id)
    trigger = params.get("event_trigger", "trades")
    if trigger not in _EVENT_TRIGGERS:
        return Invalid(f"event_trigger must be bbo or trades, got {trigger!r}", shown, req_id)
    snapshot = params.get("snapshot", True)
    return TickerRequest(
        "subscribe" if method == "subscribe" else "unsubscribe",
        # A symbol named twice is one subscription. Each is named in its answer, so escaped
        # where UTF-8 can't carry it (see echoed): no pair has such a name anyway.
        tuple(dict.fromkeys(echoed(symbol, None) for symbol in symbols)),
        snapshot=snapshot is not False,
        req_id=req_id,
    )


def rfc3339(at: datetime) -> str:
    """``at`` as Kraken writes times: UTC, microseconds, a Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status(connection_id: int) -> str:
    data = {
        "version": VERSION,
        "system": "online",
        "api_version": API_VERSION,
        "connection_id": connection_id,
    }
    return _compact({"channel": "status", "type": "update", "data": [data]})


def answer(
    request: TickerRequest,
    symbol: str,
    *,
    at: datetime,
    error: str | None = None,
) -> str:
    """The answer to ``request`` for one of its symbols: success, or ``error``."""
    message: dict[str, Any] = {"method": request.method}
    if error is None:
        result: dict[str, Any] = {"channel": CHANNEL, "symbol": symbol}
        if request.method == "subscribe":
            result.update(snapshot=request.snapshot, event_trigger="bbo")
        message.update(result=result, success=True)
    else:
        message.update(error=f"{error} {symbol}", success=False, symbol=symbol)
    return _stamped(message, at, request.req_id)


def invalid(problem: Invalid, *, at: datetime) -> str:
    message: dict[str, Any] = {"error": problem.error, "success": False}
    if problem.method is not None:
        message["method"] = problem.method
    return _stamped(message, at, problem.req_id)


def pong(ping: Ping, *, at: datetime) -> str:
    return _stamped({"method": "pong"}, at, ping.req_id)


def ticker(kind: Literal["snapshot", "update"], quotes: Sequence[FxQuote], at: datetime) -> str:
    """``quotes`` as one ticker message (Kraken sends one symbol's at a time)."""
    stamp = rfc3339(at)
    data = [
        {
            "symbol": q.pair,
            "bid": q.bid,
            "bid_qty": q.bid_qty,
            "ask": q.ask,
            "ask_qty": q.ask_qty,
            "last": q.last,
            "volume": q.volume,
            "vwap": q.vwap,
            "low": q.low,
            "high": q.high,
            "change": q.change,
            "change_pct": q.change_pct,
            "timestamp": stamp,
        }
        for q in quotes
    ]
    return _compact({"channel": CHANNEL, "type": kind, "data": data})


HEARTBEAT = '{"channel":"heartbeat"}'


def _stamped(message: dict[str, Any], at: datetime, req_id: int | None) -> str:
    stamp = rfc3339(at)
    message.update(time_in=stamp, time_out=stamp)
    if req_id is not None:
        message["req_id"] = req_id
    return _compact(message)


def _compact(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
