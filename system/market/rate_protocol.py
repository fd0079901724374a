"""The FX venue's rate stream without I/O: Kraken's WebSocket API v2 ``ticker`` channel.

Pure functions of their arguments (as ``system.market.protocol`` is for KIS), so the
protocol is tested without a socket. Every message is JSON text:

- what the client sends: ``{"method": "subscribe", "params": {"channel": "ticker",
  "symbol": ["USD/KRW", …], "event_trigger": "bbo", "snapshot": true}}``
  (``subscribe_message``); ``event_trigger: bbo`` asks for an update whenever the best bid
  or ask changes, which is what a triangle is priced from;
- what the server sends (``parse_message``): ``ticker`` data (``{"channel": "ticker",
  "type": "snapshot" | "update", "data": [{"symbol", "bid", "ask", …}]}``), one answer per
  symbol of a request (``{"method": "subscribe", "success": true | false, "result":
  {"symbol": …}}`` or ``"symbol"`` and ``"error"``), ``{"channel": "heartbeat"}``, the
  ``status`` channel and ``{"method": "pong"}``.

A message that does not read as one of those is a ``FeedProtocolError`` naming what is
wrong; a ticker message is read whole or not at all (one bad quote drops the message), as
a KIS frame is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from system.market.errors import InvalidValue, MalformedMessage
from system.market.model import RateQuote

CHANNEL = "ticker"
PROTOCOL = "Kraken's WebSocket v2 ticker protocol"

Method = Literal["subscribe", "unsubscribe"]


@dataclass(frozen=True)
class Ticker:
    """Quotes of one ticker message, stamped with the loop time it arrived."""

    kind: Literal["snapshot", "update"]
    quotes: tuple[RateQuote, ...]


@dataclass(frozen=True)
class Answer:
    """The server's answer to a request, for one ``symbol``: ``ok``, or ``error`` says why
    not ("Currency pair not supported XXX/KRW")."""

    method: str
    symbol: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class Heartbeat:
    """Sent once a second while nothing else is: the connection is alive."""


@dataclass(frozen=True)
class Status:
    """The venue's state (``system``: "online", "maintenance", …), sent on connect."""

    system: str


@dataclass(frozen=True)
class Pong:
    """The answer to a client's ping."""


ServerMessage = Ticker | Answer | Heartbeat | Status | Pong


def subscribe_message(pairs: Iterable[str], *, method: Method = "subscribe") -> str:
    """The request that subscribes (or unsubscribes) the ticker of ``pairs``."""
    params: dict[str, object] = {"channel": CHANNEL, "symbol": list(pairs)}
    if method == "subscribe":
        params.update(event_trigger="bbo", snapshot=True)
    return json.dumps({"method": method, "params": params}, separators=(",", ":"))


def parse_message(text: str, *, at: float) -> ServerMessage:
    """The event ``text`` (one server message) means, its quotes stamped ``at`` (loop time);
    a ``FeedProtocolError`` if it means none."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise _malformed("not valid JSON (truncated?)", text) from None
    if not isinstance(message, dict):
        raise _malformed("not a JSON object", text)
    channel = message.get("channel")
    if channel is not None:
        return _channel(channel, message, text, at)
    method = message.get("method")
    if method == "pong":
        return Pong()
    if not isinstance(method, str) or not isinstance(message.get("success"), bool):
        raise _malformed(
            'neither a channel message nor an answer with "method" and "success"', text
        )
    if message["success"]:
        result = message.get("result")
        symbol = result.get("symbol") if isinstance(result, dict) else None
        return Answer(method, symbol if isinstance(symbol, str) else "", ok=True)
    symbol, error = message.get("symbol"), message.get("error")
    return Answer(
        method,
        symbol if isinstance(symbol, str) else "",
        ok=False,
        error=error if isinstance(error, str) else "no reason given",
    )


def _channel(channel: object, message: Mapping[str, object], text: str, at: float) -> ServerMessage:
    if channel == "heartbeat":
        return Heartbeat()
    data = message.get("data")
    if channel == "status":
        first = data[0] if isinstance(data, list) and data else None
        system = first.get("system") if isinstance(first, dict) else None
        return Status(system if isinstance(system, str) else "")
    if channel != CHANNEL:
        raise _malformed(f"channel {channel!r} is none this client subscribes to", text)
    kind = message.get("type")
    if kind not in ("snapshot", "update"):
        raise _malformed(f"a ticker message's type must be snapshot or update, got {kind!r}", text)
    if not isinstance(data, list) or not data:
        raise _malformed('a ticker message needs a non-empty "data" list', text)
    return Ticker(kind, tuple(_quote(item, text, at) for item in data))


def _quote(item: object, text: str, at: float) -> RateQuote:
    if not isinstance(item, dict):
        raise _malformed("a ticker's data holds something that is not an object", text)
    symbol = item.get("symbol")
    if not isinstance(symbol, str):
        raise _malformed('a ticker without a "symbol" string', text)
    bid, ask = _price(item, "bid", symbol, text), _price(item, "ask", symbol, text)
    try:
        return RateQuote(symbol, bid, ask, at)
    except ValueError as error:
        raise InvalidValue(str(error), text=text, protocol=PROTOCOL) from None


def _price(item: Mapping[str, object], key: str, symbol: str, text: str) -> float:
    value = item.get(key)
    # Kraken sends prices as JSON numbers; a string or a boolean is not one.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidValue(
            f"{symbol} {key} {value!r} is not a number", text=text, protocol=PROTOCOL
        )
    try:
        return float(value)
    except OverflowError:  # a JSON integer may have hundreds of digits; a float can't hold it
        raise InvalidValue(
            f"{symbol} {key} is a number beyond any price", text=text, protocol=PROTOCOL
        ) from None


def _malformed(problem: str, text: str) -> MalformedMessage:
    return MalformedMessage(problem, text=text, protocol=PROTOCOL)
