"""Each broker's requests and answers in Squall's own terms, for the journal.

A scenario that checks "no order was placed twice" or "the per-second budget was never
exceeded" should read the same whichever broker it runs against. So the broker profile that
knows its own routes and codes says, for every request it journals:

- its ``kind``: token, approval, revoke, hashkey, quote (any market data), order,
  order-inquiry (today's orders, to reconcile), balance, or other;
- the ``meaning`` of its answer's code, when it has one of the meanings scenarios ask
  about: budget-exceeded (KIS EGW00201, Kiwoom 1700), token-refused (an expired or invalid
  token: KIS EGW00123/EGW00121, Kiwoom's 8005 family), token-rate-limited (KIS EGW00133).

The broker's own path, tr_id/api-id and code stay in the entry beside them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

RequestKind = Literal[
    "token",
    "approval",
    "revoke",
    "hashkey",
    "quote",
    "order",
    "order-inquiry",
    "balance",
    "other",
]
Meaning = Literal["budget-exceeded", "token-refused", "token-rate-limited"]
MEANINGS: tuple[Meaning, ...] = get_args(Meaning)
# What a realtime feed's answer to a registration means, whichever the protocol: KIS's
# OPSP0000/OPSP0001/OPSP0008, Kiwoom's REG/REMOVE return codes.
FeedMeaning = Literal["subscribed", "unsubscribed", "too-many"]
FEED_MEANINGS: tuple[FeedMeaning, ...] = get_args(FeedMeaning)


@dataclass(frozen=True)
class Vocabulary:
    """One broker's routes and codes in neutral terms."""

    # (method, path glob) → kind for routes named by path; the first that matches wins.
    paths: tuple[tuple[str, str, RequestKind], ...]
    # tr_id/api-id → kind, for a broker whose routes share a path (Kiwoom).
    ids: Mapping[str, RequestKind]
    meanings: Mapping[str, Meaning]

    def kind(self, method: str, path: str, tr_id: str | None) -> RequestKind:
        if tr_id is not None and tr_id.lower() in self.ids:
            return self.ids[tr_id.lower()]
        for route_method, glob, kind in self.paths:
            if method.upper() == route_method and fnmatch.fnmatchcase(path, glob):
                return kind
        return "other"

    def meaning(self, code: str | None, payload: Mapping[str, Any] | None) -> Meaning | None:
        if code is None:
            return None
        found = self.meanings.get(code)
        if found is None and payload is not None:
            # Kiwoom's "wrapped" answers: a category code, the specific one in the message.
            inner = _WRAPPED.search(str(payload.get("return_msg", "")))
            found = self.meanings.get(inner.group(1)) if inner else None
        return found


_WRAPPED = re.compile(r"\[(\d{4}):")

_KIS_STOCK = "/uapi/domestic-stock/v1"
KIS = Vocabulary(
    paths=(
        ("POST", "/oauth2/tokenP", "token"),
        ("POST", "/oauth2/Approval", "approval"),
        ("POST", "/oauth2/revokeP", "revoke"),
        ("POST", "/uapi/hashkey", "hashkey"),
        ("GET", f"{_KIS_STOCK}/quotations/*", "quote"),
        ("POST", f"{_KIS_STOCK}/trading/order-cash", "order"),
        ("GET", f"{_KIS_STOCK}/trading/inquire-daily-ccld", "order-inquiry"),
        ("GET", f"{_KIS_STOCK}/trading/inquire-balance", "balance"),
    ),
    ids={},
    meanings={
        "EGW00201": "budget-exceeded",
        "EGW00123": "token-refused",
        "EGW00121": "token-refused",
        "EGW00133": "token-rate-limited",
    },
)

KIWOOM = Vocabulary(
    paths=(
        ("POST", "/oauth2/token", "token"),
        ("POST", "/oauth2/revoke", "revoke"),
    ),
    ids={
        "ka10001": "quote",
        "ka10099": "quote",
        "ka10081": "quote",
        "ka10060": "quote",
        "kt10000": "order",
        "kt10001": "order",
        "kt00007": "order-inquiry",
        "kt00018": "balance",
    },
    meanings={
        "1700": "budget-exceeded",
        **dict.fromkeys(("8003", "8005", "8006", "8009", "8015", "8016"), "token-refused"),
    },
)
