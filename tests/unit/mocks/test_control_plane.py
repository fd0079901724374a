"""The control plane: access rules, rules over HTTP, journal, reset and reproducibility."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from mocks.control_client import BrokerControl, ControlError
from tests.unit.mocks.conftest import APPSECRET, Kis, client_for, order_body


async def test_remote_clients_are_refused_without_a_control_token(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    async with client_for(app, host="10.1.2.3") as remote, client_for(app) as local:
        refused = await remote.get("/_squall/faults")
        assert refused.status_code == 403
        assert "loopback" in refused.json()["detail"]
        assert (await local.get("/_squall/faults")).status_code == 200


async def test_with_a_control_token_every_caller_must_present_it(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(control_token="let-me-in")
    async with client_for(app, host="10.1.2.3") as remote:
        assert (await remote.get("/_squall/faults")).status_code == 403
        allowed = await remote.get(
            "/_squall/faults", headers={"x-squall-control-token": "let-me-in"}
        )
        assert allowed.status_code == 200


async def test_control_client_adds_lists_and_clears_rules(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    transport = client_for(app)._transport
    async with (
        BrokerControl("http://broker.test", transport=transport) as control,
        client_for(app) as http,
    ):
        kis = Kis(http)
        await kis.issue()
        stored = await control.add_fault(
            {
                "where": {"tr_id": "FHKST01010100"},
                "what": {"kind": "error", "code": "EGW00201"},
                "when": {"first": 2},
            }
        )
        assert stored.id == "rule-1"
        statuses = [(await kis.price()).json()["msg_cd"] for _ in range(3)]
        assert statuses == ["EGW00201", "EGW00201", "MCA00000"]
        (listed,) = await control.faults()
        assert (listed["matched"], listed["applied"]) == (3, 2)
        await control.clear_faults()
        assert await control.faults() == []
        with pytest.raises(ControlError, match="no fault rule"):
            await control.remove_fault("rule-1")
        with pytest.raises(ControlError, match="422"):
            await control._call("POST", "/faults", json={"what": {"kind": "nope"}})


@pytest.mark.parametrize(
    ("what", "status", "key"),
    [
        ({"kind": "error", "code": "EGW00123"}, 500, "msg_cd"),
        ({"kind": "error", "code": "EGW00133"}, 403, "error_code"),
        ({"kind": "error", "code": "EGW00201", "status": 200}, 200, "msg_cd"),
        ({"kind": "error", "status": 503}, 503, "error"),
        ({"kind": "error", "code": "APBK0952"}, 200, "msg_cd"),
    ],
)
async def test_error_faults_use_the_brokers_own_bodies(
    kis: Kis, what: dict[str, object], status: int, key: str
) -> None:
    await kis.http.post("/_squall/faults", json={"what": what})
    answer = await kis.price()
    assert answer.status_code == status
    assert key in answer.json()


async def test_empty_and_malformed_answers(kis: Kis) -> None:
    await kis.http.post("/_squall/faults", json={"what": {"kind": "empty"}, "when": {"first": 1}})
    await kis.http.post(
        "/_squall/faults", json={"what": {"kind": "malformed"}, "when": {"first": 1}}
    )
    empty = await kis.price()
    assert (empty.status_code, empty.content) == (200, b"")
    malformed = await kis.price()
    with pytest.raises(ValueError, match="Expecting"):
        malformed.json()


async def test_journal_records_faults_codes_and_never_secrets(kis: Kis) -> None:
    await kis.http.post(
        "/_squall/faults",
        json={"id": "x", "what": {"kind": "error", "code": "EGW00201"}, "when": {"first": 1}},
    )
    await kis.price()
    await kis.price()
    await kis.order(order_body(qty=1))
    journal = (await kis.http.get("/_squall/journal")).json()
    raw = json.dumps(journal)
    assert APPSECRET not in raw
    assert kis.token not in raw
    entries = journal["entries"]
    assert entries[0]["path"] == "/oauth2/tokenP"
    assert [(e["code"], e["fault"]) for e in entries[1:3]] == [
        ("EGW00201", "x:error"),
        ("MCA00000", None),
    ]
    assert entries[3]["body"]["PDNO"] == "005930"
    assert entries[3]["tr_id"] == "TTTC0012U"
    assert all(e["headers"]["appsecret"].startswith("sha256:") for e in entries[1:])


async def test_reset_restores_the_starting_world(kis: Kis) -> None:
    first_token = kis.token
    await kis.http.post("/_squall/faults", json={"what": {"kind": "reset"}})
    assert (await kis.http.post("/_squall/reset")).json() == {"reset": True}
    assert (await kis.http.get("/_squall/faults")).json() == []
    assert (await kis.http.get("/_squall/journal")).json()["entries"] == []
    # Same seed, fresh token book: the first issuance after a reset repeats the first ever.
    assert (await kis.issue()).json()["access_token"] == first_token


async def test_expire_tokens_through_the_control_plane(kis: Kis) -> None:
    assert (await kis.http.post("/_squall/broker/tokens/expire")).json() == {"expired": 1}
    assert (await kis.price()).json()["msg_cd"] == "EGW00123"


async def test_run_time_config_changes_are_checked(kis: Kis) -> None:
    assert (
        await kis.http.patch("/_squall/broker/config", json={"profile": "paper"})
    ).status_code == 400
    assert (
        await kis.http.patch("/_squall/broker/config", json={"gateway_error_status": 42})
    ).status_code == 422
    assert (await kis.http.patch("/_squall/broker/config", json={"requests_per_second": 5})).json()[
        "budget"
    ] == 5


async def test_same_seed_same_answers(make_app: Callable[..., FastAPI]) -> None:
    async def session() -> list[object]:
        async with client_for(make_app(seed=42)) as http:
            kis = Kis(http)
            seen: list[object] = [(await kis.issue()).json()["access_token"]]
            seen.append((await kis.price()).json()["output"])
            seen.append((await kis.order(order_body(qty=1))).json()["output"]["ODNO"])
            journal = (await http.get("/_squall/journal")).json()["entries"]
            seen.append([(e["path"], e["code"], e["status"]) for e in journal])
            return seen

    assert await session() == await session()


async def test_a_bad_config_change_changes_nothing(kis: Kis) -> None:
    answer = await kis.http.patch(
        "/_squall/broker/config", json={"requests_per_second": 5, "gateway_error_status": 42}
    )
    assert answer.status_code == 422
    config = (await kis.http.get("/_squall/broker/config")).json()
    assert (config["requests_per_second"], config["budget"]) == (None, 18)


async def test_an_unnamed_status_still_answers(kis: Kis) -> None:
    await kis.http.post("/_squall/faults", json={"what": {"kind": "error", "status": 599}})
    answer = await kis.price()
    assert (answer.status_code, answer.json()) == (599, {"error": "Error"})


@pytest.mark.parametrize(
    ("method", "path", "what"),
    [
        ("POST", "/_squall/faults", "fault rule"),
        ("POST", "/_squall/market/events", "market event"),
        ("PATCH", "/_squall/broker/config", "config change"),
    ],
)
@pytest.mark.parametrize("content", ["{not json", "[" * 100_000 + "]" * 100_000, b"\xff{}"])
async def test_a_body_that_is_not_json_is_a_400_naming_what_was_expected(
    kis: Kis, method: str, path: str, what: str, content: str | bytes
) -> None:
    answer = await kis.http.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(f"the {what} is not valid JSON: ")


async def test_a_bad_config_value_is_named_in_one_line(kis: Kis) -> None:
    answer = await kis.http.patch("/_squall/broker/config", json={"gateway_error_status": 42})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("invalid config change: gateway_error_status: ")
