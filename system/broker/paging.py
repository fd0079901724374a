"""KIS paging, shared by today's orders and the balance.

The first request sends header ``tr_cont: ""``; the answer's ``tr_cont`` header is F or M
while more pages follow and D or E on the last one. The cursor comes back in the body as
``ctx_area_fk100``/``ctx_area_nk100`` and goes out again, verbatim (KIS pads it), as the
query ``CTX_AREA_FK100``/``CTX_AREA_NK100`` with ``tr_cont: N``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from system.broker.errors import MalformedResponse
from system.broker.gateway import BrokerGateway, Call, Reply

T = TypeVar("T")

# Balance pages hold 50 rows (20 on paper); 100 pages is far beyond any real account, so
# reaching it means the broker keeps saying "more follows" — a loop, not data.
MAX_PAGES = 100
_MORE_FOLLOWS = frozenset({"F", "M"})


def more_follows(reply: Reply) -> bool:
    """Whether the answer's ``tr_cont`` header says another page follows."""
    return reply.headers.get("tr_cont", "").strip().upper() in _MORE_FOLLOWS


async def follow_pages(
    gateway: BrokerGateway,
    path: str,
    tr_id: str,
    query: Mapping[str, str],
    parse_page: Callable[[Reply], T],
) -> list[T]:
    """Follow KIS paging: response ``tr_cont`` F/M means more, D/E (or none) the last.
    ``tr_id`` is sent as given (the profile's: ``KisWire.tr_id``)."""
    fk100 = nk100 = tr_cont = ""
    parsed: list[T] = []
    for _ in range(MAX_PAGES):
        call = Call(
            "GET",
            path,
            tr_id=tr_id,
            params={**query, "CTX_AREA_FK100": fk100, "CTX_AREA_NK100": nk100},
            tr_cont=tr_cont,
        )
        reply, item = await gateway.read(call, lambda reply: (reply, parse_page(reply)))
        parsed.append(item)
        if not more_follows(reply):
            return parsed
        cursor = (
            str(reply.body.get("ctx_area_fk100", "")),
            str(reply.body.get("ctx_area_nk100", "")),
        )
        if cursor == (fk100, nk100):
            raise MalformedResponse(
                f"{call.endpoint}: the broker says more pages follow (tr_cont "
                f"{reply.headers.get('tr_cont')!r}) but returned the same cursor again; "
                "stopping instead of looping — retry later",
                endpoint=call.endpoint,
            )
        fk100, nk100 = cursor
        tr_cont = "N"
    raise MalformedResponse(
        f"GET {path}: the broker still says more pages follow after {MAX_PAGES} pages; "
        "stopping instead of looping — retry later",
        endpoint=f"GET {path}",
    )
