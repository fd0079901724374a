"""KIS continuation paging.

The client sends ``tr_cont`` "" for the first page and "N" for the next, with the cursor
from the previous body in CTX_AREA_FK100/CTX_AREA_NK100. The broker answers with header
``tr_cont`` F or M while more pages follow and D or E on the last one (F/D on a first page,
M/E on later ones), and the cursor in the body as ctx_area_fk100/ctx_area_nk100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from mocks.broker.gateway import Rejection

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    start: int
    end: int
    more: bool
    first: bool

    @property
    def tr_cont(self) -> str:
        if self.first:
            return "F" if self.more else "D"
        return "M" if self.more else "E"


def page(
    rows: Sequence[T], *, tr_cont: str, cursor: str, size: int, scope: str
) -> tuple[Sequence[T], Page, dict[str, str]]:
    """The slice to send, its paging facts, and the ctx_area fields for the body."""
    first = tr_cont.strip().upper() != "N"
    start = 0
    if not first:
        try:
            start = int(cursor.strip() or "0")
        except ValueError:
            raise Rejection("OPSQ2001", "CTX_AREA_NK100") from None
        if not 0 <= start <= len(rows):
            raise Rejection("OPSQ2001", "CTX_AREA_NK100")
    end = min(start + size, len(rows))
    info = Page(start, end, end < len(rows), first)
    ctx = {"ctx_area_fk100": scope, "ctx_area_nk100": str(end) if info.more else ""}
    return rows[start:end], info, ctx
