"""KIS's dialect on the wire: what a body says, and what a call carries."""

from __future__ import annotations

from typing import Any

import pytest

from system.broker.gateway import Call, KisWire, Verdict
from system.broker.settings import KisSettings

SETTINGS = KisSettings(
    base_url="http://kis.test",
    appkey="PSwire" + "k" * 30,
    appsecret="s" * 180,
    account="50012345-01",
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리"},
            Verdict("ok", "MCA00000", "정상처리"),
        ),
        ({"rt_cd": "1", "msg_cd": "EGW00123", "msg1": "기간이 만료된 token 입니다."}, "token"),
        ({"rt_cd": "1", "msg_cd": "EGW00121", "msg1": "유효하지 않은 token 입니다."}, "token"),
        ({"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}, "budget"),
        ({"rt_cd": "1", "msg_cd": "APBK0919", "msg1": "주문가능금액을 초과"}, "refused"),
        ({"output": {}}, None),  # no rt_cd: no verdict (e.g. /uapi/hashkey's answer)
    ],
)
def test_a_body_is_judged_by_rt_cd_and_msg_cd(
    body: dict[str, Any], expected: Verdict | str | None
) -> None:
    verdict = KisWire(SETTINGS).verdict(body)
    if isinstance(expected, str):
        assert verdict is not None
        assert (verdict.kind, verdict.code) == (expected, body["msg_cd"])
    else:
        assert verdict == expected


def test_a_call_carries_credentials_tr_id_and_paging_headers() -> None:
    headers = KisWire(SETTINGS).headers(
        Call("GET", "/uapi/x", tr_id="FHKST01010100", tr_cont="N"), "tok"
    )
    assert headers["authorization"] == "Bearer tok"
    assert (headers["tr_id"], headers["tr_cont"], headers["custtype"]) == (
        "FHKST01010100",
        "N",
        "P",
    )
    assert headers["appsecret"] == "s" * 180


def test_paper_accounts_swap_the_leading_letter_of_trading_tr_ids() -> None:
    paper = KisWire(SETTINGS.model_copy(update={"profile": "paper"}))
    assert [paper.tr_id(t) for t in ("TTTC0012U", "FHKST01010100")] == [
        "VTTC0012U",
        "FHKST01010100",
    ]
    assert KisWire(SETTINGS).tr_id("TTTC0012U") == "TTTC0012U"
