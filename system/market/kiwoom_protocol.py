"""Kiwoom's realtime protocol, client side, without I/O: the ``KIWOOM`` dialect.

Kiwoom REST API's WebSocket (``wss://api.kiwoom.com:10000/api/dostk/websocket``) speaks
JSON text keyed by ``trnm`` both ways (``BROKER_FACTS.md``, "Kiwoom REST API" → WebSocket;
the official SDK's ``kiwoom/core/ws_client.py``):

- ``{"trnm": "LOGIN", "token": <access token>}`` first → ``{"trnm": "LOGIN",
  "return_code": 0, …}``; a token that is not live gets a token code (8005) and the server
  closes the connection.
- ``{"trnm": "REG" | "REMOVE", "grp_no": "1", "refresh": "1", "data": [{"item":
  ["005930"], "type": ["0B"]}]}`` → ``{"trnm": "REG", "return_code": 0, "return_msg": ""}``.
  The answer does not name what it answers, so this client registers one (type, item) per
  message and pairs answers with requests in order; the server answers a connection's
  messages in the order they came.
- ``{"trnm": "REAL", "data": [{"type": "0B", "item": "005930", "values": {FID: text}}]}``:
  trades, FID 20 time (HHMMSS), 10 price signed against the previous close ("+71900"), 11
  change, 12 rate, 15 this trade's volume (+ buy-initiated, - sell-initiated), 13 the day's
  volume.
- ``{"trnm": "PING", …}``: the heartbeat, echoed unchanged.

This client reads trades only (``books`` None): order books (0D) are a type the mock does
not serve yet.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from system.broker.kiwoom.wire import TOKEN_REFUSED
from system.market.dialect import Answer, Data, Event, Heartbeat, Registration
from system.market.errors import InvalidValue, MalformedMessage, UnknownTrId
from system.market.records import STOCK_CODE, TIME_OF_DAY, Trade

LOGIN = "LOGIN"
PING = "PING"
REG = "REG"
REMOVE = "REMOVE"
REAL = "REAL"
TRADES = "0B"  # 주식체결
OK = 0

PROTOCOL = "Kiwoom's realtime protocol"
# ASCII digits and \Z: \d would take full-width digits, $ a trailing newline.
_SIGNED = re.compile(r"[+-]?[0-9]{1,15}\Z")
_RATE = re.compile(r"[+-]?[0-9]{1,6}(\.[0-9]{1,4})?\Z")
_RETURN_CODE = re.compile(r"-?[0-9]{1,9}\Z")  # a return code sent as text ("0", "-1")


def login_message(token: str) -> str:
    """The LOGIN message. It carries the access token: never log it."""
    return _compact({"trnm": LOGIN, "token": token})


def registration_message(registration: Registration, *, subscribe: bool) -> str:
    """REG (or REMOVE) of one (type, item), in group 1, keeping the group's others."""
    kind, item = registration
    return _compact(
        {
            "trnm": REG if subscribe else REMOVE,
            "grp_no": "1",
            "refresh": "1",
            "data": [{"item": [item], "type": [kind]}],
        }
    )


class KiwoomSession:
    """One Kiwoom connection's ``DialectSession``: LOGIN on opening, and the registrations
    sent and not answered yet, oldest first, per trnm."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._pending: dict[str, deque[Registration]] = {REG: deque(), REMOVE: deque()}

    def opening(self) -> list[str]:
        return [login_message(self._token)]

    def registration(self, registration: Registration, *, subscribe: bool) -> str:
        self._pending[REG if subscribe else REMOVE].append(registration)
        return registration_message(registration, subscribe=subscribe)

    def parse(self, text: str, *, now: float) -> Event:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested past the reader's limit
            raise _malformed("not valid JSON (truncated?)", text) from None
        if not isinstance(message, dict) or not isinstance(message.get("trnm"), str):
            raise _malformed('not a JSON object with a "trnm" string', text)
        trnm = message["trnm"]
        if trnm == PING:
            return Heartbeat(text)
        if trnm == REAL:
            return _real(message, text)
        if trnm in (LOGIN, REG, REMOVE):
            return self._answer(trnm, message, text)
        raise UnknownTrId(f"trnm {trnm!r} is none this client reads", text=text, protocol=PROTOCOL)

    def _answer(self, trnm: str, message: dict[str, Any], text: str) -> Answer:
        code = message.get("return_code")
        # Not str.isdigit(), which passes "²" (and lstrip("-") passes "--5"): int() refuses both.
        if isinstance(code, str) and _RETURN_CODE.match(code):
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool):
            raise _malformed(f'the {trnm} answer has no "return_code" number', text)
        why = f"{code} {message.get('return_msg') or ''}".strip()
        if trnm == LOGIN:
            if code == OK:
                return Answer("accepted")
            return Answer("credential-refused", why=f"LOGIN refused: {why}", fatal=True)
        pending = self._pending[trnm]
        registration = pending.popleft() if pending else None
        if trnm == REMOVE:
            return Answer("removed", registration)
        if code == OK:
            return Answer("accepted", registration)
        if str(code) in TOKEN_REFUSED:  # the token, not the registration, is refused
            return Answer("credential-refused", registration, why)
        return Answer("refused", registration, why)


def _real(message: dict[str, Any], text: str) -> Data:
    entries = message.get("data")
    if not isinstance(entries, list) or not entries:
        raise _malformed('a REAL message without a "data" list of entries', text)
    trades = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise _malformed("a REAL entry that is not an object", text)
        kind = entry.get("type")
        if kind != TRADES:
            raise UnknownTrId(
                f"REAL type {kind!r} is none this client reads ({TRADES})",
                text=text,
                protocol=PROTOCOL,
            )
        # Every entry is read before any is used: a message counts whole or not at all.
        trades.append(_trade(entry, text))
    return Data(count=len(trades), trades=tuple(trades))


def _trade(entry: dict[str, Any], text: str) -> Trade:
    item, values = entry.get("item"), entry.get("values")
    if not isinstance(item, str) or not STOCK_CODE.match(item):
        raise _invalid(f"0B item {item!r} is not a 6-character stock code", text)
    if not isinstance(values, dict):
        raise _malformed('a 0B entry without a "values" object', text)

    def value(fid: str, pattern: re.Pattern[str], what: str) -> str:
        found = values.get(fid)
        if not isinstance(found, str) or not pattern.match(found.strip()):
            raise _invalid(f"0B FID {fid} {found!r} is not {what}", text)
        return found.strip()

    price = abs(int(value("10", _SIGNED, "a signed price")))
    if price < 1:
        raise _invalid("0B FID 10 is a price of 0", text)
    rate = float(value("12", _RATE, "a signed rate"))
    if not math.isfinite(rate):
        raise _invalid("0B FID 12 is not a finite rate", text)
    return Trade(
        code=item,
        time=value("20", TIME_OF_DAY, "a time of day as HHMMSS"),
        price=price,
        change=int(value("11", _SIGNED, "a signed change")),
        change_rate=rate,
        # The sign says who initiated the trade (+ a buyer, - a seller), not its size.
        volume=abs(int(value("15", _SIGNED, "a signed volume"))),
        accumulated_volume=abs(int(value("13", _SIGNED, "a volume"))),
    )


def _malformed(problem: str, text: str) -> MalformedMessage:
    return MalformedMessage(problem, text=text, protocol=PROTOCOL)


def _invalid(problem: str, text: str) -> InvalidValue:
    return InvalidValue(problem, text=text, protocol=PROTOCOL)


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class KiwoomDialect:
    """Kiwoom's realtime protocol as a ``Dialect``."""

    name: str = "Kiwoom"
    trades: str = TRADES
    books: str | None = None
    credential: str = "access token"

    def session(self, credential: str, *, custtype: str) -> KiwoomSession:
        # Kiwoom's messages carry no customer type; the parameter is KIS's.
        return KiwoomSession(credential)


KIWOOM = KiwoomDialect()
