"""The /ws message protocol: what clients may send, what the gateway answers. No I/O here.

Client → gateway (JSON text messages):

- ``{"type":"subscribe","ticker":"005930"}`` — prices of one stock (6 digits).
- ``{"type":"subscribe","topic":"signals"}`` — a named topic.
- ``{"type":"unsubscribe","ticker":"005930"}`` / ``{"type":"unsubscribe","topic":"signals"}``.
- ``{"type":"pong","ts":…}`` — the answer to a ping (``ts`` echoed, optional).
- ``{"type":"ping"}`` — the gateway answers ``{"type":"pong","ts":…}``.

Gateway → client: ``connected``, ``subscribed``, ``unsubscribed``, ``price_update``,
``feed_status``, ``signal``, ``ping``, ``pong`` and ``error`` — built by the functions below.
An ``error`` is ``{"type":"error","code":…,"message":…}``; the connection stays open.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from system.market.model import FeedStatus, PriceUpdate

# Topics a client may join besides tickers.
SIGNALS = "signals"
NAMED_TOPICS = frozenset({SIGNALS})

ErrorCode = Literal[
    "malformed_json",
    "unknown_type",
    "missing_field",
    "message_too_large",
    "invalid_ticker",
    "unknown_topic",
    "feed_subscribe_failed",
]

Message = Mapping[str, Any]


def _shown(value: object) -> str:
    """A client's value as JSON, for an error message: as sent where UTF-8 can carry it
    (Korean stays Korean), escaped where it can't. JSON's "\\ud800" escape decodes to a
    lone surrogate, and an error holding one could not be sent back in a text frame."""
    shown = json.dumps(value, ensure_ascii=False)
    try:
        shown.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return shown


class ProtocolError(ValueError):
    """A client message the gateway cannot act on; ``code`` goes into the error message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidTicker(ProtocolError):
    """Not a 6-digit ticker code."""

    def __init__(self, value: object) -> None:
        hint = ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            hint = " (send it as a string: a number loses the leading zeros)"
        super().__init__(
            "invalid_ticker",
            f"{_shown(value)} is not a ticker code: expected a "
            f'string of 6 digits such as "005930"{hint}',
        )
        self.value = value


def check_ticker(value: object) -> str:
    """``value`` if it is a 6-digit KRX ticker code, else ``InvalidTicker``.

    Stricter than a ``^\\d{6}$`` match, which also passes "005930\\n" and non-ASCII digits:
    a ticker here becomes a topic name and a feed subscription, so it must be exact.
    """
    if isinstance(value, str) and len(value) == 6 and value.isascii() and value.isdigit():
        return value
    raise InvalidTicker(value)


def is_ticker(topic: str) -> bool:
    """Whether a topic that passed ``check_topic`` is a ticker (not a named topic)."""
    return topic not in NAMED_TOPICS


def check_topic(value: object) -> str:
    """A ticker code or one of ``NAMED_TOPICS``, else ``ProtocolError``."""
    if isinstance(value, str) and value in NAMED_TOPICS:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return check_ticker(value)
    named = ", ".join(f'"{name}"' for name in sorted(NAMED_TOPICS))
    raise ProtocolError(
        "unknown_topic",
        f"unknown topic {_shown(value)}: the topics are {named}; "
        'for prices send {"type":"subscribe","ticker":"005930"}',
    )


@dataclass(frozen=True)
class Subscribe:
    topic: str
    by_ticker: bool  # echoed back as "ticker" rather than "topic"


@dataclass(frozen=True)
class Unsubscribe:
    topic: str
    by_ticker: bool


@dataclass(frozen=True)
class Pong:
    ts: float | None


@dataclass(frozen=True)
class Ping:
    pass


ClientMessage = Subscribe | Unsubscribe | Pong | Ping

CLIENT_TYPES = ("subscribe", "unsubscribe", "pong", "ping")


def parse_client_message(text: str, max_bytes: int) -> ClientMessage:
    """One client message, or ``ProtocolError`` saying what is wrong and what to send."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise ProtocolError(
            "message_too_large",
            f"message of {size} bytes exceeds the limit of {max_bytes} bytes and was ignored; "
            "send one subscription per message",
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            "malformed_json",
            f"message is not valid JSON ({exc.msg} at character {exc.pos}); "
            'send an object such as {"type":"subscribe","ticker":"005930"}',
        ) from None
    except ValueError:
        # Valid JSON Python refuses to read: an integer of more than 4300 digits (possible
        # once max_message_bytes is raised past that).
        raise ProtocolError(
            "malformed_json",
            "message holds a number too long to read; "
            'send an object such as {"type":"subscribe","ticker":"005930"}',
        ) from None
    except RecursionError:
        raise ProtocolError(
            "malformed_json",
            'message is nested too deeply to read; send a flat object such as {"type":"ping"}',
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(
            "malformed_json",
            f"message is JSON but not an object (got {type(data).__name__}); "
            'send an object such as {"type":"subscribe","ticker":"005930"}',
        )
    kind = data.get("type")
    if kind is None:
        raise ProtocolError(
            "missing_field",
            f'message has no "type": it must be one of {", ".join(CLIENT_TYPES)}',
        )
    if kind in ("subscribe", "unsubscribe"):
        topic, by_ticker = _target(kind, data)
        return Subscribe(topic, by_ticker) if kind == "subscribe" else Unsubscribe(topic, by_ticker)
    if kind == "pong":
        ts = data.get("ts")
        if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
            return Pong(float(ts))
        return Pong(None)
    if kind == "ping":
        return Ping()
    raise ProtocolError(
        "unknown_type",
        f"unknown message type {_shown(kind)}: the gateway understands {', '.join(CLIENT_TYPES)}",
    )


def _target(kind: str, data: Mapping[str, Any]) -> tuple[str, bool]:
    if "ticker" in data:
        return check_ticker(data["ticker"]), True
    if "topic" in data:
        return check_topic(data["topic"]), False
    raise ProtocolError(
        "missing_field",
        f'{kind} needs "ticker" or "topic", e.g. {{"type":"{kind}","ticker":"005930"}} '
        f'or {{"type":"{kind}","topic":"signals"}}',
    )


def encode(message: Message) -> str:
    """Compact JSON; NaN and infinities are refused (browsers' JSON.parse rejects them)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# -- gateway → client ---------------------------------------------------------------------


def connected(client_id: str, fields: Message | None = None) -> dict[str, Any]:
    """The first message of every connection; ``fields`` are the gateway's (its heartbeat
    interval, say)."""
    return {"type": "connected", "client_id": client_id, **(fields or {})}


def error(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def subscribed(topic: str, by_ticker: bool) -> dict[str, Any]:
    return {"type": "subscribed", ("ticker" if by_ticker else "topic"): topic}


def unsubscribed(topic: str, by_ticker: bool) -> dict[str, Any]:
    return {"type": "unsubscribed", ("ticker" if by_ticker else "topic"): topic}


def ping(ts: float) -> dict[str, Any]:
    return {"type": "ping", "ts": ts}


def pong(ts: float) -> dict[str, Any]:
    return {"type": "pong", "ts": ts}


def price_update(update: PriceUpdate, *, stale: bool) -> dict[str, Any]:
    """``at`` is the loop time the system learned the price (seconds; virtual in tests)."""
    rate = update.change_rate if math.isfinite(update.change_rate) else None
    return {
        "type": "price_update",
        "ticker": update.code,
        "data": {
            "price": update.price,
            "change": update.change,
            "change_rate": rate,
            "volume": update.volume,
            "source": update.source,
            "stale": stale,
            "at": update.at,
        },
    }


def feed_status(status: FeedStatus) -> dict[str, Any]:
    """The feed's state for the page: ``stale`` is true whenever prices may lag (not live)."""
    return {
        "type": "feed_status",
        "state": status.state,
        "stale": status.state != "live",
        "since": status.since,
        "reconnects": status.reconnects,
        "detail": status.detail,
    }


def signal(kind: str, data: object) -> dict[str, Any]:
    return {"type": "signal", "kind": kind, "data": data}
