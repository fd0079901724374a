"""The KIS realtime protocol without I/O: the messages a client sends, the events a server's
messages mean.

Everything here is a pure function of its arguments (the websockets library's sans-I/O
idea), so the whole protocol is tested without a socket. The server sends two kinds of
text message:

- JSON control messages: subscription acks ``{"header": {tr_id, tr_key, encrypt},
  "body": {rt_cd, msg_cd, msg1, output}}`` and the heartbeat ``{"header": {"tr_id":
  "PINGPONG", "datetime": …}}``, which the client must send back verbatim.
- Data frames ``flag|tr_id|count|data``: ``flag`` 0 plain or 1 encrypted, ``count`` records
  of the tr_id's columns, all fields of all records joined by ``^``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from system.market.columns import BOOKS, ENCRYPTED_TR_IDS, RECORD_WIDTHS, TRADES
from system.market.dialect import Answer, Data, Event, Heartbeat, Registration
from system.market.errors import FieldCountMismatch, MalformedMessage, UnknownTrId
from system.market.records import order_book, trade

HEARTBEAT = "PINGPONG"

SUBSCRIBED = "OPSP0000"
UNSUBSCRIBED = "OPSP0001"
ALREADY_SUBSCRIBED = "OPSP0002"
NOT_SUBSCRIBED = "OPSP0003"
TOO_MANY_SUBSCRIPTIONS = "OPSP0008"
APPKEY_IN_USE = "OPSP8996"

TrType = Literal["1", "2"]
SUBSCRIBE: TrType = "1"
UNSUBSCRIBE: TrType = "2"

# KIS pads the count to three digits; a frame claims at least one record.
_COUNT = re.compile(r"[0-9]{1,3}\Z")  # ASCII digits only, no trailing newline


@dataclass(frozen=True)
class Ack:
    """The server's answer to a subscribe or unsubscribe message."""

    tr_id: str
    tr_key: str
    rt_cd: str
    msg_cd: str
    msg1: str

    @property
    def ok(self) -> bool:
        return self.rt_cd == "0"


@dataclass(frozen=True)
class PingPong:
    """The server's heartbeat; ``raw`` is exactly what must be sent back."""

    raw: str
    datetime: str


@dataclass(frozen=True)
class DataFrame:
    """``count`` realtime records of ``tr_id``, each a tuple of its column values.

    An encrypted frame's records cannot be read without the ack's AES key: ``records`` is
    empty and ``payload`` holds the ciphertext.
    """

    encrypted: bool
    tr_id: str
    count: int
    records: tuple[tuple[str, ...], ...]
    payload: str = ""


ServerMessage = Ack | PingPong | DataFrame


def subscribe_message(
    approval_key: str, tr_id: str, tr_key: str, *, tr_type: TrType = SUBSCRIBE, custtype: str = "P"
) -> str:
    """The JSON text that registers (``tr_type`` "1") or removes ("2") ``tr_id`` for
    ``tr_key`` (a stock code). It carries the approval key: never log it."""
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": custtype,
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        },
        separators=(",", ":"),
    )


def parse_message(text: str) -> ServerMessage:
    """The event ``text`` (one server message) means; a ``FeedProtocolError`` if none.

    Data frames are checked for shape only (``count`` × the tr_id's columns fields); their
    values are read by ``system.market.records``.
    """
    if text[:1] in ("0", "1"):
        return _frame(text)
    if text.lstrip()[:1] == "{":
        return _control(text)
    raise MalformedMessage(
        "neither a JSON control message nor a data frame (which starts with 0| or 1|)",
        text=text,
    )


def _control(text: str) -> Ack | PingPong:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested past the reader's limit
        raise MalformedMessage("not valid JSON (truncated?)", text=text) from None
    header = message.get("header") if isinstance(message, dict) else None
    if not isinstance(header, dict):
        raise MalformedMessage('a control message without a "header" object', text=text)
    tr_id = header.get("tr_id")
    if not isinstance(tr_id, str):
        raise MalformedMessage('the header has no "tr_id" string', text=text)
    if tr_id == HEARTBEAT:
        stamp = header.get("datetime", "")
        return PingPong(raw=text, datetime=stamp if isinstance(stamp, str) else "")
    body = message.get("body")
    if not isinstance(body, dict):
        raise MalformedMessage(f'the {tr_id} ack has no "body" object', text=text)
    return Ack(
        tr_id=tr_id,
        tr_key=_text(header, "tr_key", text, required=False),
        rt_cd=_text(body, "rt_cd", text),
        msg_cd=_text(body, "msg_cd", text),
        msg1=_text(body, "msg1", text, required=False),
    )


def _text(section: Mapping[str, object], key: str, text: str, *, required: bool = True) -> str:
    value = section.get(key)
    if isinstance(value, str):
        return value
    if value is None and not required:
        return ""
    raise MalformedMessage(f'the ack\'s "{key}" is missing or not a string', text=text)


def _frame(text: str) -> DataFrame:
    parts = text.split("|", 3)
    if len(parts) != 4:
        raise MalformedMessage(
            f"a data frame needs 4 parts flag|tr_id|count|data, got {len(parts)}", text=text
        )
    flag, tr_id, count_text, payload = parts
    if flag not in ("0", "1"):
        raise MalformedMessage(f"the encryption flag must be 0 or 1, got {flag!r}", text=text)
    count = int(count_text) if _COUNT.match(count_text) else 0
    if count == 0:
        raise MalformedMessage(
            f"the record count must be 1 to 999 (three digits), got {count_text!r}", text=text
        )
    if flag == "1":
        if tr_id not in ENCRYPTED_TR_IDS and tr_id not in RECORD_WIDTHS:
            raise UnknownTrId(f"encrypted frame of unknown tr_id {tr_id!r}", text=text)
        return DataFrame(encrypted=True, tr_id=tr_id, count=count, records=(), payload=payload)
    widths = RECORD_WIDTHS.get(tr_id)
    if widths is None:
        known = ", ".join(sorted(RECORD_WIDTHS))
        raise UnknownTrId(f"tr_id {tr_id!r} is none this client reads ({known})", text=text)
    fields = payload.split("^")
    width = next((w for w in widths if w * count == len(fields)), None)
    if width is None:
        expected = " or ".join(str(w * count) for w in widths)
        raise FieldCountMismatch(
            f"{count} {tr_id} record(s) need {expected} fields, the frame holds {len(fields)}",
            text=text,
        )
    records = tuple(tuple(fields[i : i + width]) for i in range(0, len(fields), width))
    return DataFrame(encrypted=False, tr_id=tr_id, count=count, records=records)


class KisSession:
    """One KIS connection's ``DialectSession``: nothing to send on opening (the approval key
    rides in every registration), and each answer names what it answers."""

    def __init__(self, approval_key: str, custtype: str) -> None:
        self._key = approval_key
        self._custtype = custtype

    def opening(self) -> list[str]:
        return []

    def registration(self, registration: Registration, *, subscribe: bool) -> str:
        tr_id, code = registration
        tr_type = SUBSCRIBE if subscribe else UNSUBSCRIBE
        return subscribe_message(self._key, tr_id, code, tr_type=tr_type, custtype=self._custtype)

    def parse(self, text: str, *, now: float) -> Event:
        message = parse_message(text)
        if isinstance(message, PingPong):
            return Heartbeat(message.raw)
        if isinstance(message, Ack):
            return _answer(message)
        if message.encrypted:
            return Data(count=message.count, encrypted=True)
        # Every record is read before any is used: a frame counts whole or not at all.
        if message.tr_id == TRADES:
            return Data(message.count, trades=tuple(trade(r) for r in message.records))
        return Data(message.count, books=tuple(order_book(r, at=now) for r in message.records))


def _answer(ack: Ack) -> Answer:
    registration = (ack.tr_id, ack.tr_key)
    why = f"{ack.msg_cd} {ack.msg1}".strip()
    if ack.msg_cd == APPKEY_IN_USE:
        return Answer(
            "session-refused",
            registration,
            f"{why} (KIS allows one realtime session per appkey; another process is using it)",
            fatal=True,
        )
    if ack.msg_cd in (UNSUBSCRIBED, NOT_SUBSCRIBED):
        return Answer("removed", registration)
    if ack.ok or ack.msg_cd in (SUBSCRIBED, ALREADY_SUBSCRIBED):
        return Answer("accepted", registration)
    if ack.msg_cd == TOO_MANY_SUBSCRIPTIONS:
        return Answer("refused", registration, why)
    # Not the documented refusal of one registration: most likely the approval key itself
    # (expired, or another appkey's), so the next connection gets a new one.
    return Answer("credential-refused", registration, why)


@dataclass(frozen=True)
class KisDialect:
    """KIS's realtime protocol as a ``Dialect``."""

    name: str = "KIS"
    trades: str = TRADES
    books: str | None = BOOKS
    credential: str = "approval key"

    def session(self, credential: str, *, custtype: str) -> KisSession:
        return KisSession(credential, custtype)


KIS = KisDialect()
