"""Each broker's requests in Squall's terms: the journal's kind and meaning, and fault rules
by kind, the same for KIS and Kiwoom."""

from __future__ import annotations

import pytest

from mocks.vocabulary import KIS, KIWOOM, Vocabulary
from tests.unit.mocks.conftest import STKINFO, Kis, Kiwoom

pytestmark = pytest.mark.looptime


@pytest.mark.parametrize(
    ("vocabulary", "method", "path", "tr_id", "kind"),
    [
        (KIS, "POST", "/oauth2/tokenP", None, "token"),
        (KIS, "GET", "/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", "quote"),
        (KIS, "POST", "/uapi/domestic-stock/v1/trading/order-cash", "TTTC0012U", "order"),
        (KIS, "GET", "/uapi/domestic-stock/v1/trading/order-cash", None, "other"),  # method
        (KIS, "GET", "/uapi/domestic-stock/v1/trading/inquire-daily-ccld", None, "order-inquiry"),
        (KIWOOM, "POST", "/oauth2/token", None, "token"),
        (KIWOOM, "POST", "/api/dostk/stkinfo", "KA10001", "quote"),
        (KIWOOM, "POST", "/api/dostk/ordr", "kt10001", "order"),
        (KIWOOM, "POST", "/api/dostk/acnt", "kt00007", "order-inquiry"),
        (KIWOOM, "POST", "/api/dostk/acnt", "ka00001", "other"),
    ],
)
def test_each_route_has_its_kind(
    vocabulary: Vocabulary, method: str, path: str, tr_id: str | None, kind: str
) -> None:
    assert vocabulary.kind(method, path, tr_id) == kind


def test_codes_mean_the_same_whichever_the_broker() -> None:
    assert KIS.meaning("EGW00201", None) == KIWOOM.meaning("1700", None) == "budget-exceeded"
    assert KIS.meaning("EGW00123", None) == KIWOOM.meaning("8005", None) == "token-refused"
    assert KIS.meaning("EGW00133", None) == "token-rate-limited"
    assert KIS.meaning("APBK0013", None) is None
    # Kiwoom's wrapped answers carry the specific code in the message.
    wrapped = {"return_code": 5, "return_msg": "허용된 요청 개수를 초과하였습니다[1700:...]"}
    assert KIWOOM.meaning("5", wrapped) == "budget-exceeded"


async def test_a_rule_by_kind_hits_kis_quotes_and_the_journal_says_what_it_meant(
    kis: Kis,
) -> None:
    rule = {"where": {"kind": "quote"}, "what": {"kind": "error", "code": "EGW00201"}}
    await kis.http.post("/_squall/faults", json={**rule, "when": {"first": 1}})
    assert (await kis.price()).json()["msg_cd"] == "EGW00201"
    assert (await kis.price()).json()["rt_cd"] == "0"
    answer = await kis.http.get("/_squall/journal", params={"code": "budget-exceeded"})
    (entry,) = answer.json()["entries"]
    assert (entry["kind"], entry["code"], entry["meaning"]) == (
        "quote",
        "EGW00201",
        "budget-exceeded",
    )
    tokens = await kis.http.get("/_squall/journal", params={"kind": "token"})
    assert [e["path"] for e in tokens.json()["entries"]] == ["/oauth2/tokenP"]


async def test_the_same_rule_hits_kiwoom_quotes_and_means_the_same(kiwoom: Kiwoom) -> None:
    rule = {"where": {"kind": "quote"}, "what": {"kind": "error", "code": "1700"}}
    await kiwoom.tr(STKINFO, "ka10001", {"stk_cd": "005930"})
    await kiwoom.http.post("/_squall/faults", json={**rule, "when": {"first": 1}})
    faulted = await kiwoom.tr(STKINFO, "ka10001", {"stk_cd": "005930"})
    assert faulted.json()["return_code"] == 1700
    answer = await kiwoom.http.get("/_squall/journal", params={"code": "budget-exceeded"})
    (entry,) = answer.json()["entries"]
    assert (entry["kind"], entry["tr_id"], entry["meaning"]) == (
        "quote",
        "ka10001",
        "budget-exceeded",
    )
    orders = await kiwoom.http.get("/_squall/journal", params={"kind": "order"})
    assert orders.json()["entries"] == []
