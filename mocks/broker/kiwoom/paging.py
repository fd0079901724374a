"""Kiwoom continuation paging: ``cont-yn``/``next-key`` headers.

The answer's ``cont-yn`` is "Y" while more rows follow, with an opaque ``next-key``; the
client asks for the next page by sending both back with the same api-id and body. The
last page says "N" with an empty key.

The mock's key is a stamp of the query (api-id and the fields that select the rows) and
the offset of the next row, so a key from another query is refused (1517) instead of
silently paging someone else's rows. The slicing is KIS's (``mocks.broker.paging``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from mocks.broker import paging
from mocks.broker.gateway import Rejection
from mocks.broker.kiwoom.codes import KiwoomError
from mocks.broker.kiwoom.gateway import LAST, Call, Continuation

T = TypeVar("T")


def page(
    rows: Sequence[T], call: Call, *, size: int, scope: str
) -> tuple[Sequence[T], Continuation]:
    """The rows of the page ``call`` asks for, and the headers that say what follows."""
    stamp = hashlib.blake2b(f"{call.api_id}|{scope}".encode(), digest_size=8).hexdigest()
    continuing = call.cont_yn == "Y"
    cursor = ""
    if continuing:
        if not call.next_key:
            raise KiwoomError(1511, "next-key")
        given_stamp, _, cursor = call.next_key.partition("-")
        if given_stamp != stamp:
            raise KiwoomError(1517, "next-key", "이 조회의 연속조회키가 아닙니다")
    try:
        rows, info, _ = paging.page(
            rows, tr_cont="N" if continuing else "", cursor=cursor, size=size, scope=scope
        )
    except Rejection:
        raise KiwoomError(1517, "next-key", "연속조회키가 올바르지 않습니다") from None
    if not info.more:
        return rows, LAST
    return rows, Continuation("Y", f"{stamp}-{info.end}")
