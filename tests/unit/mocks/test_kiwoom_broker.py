"""The Kiwoom profile's rules: tokens, headers, the per-second budget, error styles, faults,
the journal and the control plane."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from mocks.broker import BrokerConfig
from mocks.broker.kiwoom.codes import MESSAGES
from tests.unit.mocks.conftest import (
    KW_APPKEY,
    KW_SECRETKEY,
    ORDR,
    STKINFO,
    Kiwoom,
    client_for,
    kiwoom_order,
)

# Virtual loop time: the market steps once a second of loop time, so answers compared
# across requests must not straddle a step on a slow machine.
pytestmark = pytest.mark.looptime

SAMSUNG = {"stk_cd": "005930"}
TOKEN_INVALID = {"return_code": 8005, "return_msg": "Token이 유효하지 않습니다"}


async def test_token_answer_has_kiwoom_shape_and_expires_on_the_kst_wall_clock(
    make_kiwoom_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_kiwoom_app()) as http:
        answer = await Kiwoom(http).issue()
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"expires_dt", "token_type", "token", "return_code", "return_msg"}
    # KW_OPEN is 2026-03-02 10:00 KST and a token lives 24 h.
    assert body["expires_dt"] == "20260303100000"
    assert (body["token_type"], body["return_code"]) == ("bearer", 0)
    assert body["return_msg"] == "정상적으로 처리되었습니다"
    assert len(body["token"]) > 40


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"appkey": KW_APPKEY, "secretkey": KW_SECRETKEY}, 8011),
        ({"grant_type": "password", "appkey": KW_APPKEY, "secretkey": KW_SECRETKEY}, 8012),
        ({"grant_type": "client_credentials", "secretkey": KW_SECRETKEY}, 8020),
        ({"grant_type": "client_credentials", "appkey": KW_APPKEY, "secretkey": ""}, 8020),
        ({"grant_type": "client_credentials", "appkey": KW_APPKEY, "secretkey": "x" * 43}, 8001),
    ],
)
async def test_bad_token_requests_get_kiwoom_credential_codes(
    kiwoom: Kiwoom, body: dict[str, str], code: int
) -> None:
    await kiwoom.issue()  # with KW_SECRETKEY: another secret for that app key is a mismatch
    answer = await kiwoom.http.post("/oauth2/token", json=body)
    assert answer.status_code == 200
    assert answer.json() == {"return_code": code, "return_msg": MESSAGES[code]}
    assert "x" * 43 not in answer.text


async def test_revoke_ends_the_token_and_refuses_what_it_cannot_revoke(kiwoom: Kiwoom) -> None:
    assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()["return_code"] == 0
    credentials = {"appkey": KW_APPKEY, "secretkey": KW_SECRETKEY}
    missing = await kiwoom.http.post("/oauth2/revoke", json=credentials)
    assert missing.json()["return_code"] == 8016
    other = Kiwoom(kiwoom.http)
    await other.issue(appkey="another" + "k" * 36)
    not_ours = await kiwoom.http.post("/oauth2/revoke", json={**credentials, "token": other.token})
    assert not_ours.json()["return_code"] == 8015
    assert other.token not in not_ours.text
    revoked = await kiwoom.http.post("/oauth2/revoke", json={**credentials, "token": kiwoom.token})
    assert revoked.status_code == 200
    assert revoked.json() == {"return_code": 0, "return_msg": "정상적으로 처리되었습니다"}
    assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json() == TOKEN_INVALID
    assert (await other.tr(STKINFO, "ka10001", SAMSUNG)).json()["return_code"] == 0


@pytest.mark.parametrize(("single", "first_code"), [(True, 8005), (False, 0)])
async def test_a_new_token_retires_the_app_keys_previous_one(
    make_kiwoom_app: Callable[..., FastAPI], single: bool, first_code: int
) -> None:
    async with client_for(make_kiwoom_app(kiwoom_single_token=single)) as http:
        first, second = Kiwoom(http), Kiwoom(http)
        await first.issue()
        await second.issue()
        assert first.token != second.token
        assert (await first.tr(STKINFO, "ka10001", SAMSUNG)).json()["return_code"] == first_code
        assert (await second.tr(STKINFO, "ka10001", SAMSUNG)).json()["return_code"] == 0


async def test_expire_tokens_on_the_control_plane_gives_8005(kiwoom: Kiwoom) -> None:
    await kiwoom.issue()
    assert (await kiwoom.http.post("/_squall/broker/tokens/expire")).json() == {"expired": 1}
    expired = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
    assert (expired.status_code, expired.json()) == (200, TOKEN_INVALID)
    await kiwoom.issue()
    assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()["return_code"] == 0


async def test_tokens_expire_after_their_ttl(make_kiwoom_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_kiwoom_app(token_ttl_s=120)) as http:
        kiwoom = Kiwoom(http)
        body = (await kiwoom.issue()).json()
        assert body["expires_dt"] == "20260302100200"
        assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()["return_code"] == 0
        await asyncio.sleep(121)
        assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json() == TOKEN_INVALID


@pytest.mark.parametrize(
    ("path", "headers", "code", "text"),
    [
        (STKINFO, {"api-id": ""}, 1501, "API ID가 Null이거나 값이 없습니다"),
        (STKINFO, {"api-id": "ka99999"}, 1505, "해당 API ID는 존재하지 않습니다. API ID=ka99999"),
        (
            STKINFO,
            {"api-id": "kt10000"},
            1504,
            "해당 URI에서는 지원하는 API ID가 아닙니다. API ID=kt10000, URI=/api/dostk/stkinfo",
        ),
        (STKINFO, {"authorization": ""}, 1513, MESSAGES[1513]),
        (STKINFO, {"authorization": "BearerX"}, 1514, MESSAGES[1514]),
        (STKINFO, {"authorization": "Basic abc"}, 1515, MESSAGES[1515]),
        (STKINFO, {"authorization": "Bearer "}, 1516, MESSAGES[1516]),
        (STKINFO, {"authorization": "Bearer not-a-token"}, 8005, MESSAGES[8005]),
    ],
)
async def test_header_errors_answer_in_kiwoom_terms(
    kiwoom: Kiwoom, path: str, headers: dict[str, str], code: int, text: str
) -> None:
    await kiwoom.issue()
    sent = {**kiwoom.headers("ka10001"), **headers}
    answer = await kiwoom.http.post(path, json=SAMSUNG, headers=sent)
    assert answer.status_code == 200
    assert answer.json() == {"return_code": code, "return_msg": text}
    assert answer.headers.get("api-id", "") == sent["api-id"]


async def test_a_body_that_is_not_a_json_object_is_1517(kiwoom: Kiwoom) -> None:
    await kiwoom.issue()
    answer = await kiwoom.http.post(STKINFO, content="[1, 2]", headers=kiwoom.headers("ka10001"))
    assert answer.json()["return_code"] == 1517
    assert "파라미터=body" in answer.json()["return_msg"]


async def test_unknown_paths_and_methods_keep_their_status_with_a_kiwoom_body(
    kiwoom: Kiwoom,
) -> None:
    nowhere = await kiwoom.http.post("/api/dostk/nowhere", json={}, headers=kiwoom.headers("x"))
    assert nowhere.status_code == 404
    assert nowhere.json()["return_code"] == 1504
    wrong_method = await kiwoom.http.get(STKINFO, headers=kiwoom.headers("ka10001"))
    assert wrong_method.status_code == 405
    assert wrong_method.json()["return_code"] == 1504
    kis_path = await kiwoom.http.post("/oauth2/tokenP", json={})
    assert kis_path.status_code == 404


def test_budget_defaults_depend_on_api_and_profile() -> None:
    assert BrokerConfig().budget == 18
    assert BrokerConfig(profile="paper").budget == 1
    assert BrokerConfig(api="kiwoom").budget == 5
    assert BrokerConfig(api="kiwoom", profile="paper").budget == 1
    assert BrokerConfig(api="kiwoom", requests_per_second=7).budget == 7


async def test_the_sixth_query_in_a_second_is_1700_under_429_and_orders_count_apart(
    make_kiwoom_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_kiwoom_app()) as http:
        kiwoom = Kiwoom(http)
        await kiwoom.issue()
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = [await kiwoom.tr(STKINFO, "ka10001", SAMSUNG) for _ in range(6)]
        order = await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1))
        assert loop.time() - started < 1.0
    assert [a.json()["return_code"] for a in answers] == [0] * 5 + [1700]
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.json()["return_msg"] == "허용된 요청 개수를 초과하였습니다. API ID=ka10001"
    assert refused.headers["api-id"] == "ka10001"
    assert order.json()["return_code"] == 0


async def test_paper_allows_one_query_a_second_and_refills(
    make_kiwoom_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_kiwoom_app(profile="paper")) as http:
        kiwoom = Kiwoom(http)
        await kiwoom.issue()
        first = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
        second = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
        assert (first.json()["return_code"], second.json()["return_code"]) == (0, 1700)
        await asyncio.sleep(1.0)
        assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()["return_code"] == 0


async def test_the_status_of_1700_is_configurable_at_run_time(
    make_kiwoom_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_kiwoom_app(requests_per_second=1)) as http:
        kiwoom = Kiwoom(http)
        await kiwoom.issue()
        await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
        assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).status_code == 429
        patched = await http.patch("/_squall/broker/config", json={"kiwoom_rate_limit_status": 200})
        assert patched.status_code == 200
        refused = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
        assert (refused.status_code, refused.json()["return_code"]) == (200, 1700)


async def test_the_wrapped_style_answers_as_live_servers_were_captured(
    make_kiwoom_app: Callable[..., FastAPI],
) -> None:
    async with client_for(
        make_kiwoom_app(kiwoom_error_style="wrapped", requests_per_second=2)
    ) as http:
        kiwoom = Kiwoom(http)
        await kiwoom.issue()
        unknown = await kiwoom.tr(STKINFO, "ka10001", {"stk_cd": "999999"})
        await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
        limited = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
        kiwoom.token = "stale"
        stale = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
    assert unknown.json() == {
        "return_code": 7,
        "return_msg": "서비스를 처리하는 중에 오류가 발생했습니다"
        "[1902:종목 정보가 없습니다. 입력한 종목코드 값을 확인바랍니다. 종목코드=999999]",
    }
    assert limited.status_code == 429
    assert limited.json() == {
        "return_code": 5,
        "return_msg": "허용된 요청 개수를 초과하였습니다"
        "[1700:허용된 요청 개수를 초과하였습니다. API ID=ka10001]",
    }
    assert stale.json() == {
        "return_code": 3,
        "return_msg": "인증에 실패했습니다[8005:Token이 유효하지 않습니다]",
    }


async def test_a_fault_rule_by_tr_id_applies_to_kiwoom_api_ids(kiwoom: Kiwoom) -> None:
    rule = {
        "id": "kw",
        "where": {"tr_id": "ka10001"},
        "what": {"kind": "error", "code": "1700"},
        "when": {"first": 1},
    }
    assert (await kiwoom.http.post("/_squall/faults", json=rule)).status_code == 201
    # Same path, another api-id: the rule doesn't match it.
    listed = await kiwoom.tr(STKINFO, "ka10099", {"mrkt_tp": "0"})
    faulted = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
    after = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
    assert listed.json()["return_code"] == 0
    assert faulted.status_code == 429
    assert faulted.json()["return_code"] == 1700
    # As the broker's own 1700: the request's api-id in the message and in the headers.
    assert faulted.json()["return_msg"] == "허용된 요청 개수를 초과하였습니다. API ID=ka10001"
    assert (faulted.headers["api-id"], faulted.headers["cont-yn"]) == ("ka10001", "N")
    assert after.json()["return_code"] == 0
    (stored,) = (await kiwoom.http.get("/_squall/faults")).json()
    assert (stored["matched"], stored["applied"]) == (2, 1)
    entries = (await kiwoom.http.get("/_squall/journal", params={"tr_id": "ka10001"})).json()
    assert [(e["code"], e["fault"], e["status"]) for e in entries["entries"]] == [
        ("1700", "kw:error", 429),
        ("0", None, 200),
    ]


@pytest.mark.parametrize(
    ("what", "status", "body"),
    [
        ({"kind": "error", "code": "8005"}, 200, TOKEN_INVALID),
        (
            {"kind": "error", "code": "1700", "status": 200, "message": "잠시 후 다시"},
            200,
            {"return_code": 1700, "return_msg": "잠시 후 다시"},
        ),
        ({"kind": "error", "status": 503}, 503, {"error": "Service Unavailable"}),
    ],
)
async def test_fault_errors_use_kiwoom_bodies_for_kiwoom_codes(
    kiwoom: Kiwoom, what: dict[str, object], status: int, body: dict[str, object]
) -> None:
    await kiwoom.http.post("/_squall/faults", json={"where": {"tr_id": "KA10001"}, "what": what})
    answer = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
    assert (answer.status_code, answer.json()) == (status, body)


async def test_the_journal_keeps_api_ids_and_codes_and_never_secrets(kiwoom: Kiwoom) -> None:
    await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
    await kiwoom.tr(STKINFO, "ka10001", {"stk_cd": "999999"})
    revoke = {"appkey": KW_APPKEY, "secretkey": KW_SECRETKEY, "token": kiwoom.token}
    await kiwoom.http.post("/oauth2/revoke", json=revoke)
    journal = (await kiwoom.http.get("/_squall/journal")).json()
    raw = json.dumps(journal, ensure_ascii=False)
    assert KW_SECRETKEY not in raw
    assert kiwoom.token not in raw
    issued, info, unknown, revoked = journal["entries"]
    assert issued["path"] == "/oauth2/token"
    assert issued["body"]["secretkey"].startswith("sha256:")
    assert issued["body"]["appkey"] == KW_APPKEY
    assert (issued["code"], issued["ok"]) == ("0", True)
    assert (info["tr_id"], info["code"], info["ok"]) == ("ka10001", "0", True)
    assert info["headers"]["authorization"].startswith("Bearer sha256:")
    assert info["headers"]["api-id"] == "ka10001"
    assert (unknown["code"], unknown["ok"]) == ("1902", False)
    assert revoked["body"]["token"].startswith("sha256:")


async def test_reset_restores_the_starting_world(kiwoom: Kiwoom) -> None:
    await kiwoom.issue()
    first_token = kiwoom.token
    await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1))
    assert len((await kiwoom.http.get("/_squall/account/orders")).json()) == 1
    assert (await kiwoom.http.post("/_squall/reset")).json() == {"reset": True}
    assert (await kiwoom.http.get("/_squall/account/orders")).json() == []
    assert (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json() == TOKEN_INVALID
    # Same seed, fresh token book: the first issuance after a reset repeats the first ever.
    assert (await kiwoom.issue()).json()["token"] == first_token


async def test_market_events_show_in_kiwoom_quotes(kiwoom: Kiwoom) -> None:
    event = {"kind": "limit-up", "code": "005930", "at": 0}
    assert (await kiwoom.http.post("/_squall/market/events", json=event)).status_code == 201
    info = (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()
    assert info["cur_prc"] == info["upl_pric"]
    assert info["pre_sig"] == "1"


async def test_the_api_cannot_change_under_a_running_mock(kiwoom: Kiwoom) -> None:
    answer = await kiwoom.http.patch("/_squall/broker/config", json={"api": "kis"})
    assert answer.status_code == 400
    config = (await kiwoom.http.get("/_squall/broker/config")).json()
    assert (config["api"], config["budget"]) == ("kiwoom", 1000)


async def test_same_seed_same_answers(make_kiwoom_app: Callable[..., FastAPI]) -> None:
    async def session(seed: int) -> list[object]:
        async with client_for(make_kiwoom_app(seed=seed, requests_per_second=100)) as http:
            kiwoom = Kiwoom(http)
            seen: list[object] = [(await kiwoom.issue()).json()["token"]]
            seen.append((await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json())
            chart = {"stk_cd": "005930", "base_dt": "20260302", "upd_stkpc_tp": "1"}
            seen.append((await kiwoom.tr("/api/dostk/chart", "ka10081", chart)).json())
            seen.append((await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1))).json())
            return seen

    assert await session(42) == await session(42)
    assert await session(42) != await session(43)
