"""The KIS realtime protocol, server side, without I/O (the websockets library's sans-I/O idea).

Everything here is a pure function of its arguments or a small state machine fed with
parsed messages, so the protocol is tested without a socket:

- ``parse_client_message``: a client's text → a typed ``Subscription`` request, a
  ``PingPongEcho``, or an ``Invalid`` carrying the error ack to answer with.
- ``ack``: the answer to a request, in KIS's shape ``{"header": {tr_id, tr_key, encrypt},
  "body": {rt_cd, msg_cd, msg1, output: {iv, key}}}``. ``output`` comes with successes only,
  as in the captures of real error acks.
- ``pingpong``: the server's heartbeat ``{"header": {"tr_id": "PINGPONG", "datetime": …}}``,
  which the client echoes back.
- ``frame``: a data frame ``0|tr_id|NNN|rec^rec…``: NNN the zero-padded record count and
  every field of every record joined by ``^``, so a reader splits the payload into
  count × columns fields.
- ``Subscriptions``: one session's registrations under KIS's rules (ALREADY IN SUBSCRIBE,
  not subscribed, MAX SUBSCRIBE OVER beyond 41).

Codes. Sourced (BROKER_FACTS.md and third-party captures of real answers): OPSP0000,
OPSP0001, OPSP0002, OPSP0003 "UNSUBSCRIBE ERROR(not found!)", OPSP0008, OPSP0011
"invalid approval : NOT FOUND" and OPSP8996 "ALREADY IN USE appkey" (captured with rt_cd
"9"). The OPSP9xxx codes are the mock's own choices, in KIS's style, for malformed input the
public sources don't show an answer to; they are marked so nobody mistakes them for
captured broker behaviour.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from mocks.vocabulary import FeedMeaning

TRADES = "H0STCNT0"  # 실시간체결가 (KRX)
BOOK = "H0STASP0"  # 실시간호가 (KRX)
SERVED_TR_IDS = (TRADES, BOOK)
HEARTBEAT = "PINGPONG"
MAX_SUBSCRIPTIONS = 41  # per session, both tr_ids together
MAX_RECORDS_PER_FRAME = 999  # the count field has three digits

SUBSCRIBED = "OPSP0000"
UNSUBSCRIBED = "OPSP0001"
ALREADY_SUBSCRIBED = "OPSP0002"
NOT_SUBSCRIBED = "OPSP0003"
TOO_MANY = "OPSP0008"
INVALID_APPROVAL = "OPSP0011"
APPKEY_IN_USE = "OPSP8996"
# What the acks mean in the words scenarios use whichever the protocol (mocks.vocabulary).
ACK_MEANINGS: dict[str, FeedMeaning] = {
    SUBSCRIBED: "subscribed",
    UNSUBSCRIBED: "unsubscribed",
    TOO_MANY: "too-many",
}
NOT_JSON = "OPSP9001"  # mock's choice
INVALID_HEADER = "OPSP9002"  # mock's choice
INVALID_TR_ID = "OPSP9003"  # mock's choice
INVALID_TR_KEY = "OPSP9004"  # mock's choice
TOO_LARGE = "OPSP9005"  # mock's choice
REJECTED = "OPSP9009"  # mock's choice: a subscription refused by a fault rule

# msg_cd -> (rt_cd, msg1)
MESSAGES: dict[str, tuple[str, str]] = {
    SUBSCRIBED: ("0", "SUBSCRIBE SUCCESS"),
    UNSUBSCRIBED: ("0", "UNSUBSCRIBE SUCCESS"),
    ALREADY_SUBSCRIBED: ("1", "ALREADY IN SUBSCRIBE"),
    NOT_SUBSCRIBED: ("1", "UNSUBSCRIBE ERROR(not found!)"),
    TOO_MANY: ("1", "MAX SUBSCRIBE OVER"),
    INVALID_APPROVAL: ("1", "invalid approval : NOT FOUND"),
    APPKEY_IN_USE: ("9", "ALREADY IN USE appkey"),
    NOT_JSON: ("1", "JSON PARSING ERROR"),
    INVALID_HEADER: ("1", "INVALID HEADER"),
    INVALID_TR_ID: ("1", "INVALID tr_id"),
    INVALID_TR_KEY: ("1", "INVALID tr_key"),
    TOO_LARGE: ("1", "MESSAGE TOO LARGE"),
    REJECTED: ("1", "SUBSCRIBE REJECTED"),
}

_CODE = re.compile(r"[0-9]{6}")
# What KIS's approval keys look like (and so the mock broker's): a UUID.
UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_EXCERPT = 80  # characters of a bad message quoted back in msg1


@dataclass(frozen=True)
class Subscription:
    """A subscribe (tr_type "1") or unsubscribe ("2") request for one tr_id and code."""

    approval_key: str
    custtype: str
    action: Literal["subscribe", "unsubscribe"]
    tr_id: str
    tr_key: str

    def as_message(self) -> dict[str, Any]:
        """The request in its documented shape (what the journal keeps, once redacted)."""
        tr_type = "1" if self.action == "subscribe" else "2"
        return {
            "header": {
                "approval_key": self.approval_key,
                "custtype": self.custtype,
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": self.tr_id, "tr_key": self.tr_key}},
        }


@dataclass(frozen=True)
class PingPongEcho:
    """The client sending a PINGPONG back; ``datetime`` tells which one."""

    datetime: str


@dataclass(frozen=True)
class Invalid:
    """A message the server can't act on, and the error ack it answers with."""

    code: str
    detail: str
    tr_id: str = ""
    tr_key: str = ""


ClientMessage = Subscription | PingPongEcho | Invalid


def parse_client_message(text: str, *, max_chars: int = 4096) -> ClientMessage:
    """What a client's text message asks for; never raises on any input."""
    if len(text) > max_chars:
        return Invalid(TOO_LARGE, f"{len(text)} characters; at most {max_chars}")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as exc:  # says where, never what: no secret echoed
        return Invalid(NOT_JSON, f"not JSON: {exc}")
    if not isinstance(message, dict):
        return Invalid(NOT_JSON, "send a JSON object with header and body")
    header = message.get("header")
    if not isinstance(header, dict):
        return Invalid(NOT_JSON, 'no "header" object')
    if header.get("tr_id") == HEARTBEAT:
        stamp = header.get("datetime")
        return PingPongEcho(stamp if isinstance(stamp, str) else "")
    body = message.get("body")
    request = body.get("input") if isinstance(body, dict) else None
    if not isinstance(request, dict):
        return Invalid(NOT_JSON, 'no "body": {"input": {...}} object')
    tr_id, tr_key = request.get("tr_id"), request.get("tr_key")
    echo_id = tr_id if isinstance(tr_id, str) else ""
    echo_key = tr_key if isinstance(tr_key, str) else ""

    def invalid(code: str, detail: str) -> Invalid:
        return Invalid(code, detail, echoed(echo_id), echoed(echo_key))

    approval_key = header.get("approval_key")
    if not isinstance(approval_key, str) or not approval_key:
        return invalid(INVALID_APPROVAL, "")
    custtype = header.get("custtype")
    if custtype not in ("P", "B"):
        return invalid(INVALID_HEADER, f"custtype must be P or B, got {_shown(custtype)}")
    tr_type = header.get("tr_type")
    if tr_type not in ("1", "2"):
        return invalid(
            INVALID_HEADER,
            f"tr_type must be 1 (subscribe) or 2 (unsubscribe), got {_shown(tr_type)}",
        )
    content_type = header.get("content-type")
    if content_type != "utf-8":
        return invalid(INVALID_HEADER, f"content-type must be utf-8, got {_shown(content_type)}")
    if tr_id not in SERVED_TR_IDS:
        served = ", ".join(SERVED_TR_IDS)
        return invalid(INVALID_TR_ID, f"{_shown(tr_id)}; this feed serves {served}")
    if not isinstance(tr_key, str) or not _CODE.fullmatch(tr_key):
        return invalid(INVALID_TR_KEY, f"{_shown(tr_key)} is not a six-digit stock code")
    action: Literal["subscribe", "unsubscribe"] = "subscribe" if tr_type == "1" else "unsubscribe"
    return Subscription(approval_key, custtype, action, echo_id, tr_key)


def _shown(value: object) -> str:
    return repr(value)[:_EXCERPT] if value is not None else "nothing"


def echoed(text: str, limit: int | None = _EXCERPT) -> str:
    """Part of a client's request, for an answer that names it (every feed protocol's):
    cut to ``limit`` characters (None: whole). JSON's "\\ud800" escape decodes to a lone
    surrogate, which UTF-8 can't carry: it is sent escaped, or the answer could not be sent
    at all."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Cipher:
    """The AES-256 key and IV an ack's output carries (KIS encrypts fill notices with them;
    the stock feeds served here are plain, encrypt "N")."""

    key: str  # 32 characters
    iv: str  # 16 characters


def ack(
    code: str,
    tr_id: str,
    tr_key: str,
    *,
    cipher: Cipher,
    detail: str = "",
    message: str | None = None,
) -> str:
    """The JSON answer to a request. ``detail`` is appended to msg1 in parentheses, the
    way the broker's REST errors append theirs; ``message`` replaces msg1 outright."""
    rt_cd, msg1 = MESSAGES.get(code, ("1", code))
    if message is not None:
        msg1 = message
    elif detail:
        msg1 = f"{msg1}({detail})"
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": code, "msg1": msg1}
    if rt_cd == "0":
        body["output"] = {"iv": cipher.iv, "key": cipher.key}
    return _compact({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})


def pingpong(at: datetime) -> str:
    return _compact({"header": {"tr_id": HEARTBEAT, "datetime": pingpong_stamp(at)}})


def pingpong_stamp(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M%S")


def frame(tr_id: str, records: Sequence[Sequence[str]]) -> str:
    """``records`` (each a row of its tr_id's columns) as one plain data frame."""
    if not 1 <= len(records) <= MAX_RECORDS_PER_FRAME:
        raise ValueError(f"a frame holds 1 to {MAX_RECORDS_PER_FRAME} records, not {len(records)}")
    payload = "^".join(value for record in records for value in record)
    return f"0|{tr_id}|{len(records):03d}|{payload}"


def _compact(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Subscriptions:
    """One session's registrations, under KIS's rules. Returns the ack code for a request."""

    limit: int = MAX_SUBSCRIPTIONS
    _active: dict[tuple[str, str], None] = field(default_factory=dict)  # ordered set

    def apply(self, request: Subscription) -> str:
        key = (request.tr_id, request.tr_key)
        if request.action == "unsubscribe":
            if key not in self._active:
                return NOT_SUBSCRIBED
            del self._active[key]
            return UNSUBSCRIBED
        if key in self._active:
            return ALREADY_SUBSCRIBED
        if len(self._active) >= self.limit:
            return TOO_MANY
        self._active[key] = None
        return SUBSCRIBED

    def __len__(self) -> int:
        return len(self._active)

    def active(self) -> list[tuple[str, str]]:
        """(tr_id, tr_key) pairs in the order they were subscribed."""
        return list(self._active)
