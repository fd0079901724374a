"""Kiwoom's realtime protocol, server side, without I/O (as ``protocol`` is for KIS's).

Kiwoom REST API's WebSocket (``wss://api.kiwoom.com:10000/api/dostk/websocket``) speaks
JSON text messages keyed by ``trnm``, both ways:

- ``{"trnm": "LOGIN", "token": <access token>}`` → ``{"trnm": "LOGIN", "return_code": 0,
  "return_msg": …}``; a token that isn't live gets 8005 and the server closes.
- ``{"trnm": "REG" | "REMOVE", "grp_no": "1", "refresh": "1", "data": [{"item":
  ["005930"], "type": ["0B"]}]}`` → ``{"trnm": "REG", "return_code": 0, "return_msg": ""}``.
  ``refresh`` "1" keeps the group's earlier registrations, "0" replaces them.
- ``{"trnm": "REAL", "data": [{"type": "0B", "name": "주식체결", "item": "005930", "values":
  {FID: value, …}}]}``: data, FID-keyed strings.
- ``{"trnm": "PING"}``: the server's heartbeat, which the client echoes unchanged.

Sources (Kiwoom-Securities/Kiwoom-REST-API, the official SDK and examples):

- ``kiwoom/core/ws_client.py``: the LOGIN packet and its ack, PING echoed as received,
  8005 among the codes its login retries on;
- ``examples/국내주식/실시간시세/subscribe_domestic_stock_trade_async.py``: the REG
  packet; refresh "1" = 기존 등록을 유지 (keep earlier registrations);
- ``kiwoom/core/fid.py``: the 0B FIDs and their names; ``kiwoom/realtime/decoders.py``:
  the REAL shape;
- BROKER_FACTS.md, "Kiwoom REST API" → WebSocket.

Return codes 8005, 1902 and 1517 and their messages are Kiwoom's REST codes
(``mocks.broker.kiwoom.codes``); the ``MOCK_*`` codes are the mock's own choices for
cases the public sources show no answer to.

0B values come from the feed's KIS trade record of the same step (``mocks.feed.records``),
so the two protocols show one market: prices signed against the previous close as Kiwoom
writes them (``mocks.broker.kiwoom.formats``), FID 15 signed + for a buy-initiated print
and - for a sell-initiated one.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mocks.broker.kiwoom import codes
from mocks.broker.kiwoom.formats import signed, signed_price, signed_rate
from mocks.feed.protocol import echoed
from mocks.feed.records import TRADE_COLUMNS
from mocks.vocabulary import FeedMeaning

LOGIN = "LOGIN"
PING = "PING"
REG = "REG"
REMOVE = "REMOVE"
REAL = "REAL"
TRADES = "0B"  # 주식체결
NAMES = {TRADES: "주식체결"}  # the types served, with the name a REAL entry carries

OK = 0
TOKEN_INVALID = codes.TOKEN_INVALID  # 8005 "Token이 유효하지 않습니다"
UNKNOWN_ITEM = 1902  # 종목 정보가 없습니다 (REST's code for an unknown stock code)
BAD_INPUT = 1517  # 입력 값 형식이 올바르지 않습니다 (REST's code for a malformed field)
MOCK_NOT_LOGGED_IN = 9001  # mock's choice: REG/REMOVE before a successful LOGIN
MOCK_TOO_MANY = 9002  # mock's choice: registrations over the session's limit
MOCK_REJECTED = 9009  # mock's choice: a registration refused by a fault rule
MOCK_MESSAGES = {
    MOCK_NOT_LOGGED_IN: "LOGIN 후에 이용할 수 있습니다",
    MOCK_TOO_MANY: "실시간 등록 가능 개수를 초과하였습니다. 최대={}",
    MOCK_REJECTED: "실시간 등록이 거부되었습니다",
}
LOGIN_OK = codes.OK_MESSAGE  # "정상적으로 처리되었습니다"; the LOGIN ack's text is unconfirmed

_BUY, _SELL = "1", "5"  # CCLD_DVSN of the KIS record: buy- and sell-initiated
_REGULAR_SESSION = "2"  # FID 290 장구분: 2 장중
_EXCERPT = 80


def message(code: int, *args: object) -> str:
    """The return_msg of ``code``, Kiwoom's own where it has one."""
    template = MOCK_MESSAGES.get(code)
    if template is None:
        return codes.message(code, *args)
    return template.format(*args) if "{}" in template else template


@dataclass(frozen=True)
class Login:
    token: str

    def as_message(self) -> dict[str, Any]:
        """The request as sent (the journal redacts the token)."""
        return {"trnm": LOGIN, "token": self.token}


@dataclass(frozen=True)
class Ping:
    """A PING from the client; ``text`` is what to echo, unchanged."""

    text: str


@dataclass(frozen=True)
class Registration:
    """A REG or REMOVE: every (type, item) of its data entries, in order, once each."""

    action: Literal["REG", "REMOVE"]
    grp_no: str
    refresh: Literal["0", "1"]
    pairs: tuple[tuple[str, str], ...]

    def as_message(self) -> dict[str, Any]:
        items = list(dict.fromkeys(item for _, item in self.pairs))
        types = list(dict.fromkeys(kind for kind, _ in self.pairs))
        return {
            "trnm": self.action,
            "grp_no": self.grp_no,
            "refresh": self.refresh,
            "data": [{"item": items, "type": types}],
        }


@dataclass(frozen=True)
class Invalid:
    """A message the server can't act on, and the error it answers with."""

    trnm: str
    code: int
    detail: str


ClientMessage = Login | Ping | Registration | Invalid


def parse_client_message(text: str, *, max_chars: int = 4096) -> ClientMessage:
    """What a client's text asks for; never raises on any input."""
    if len(text) > max_chars:
        return Invalid("", BAD_INPUT, message(BAD_INPUT, "message", f"over {max_chars} chars"))
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # says nothing of the text: it may hold the token
        return Invalid("", BAD_INPUT, message(BAD_INPUT, "message", "not JSON"))
    if not isinstance(parsed, dict):
        return Invalid("", BAD_INPUT, message(BAD_INPUT, "message", "not a JSON object"))
    trnm = parsed.get("trnm")
    if trnm == PING:
        return Ping(text)
    if trnm == LOGIN:
        token = parsed.get("token")
        return Login(token if isinstance(token, str) else "")
    shown = echoed(trnm, _EXCERPT) if isinstance(trnm, str) else ""
    if trnm not in (REG, REMOVE):
        return Invalid(shown, BAD_INPUT, message(BAD_INPUT, "trnm", f"{shown!r} not served"))

    def invalid(name: str, why: str) -> Invalid:
        return Invalid(shown, BAD_INPUT, message(BAD_INPUT, name, why))

    grp_no = parsed.get("grp_no")
    if not isinstance(grp_no, str) or not grp_no.isdigit() or len(grp_no) > 4:
        return invalid("grp_no", "a group number of 1 to 4 digits")
    refresh = parsed.get("refresh", "1")
    if refresh not in ("0", "1"):
        return invalid("refresh", "0 or 1")
    data = parsed.get("data")
    if not isinstance(data, list) or not data:
        return invalid("data", "a non-empty list")
    pairs: dict[tuple[str, str], None] = {}  # ordered set
    for entry in data:
        items = entry.get("item") if isinstance(entry, dict) else None
        types = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(items, list) or not isinstance(types, list):
            return invalid("data", "each entry's item and type are non-empty lists of strings")
        if not _strings(items) or not _strings(types):
            return invalid("data", "each entry's item and type are non-empty lists of strings")
        pairs.update(dict.fromkeys((kind, item) for kind in types for item in items))
    action: Literal["REG", "REMOVE"] = "REG" if trnm == REG else "REMOVE"
    return Registration(action, grp_no, "0" if refresh == "0" else "1", tuple(pairs))


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def check(request: Registration, listed: Collection[str]) -> tuple[int, str] | None:
    """The error a REG gets for a type the mock doesn't serve or an item not ``listed``;
    None if every pair can be registered. A REMOVE is never refused for these."""
    if request.action == REMOVE:
        return None
    for kind, item in request.pairs:
        if kind not in NAMES:
            served = ", ".join(NAMES)
            return BAD_INPUT, message(BAD_INPUT, "type", f"{kind[:_EXCERPT]!r}; served: {served}")
        if item not in listed:
            return UNKNOWN_ITEM, message(UNKNOWN_ITEM, echoed(item, _EXCERPT))
    return None


@dataclass
class Registrations:
    """One session's registrations, by group. A pair registered in several groups is sent
    once; ``limit`` counts distinct (type, item) pairs over all groups."""

    limit: int
    _groups: dict[str, dict[tuple[str, str], None]] = field(default_factory=dict)

    def apply(self, request: Registration) -> int:
        """Apply ``request`` whole or not at all; its return code."""
        group = self._groups.get(request.grp_no, {})
        if request.action == REMOVE:
            # Removing what isn't registered is no error: the result is the same.
            kept = {pair: None for pair in group if pair not in request.pairs}
        else:
            kept = {} if request.refresh == "0" else dict(group)
            kept.update(dict.fromkeys(request.pairs))
            others = {p for name, ps in self._groups.items() if name != request.grp_no for p in ps}
            if len(others | kept.keys()) > self.limit:
                return MOCK_TOO_MANY
        if kept:
            self._groups[request.grp_no] = kept
        else:
            self._groups.pop(request.grp_no, None)
        return OK

    def active(self) -> list[tuple[str, str]]:
        """(type, item) pairs, each once, groups in the order they were first registered."""
        return list(dict.fromkeys(pair for pairs in self._groups.values() for pair in pairs))

    def __len__(self) -> int:
        return len(self.active())


def meaning(trnm: str, code: int) -> FeedMeaning | None:
    """What an answer means in the words scenarios use whichever the protocol."""
    if code == MOCK_TOO_MANY:
        return "too-many"
    if code != OK:
        return None
    if trnm == REG:
        return "subscribed"
    return "unsubscribed" if trnm == REMOVE else None


def answer(trnm: str, code: int, text: str = "") -> str:
    return _compact({"trnm": trnm, "return_code": code, "return_msg": text})


def ping() -> str:
    return _compact({"trnm": PING})


def trade_values(record: Sequence[str], base_price: int) -> dict[str, str]:
    """The 0B values of one KIS H0STCNT0 record (``records.TRADE_COLUMNS`` order) of an
    instrument whose previous close is ``base_price``."""
    kis = dict(zip(TRADE_COLUMNS, record, strict=True))
    price = int(kis["STCK_PRPR"])
    change = int(kis["PRDY_VRSS"])
    volume = kis["CNTG_VOL"]
    side = kis["CCLD_DVSN"]  # the opening auction's print has no side, no sign
    traded = f"+{volume}" if side == _BUY else f"-{volume}" if side == _SELL else volume

    def quote(column: str) -> str:
        value = int(kis[column])
        return signed_price(value, base_price) if value else "0"  # "0": no such level

    return {
        "20": kis["STCK_CNTG_HOUR"],  # 체결시간 HHMMSS
        "10": signed_price(price, base_price),  # 현재가
        "11": signed(change),  # 전일대비
        "12": signed_rate(change / base_price * 100),  # 등락율
        "27": quote("ASKP1"),  # (최우선)매도호가
        "28": quote("BIDP1"),  # (최우선)매수호가
        "15": traded,  # 거래량: + 매수체결, - 매도체결
        "13": kis["ACML_VOL"],  # 누적거래량
        "16": quote("STCK_OPRC"),  # 시가
        "17": quote("STCK_HGPR"),  # 고가
        "18": quote("STCK_LWPR"),  # 저가
        "25": kis["PRDY_VRSS_SIGN"],  # 전일대비기호: Kiwoom's 1-5, the same as KIS's
        "228": kis["CTTR"],  # 체결강도
        "1030": kis["SELN_CNTG_SMTN"],  # 매도체결량
        "1031": kis["SHNU_CNTG_SMTN"],  # 매수체결량
        "1032": kis["SHNU_RATE"],  # 매수비율
        "1071": kis["SELN_CNTG_CSNU"],  # 매도체결건수
        "1072": kis["SHNU_CNTG_CSNU"],  # 매수체결건수
        "290": _REGULAR_SESSION,  # 장구분
    }


def real(kind: str, item: str, values: dict[str, str]) -> str:
    """One REAL message with one entry: ``item``'s ``kind`` values at one step."""
    entry = {"type": kind, "name": NAMES[kind], "item": item, "values": values}
    return _compact({"trnm": REAL, "data": [entry]})


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
