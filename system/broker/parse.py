"""From KIS response bodies to the domain types in ``models``.

KIS sends numbers as strings (``"71000"``, ``"-1.25"``, ``"71000.0000"``) and empty strings
where a value does not apply. A missing key or an unparsable number means the answer is not
what KIS documents: ``MalformedResponse``, which reads retry like any unusable answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from system.broker.errors import MalformedResponse
from system.broker.models import Balance, DailyOrder, Holding, OrderAck, OrderBook, Quote, Side

Body = Mapping[str, Any]

# prdy_vrss_sign: 1 upper limit, 2 up, 3 unchanged, 4 lower limit, 5 down.
_FALLING_SIGNS = frozenset({"4", "5"})
_SIDES: dict[str, Side] = {"01": "sell", "02": "buy"}


class Fields:
    """Typed reads from one KIS record, failing with the endpoint and the key at fault."""

    def __init__(self, record: object, *, endpoint: str, where: str) -> None:
        if not isinstance(record, Mapping):
            raise MalformedResponse(
                f"{endpoint}: expected an object in {where}, got {type(record).__name__}; "
                "the answer does not match the broker's specification",
                endpoint=endpoint,
            )
        self.record: Mapping[str, Any] = record
        self.endpoint = endpoint
        self.where = where

    def text(self, key: str) -> str:
        value = self.record.get(key)
        if not isinstance(value, str):
            raise MalformedResponse(
                f"{self.endpoint}: field {key!r} of {self.where} is missing or not a string "
                f"({value!r}); the answer does not match the broker's specification",
                endpoint=self.endpoint,
            )
        return value

    def number(self, key: str) -> Decimal:
        raw = self.text(key).strip().replace(",", "")
        if raw == "":
            return Decimal(0)
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise MalformedResponse(
                f"{self.endpoint}: field {key!r} of {self.where} is not a number ({raw!r})",
                endpoint=self.endpoint,
            ) from None

    def fail(self, key: str, problem: str) -> MalformedResponse:
        """The error for field ``key`` of this record, which ``problem`` describes."""
        return MalformedResponse(
            f"{self.endpoint}: field {key!r} of {self.where} {problem} "
            f"({self.record.get(key)!r}); the answer does not match the broker's specification",
            endpoint=self.endpoint,
        )

    def integer(self, key: str) -> int:
        return int(self.number(key))

    def real(self, key: str) -> float:
        return float(self.number(key))


def section(body: Body, key: str, *, endpoint: str) -> Fields:
    """``body[key]`` as a record; KIS sends some single records as a one-element list."""
    value = body.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return Fields(value, endpoint=endpoint, where=key)


def rows(body: Body, key: str, *, endpoint: str) -> list[Fields]:
    """``body[key]`` as a list of records (absent or empty means no rows)."""
    value = body.get(key)
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise MalformedResponse(
            f"{endpoint}: expected a list in {key}, got {type(value).__name__}",
            endpoint=endpoint,
        )
    return [Fields(row, endpoint=endpoint, where=f"{key}[{i}]") for i, row in enumerate(value)]


def signed_change(change: int, sign: str) -> int:
    """The change from the previous close, negative when ``sign`` (``prdy_vrss_sign``) says
    the price fell; the REST answers and the realtime feed both use these sign codes."""
    # Some feeds send the change unsigned and rely on the sign code; trust the sign code.
    if sign in _FALLING_SIGNS and change > 0:
        return -change
    return change


def quote(code: str, body: Body, *, endpoint: str) -> Quote:
    out = section(body, "output", endpoint=endpoint)
    change = signed_change(out.integer("prdy_vrss"), out.text("prdy_vrss_sign"))
    return Quote(
        code=code,
        price=out.integer("stck_prpr"),
        change=change,
        change_rate=out.real("prdy_ctrt"),
        volume=out.integer("acml_vol"),
        open=out.integer("stck_oprc"),
        high=out.integer("stck_hgpr"),
        low=out.integer("stck_lwpr"),
        upper_limit=out.integer("stck_mxpr"),
        lower_limit=out.integer("stck_llam"),
        base_price=out.integer("stck_sdpr"),
        tick=out.integer("aspr_unit"),
    )


def order_book(code: str, body: Body, *, endpoint: str) -> OrderBook:
    out = section(body, "output1", endpoint=endpoint)

    def levels(side: str) -> list[tuple[int, int]]:
        pairs = [
            (out.integer(f"{side}p{i}"), out.integer(f"{side}p_rsqn{i}")) for i in range(1, 11)
        ]
        return [(price, qty) for price, qty in pairs if price > 0]

    return OrderBook(
        code=code, asks=levels("ask"), bids=levels("bid"), time=out.text("aspr_acpt_hour")
    )


def daily_order(row: Fields) -> DailyOrder:
    side_code = row.text("sll_buy_dvsn_cd")
    side = _SIDES.get(side_code)
    if side is None:
        raise MalformedResponse(
            f"{row.endpoint}: unknown sll_buy_dvsn_cd {side_code!r} in {row.where} "
            "(KIS uses 01 sell, 02 buy)",
            endpoint=row.endpoint,
        )
    return DailyOrder(
        order_date=row.text("ord_dt"),
        org_no=row.text("ord_gno_brno"),
        odno=row.text("odno"),
        side=side,
        code=row.text("pdno"),
        quantity=row.integer("ord_qty"),
        price=row.integer("ord_unpr"),
        order_time=row.text("ord_tmd"),
        filled_quantity=row.integer("tot_ccld_qty"),
        average_price=row.real("avg_prvs"),
        remaining_quantity=row.integer("rmn_qty"),
        cancelled=row.text("cncl_yn").upper() == "Y",
    )


def holding(row: Fields) -> Holding:
    return Holding(
        code=row.text("pdno"),
        name=row.text("prdt_name"),
        quantity=row.integer("hldg_qty"),
        orderable_quantity=row.integer("ord_psbl_qty"),
        average_price=row.real("pchs_avg_pric"),
        price=row.integer("prpr"),
        value=row.integer("evlu_amt"),
        profit_loss=row.integer("evlu_pfls_amt"),
        profit_loss_rate=row.real("evlu_pfls_rt"),
    )


def balance(holdings: list[Holding], last_page: Body, *, endpoint: str) -> Balance:
    totals = section(last_page, "output2", endpoint=endpoint)
    return Balance(
        holdings=holdings,
        cash=totals.integer("dnca_tot_amt"),
        total_value=totals.integer("tot_evlu_amt"),
        net_assets=totals.integer("nass_amt"),
    )


def order_ack(client_order_id: str, body: Body, *, endpoint: str) -> OrderAck:
    out = section(body, "output", endpoint=endpoint)
    ack = OrderAck(
        client_order_id,
        odno=out.text("ODNO").strip(),
        org_no=out.text("KRX_FWDG_ORD_ORGNO").strip(),
        ord_tmd=out.text("ORD_TMD").strip(),
    )
    if not ack.odno:
        raise MalformedResponse(
            f"{endpoint}: the order number ODNO in output is empty", endpoint=endpoint
        )
    return ack
