"""Charts at /api/dostk/chart: ka10081 (주식일봉차트조회요청) and ka10060
(종목별투자자기관별차트요청). Both list daily rows newest first, from the date asked back to
the start of the history (``history``), ``kiwoom_page_size`` rows a page.

ka10081 ``{stk_cd, base_dt, upd_stkpc_tp}`` → ``stk_cd`` and ``stk_dt_pole_chart_qry[]``:
dt, cur_prc/open_pric/high_pric/low_pric (unsigned, 원), trde_qty (주), trde_prica
(백만원), pred_pre (signed change), pred_pre_sig (1-5), trde_tern_rt (volume over shares
outstanding, %). upd_stkpc_tp (0 or 1: adjusted prices) changes nothing: the simulator
has no corporate actions.

ka10060 ``{dt, stk_cd, amt_qty_tp, trde_tp, unit_tp}`` → ``stk_invsr_orgn_chart[]``: dt,
cur_prc (signed against the previous close), pred_pre, acc_trde_prica (백만원) and what
each investor group traded: ind_invsr, frgnr_invsr, orgn (기관계, the sum of fnnc_invt,
insrnc, invtrt, etc_fnnc, bank, penfnd_etc, samo_fund, natn), etc_corp, natfor. Amounts
(amt_qty_tp 1) are in 백만원, quantities (2) in shares or thousands (unit_tp 1 or 1000),
the guide's units. The split is the mock's: each day's value (or volume) is bought and sold
in seeded shares among the groups, so nets (trde_tp 0) sum to zero across groups, buys
(1) are positive and sells (2) negative.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from fastapi import APIRouter

from mocks.broker.kiwoom import codes
from mocks.broker.kiwoom.formats import signed, signed_price, signed_rate
from mocks.broker.kiwoom.gateway import CHART, Answer, Call, Gateway, choice, day, text
from mocks.broker.kiwoom.history import DailyBar
from mocks.broker.kiwoom.paging import page

INSTITUTIONS = (
    "fnnc_invt",
    "insrnc",
    "invtrt",
    "etc_fnnc",
    "bank",
    "penfnd_etc",
    "samo_fund",
    "natn",
)
INVESTORS = ("ind_invsr", "frgnr_invsr", *INSTITUTIONS, "etc_corp", "natfor")


def daily_chart(gateway: Gateway, call: Call) -> Answer:
    kiwoom = gateway.kiwoom
    stock = kiwoom.stock(text(call.fields, "stk_cd"))
    base_dt = day(call.fields, "base_dt")
    choice(call.fields, "upd_stkpc_tp", {"0", "1"})
    shares = stock.listing.shares
    rows = [
        {
            "cur_prc": str(bar.close),
            "trde_qty": str(bar.volume),
            "trde_prica": str(bar.turnover // 1_000_000),
            "dt": bar.day.strftime("%Y%m%d"),
            "open_pric": str(bar.open),
            "high_pric": str(bar.high),
            "low_pric": str(bar.low),
            "pred_pre": signed(bar.change),
            "pred_pre_sig": bar.sign,
            "trde_tern_rt": signed_rate(bar.volume / shares * 100),
        }
        for bar in kiwoom.bars(stock.listing.code)
        if base_dt is None or bar.day <= base_dt
    ]
    size = kiwoom.broker.config.kiwoom_page_size
    shown, more = page(rows, call, size=size, scope=f"{stock.raw}|{base_dt}")
    return Answer(codes.success(stk_cd=stock.raw, stk_dt_pole_chart_qry=list(shown)), more)


def split(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` in whole parts proportional to ``weights`` (largest remainder first), so
    the parts always add up to ``total``."""
    whole = sum(weights)
    exact = [total * weight / whole for weight in weights]
    parts = [int(share) for share in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def investor_flows(seed: int, code: str, bar: DailyBar, total: int, trade: str) -> dict[str, int]:
    """What each group bought (trde_tp 1), sold (2, negative) or netted (0) of ``total``."""
    rng = random.Random(f"squall:{seed}:{code}:{bar.day.isoformat()}:investors")
    # Squared draws: a few groups do most of a day's trading, as on a real tape.
    buys = split(total, [rng.random() ** 2 + 1e-9 for _ in INVESTORS])
    sells = split(total, [rng.random() ** 2 + 1e-9 for _ in INVESTORS])
    if trade == "1":
        flows = buys
    elif trade == "2":
        flows = [-sold for sold in sells]
    else:
        flows = [bought - sold for bought, sold in zip(buys, sells, strict=True)]
    return dict(zip(INVESTORS, flows, strict=True))


def investor_chart(gateway: Gateway, call: Call) -> Answer:
    kiwoom = gateway.kiwoom
    fields = call.fields
    as_of = day(fields, "dt")
    stock = kiwoom.stock(text(fields, "stk_cd"))
    amount = choice(fields, "amt_qty_tp", {"1", "2"}) == "1"
    trade = choice(fields, "trde_tp", {"0", "1", "2"})
    unit = int(choice(fields, "unit_tp", {"1", "1000"}))
    code = stock.listing.code
    rows = []
    for bar in kiwoom.bars(code):
        if as_of is not None and bar.day > as_of:
            continue
        total = bar.turnover // 1_000_000 if amount else bar.volume // unit
        flows = investor_flows(kiwoom.broker.market.seed, code, bar, total, trade)
        rows.append(
            {
                "dt": bar.day.strftime("%Y%m%d"),
                "cur_prc": signed_price(bar.close, bar.prev_close),
                "pred_pre": signed(bar.change),
                "acc_trde_prica": str(bar.turnover // 1_000_000),
                "ind_invsr": str(flows["ind_invsr"]),
                "frgnr_invsr": str(flows["frgnr_invsr"]),
                "orgn": str(sum(flows[group] for group in INSTITUTIONS)),
                **{group: str(flows[group]) for group in INSTITUTIONS},
                "etc_corp": str(flows["etc_corp"]),
                "natfor": str(flows["natfor"]),
            }
        )
    size = kiwoom.broker.config.kiwoom_page_size
    scope = f"{stock.raw}|{as_of}|{int(amount)}|{trade}|{unit}"
    shown, more = page(rows, call, size=size, scope=scope)
    return Answer(codes.success(stk_invsr_orgn_chart=list(shown)), more)


def router(gateway: Gateway) -> APIRouter:
    api = APIRouter()
    gateway.serve(
        api,
        CHART,
        {
            "ka10081": lambda call: daily_chart(gateway, call),
            "ka10060": lambda call: investor_chart(gateway, call),
        },
    )
    return api
