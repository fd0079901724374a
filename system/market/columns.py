"""The columns of the KIS realtime records this client reads, as KIS documents them.

Source: koreainvestment/open-trading-api, ``examples_llm/domestic_stock``: ``ccnl_krx``
(H0STCNT0, 실시간체결가, 46 columns) and ``asking_price_krx`` (H0STASP0, 실시간호가).
The order book has 59 columns in the specification (up to STCK_DEAL_CLS_CODE); newer
samples append four mid-price columns (63). Both layouts share the first 59 columns, so
both are accepted and read by the same indexes.
"""

from __future__ import annotations

TRADES = "H0STCNT0"
BOOKS = "H0STASP0"

TRADE_COLUMNS: tuple[str, ...] = (
    "MKSC_SHRN_ISCD",
    "STCK_CNTG_HOUR",
    "STCK_PRPR",
    "PRDY_VRSS_SIGN",
    "PRDY_VRSS",
    "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC",
    "STCK_OPRC",
    "STCK_HGPR",
    "STCK_LWPR",
    "ASKP1",
    "BIDP1",
    "CNTG_VOL",
    "ACML_VOL",
    "ACML_TR_PBMN",
    "SELN_CNTG_CSNU",
    "SHNU_CNTG_CSNU",
    "NTBY_CNTG_CSNU",
    "CTTR",
    "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN",
    "CCLD_DVSN",
    "SHNU_RATE",
    "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN",
    "OPRC_VRSS_PRPR",
    "HGPR_HOUR",
    "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR",
    "LWPR_HOUR",
    "LWPR_VRSS_PRPR_SIGN",
    "LWPR_VRSS_PRPR",
    "BSOP_DATE",
    "NEW_MKOP_CLS_CODE",
    "TRHT_YN",
    "ASKP_RSQN1",
    "BIDP_RSQN1",
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL",
    "PRDY_SMNS_HOUR_ACML_VOL_RATE",
    "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE",
    "VI_STND_PRC",
)

BOOK_LEVELS = 10

BOOK_COLUMNS: tuple[str, ...] = (
    "MKSC_SHRN_ISCD",
    "BSOP_HOUR",
    "HOUR_CLS_CODE",
    *(f"ASKP{i}" for i in range(1, BOOK_LEVELS + 1)),
    *(f"BIDP{i}" for i in range(1, BOOK_LEVELS + 1)),
    *(f"ASKP_RSQN{i}" for i in range(1, BOOK_LEVELS + 1)),
    *(f"BIDP_RSQN{i}" for i in range(1, BOOK_LEVELS + 1)),
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "OVTM_TOTAL_ASKP_RSQN",
    "OVTM_TOTAL_BIDP_RSQN",
    "ANTC_CNPR",
    "ANTC_CNQN",
    "ANTC_VOL",
    "ANTC_CNTG_VRSS",
    "ANTC_CNTG_VRSS_SIGN",
    "ANTC_CNTG_PRDY_CTRT",
    "ACML_VOL",
    "TOTAL_ASKP_RSQN_ICDC",
    "TOTAL_BIDP_RSQN_ICDC",
    "OVTM_TOTAL_ASKP_ICDC",
    "OVTM_TOTAL_BIDP_ICDC",
    "STCK_DEAL_CLS_CODE",
)

# Appended by newer KIS samples; tolerated, never read.
BOOK_MIDPOINT_COLUMNS: tuple[str, ...] = (
    "MID_PRC",
    "MIDP_TOTAL_RSQN",
    "MIDP_CLS_CODE",
    "MARKET_CLS_CODE",
)

# How many fields one record of each plain-text tr_id may have.
RECORD_WIDTHS: dict[str, tuple[int, ...]] = {
    TRADES: (len(TRADE_COLUMNS),),
    BOOKS: (len(BOOK_COLUMNS), len(BOOK_COLUMNS) + len(BOOK_MIDPOINT_COLUMNS)),
}

# Fill notices come AES-encrypted with the ack's key; this client reads none of them, but
# knows them so such a frame is recognised rather than called unknown.
ENCRYPTED_TR_IDS = frozenset({"H0STCNI0", "H0STCNI9"})

TRADE_INDEX = {name: i for i, name in enumerate(TRADE_COLUMNS)}
BOOK_INDEX = {name: i for i, name in enumerate(BOOK_COLUMNS)}
