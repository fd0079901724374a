"""GET/POST /api/kill-switch: the halt state for anyone, engage and release for the
operator's token only, every refusal with what to do, and the token never given away."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from system.broker import SettingsError
from system.gateway import Gateway, GatewaySettings, create_gateway
from system.gateway.kill_switch import DEFAULT_DETAIL, MAX_DETAIL_CHARS
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeHalt, FakeService

TOKEN = "op-Zq8wJ1mV4rT7yB2nK5xC"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RUNNING = {"engaged": False, "reason": None, "detail": None, "at": None, "automatic": None}


def client_for(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(gateway.app), base_url="http://gw")


def build(desk: FakeDesk | None, token: str | None = TOKEN) -> Gateway:
    return Gateway(
        FakeService(), FakeFeed(), GatewaySettings(operator_token=token), kill_switch=desk
    )


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()


@pytest.fixture
async def http(desk: FakeDesk) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(build(desk)) as client:
        yield client


# -- reading -------------------------------------------------------------------------------


async def test_the_state_is_read_without_a_token(http: httpx.AsyncClient, desk: FakeDesk) -> None:
    running = await http.get("/api/kill-switch")
    desk.halt = FakeHalt("daily-loss", "lost 3.1 % of capital today", 77.25, automatic=True)
    halted = await http.get("/api/kill-switch")
    assert (running.status_code, running.json()) == (200, RUNNING)
    assert (halted.status_code, halted.json()) == (
        200,
        {
            "engaged": True,
            "reason": "daily-loss",
            "detail": "lost 3.1 % of capital today",
            "at": 77.25,
            "automatic": True,
        },
    )
    assert desk.calls == []


async def test_without_a_desk_both_routes_are_404_with_the_reason() -> None:
    async with client_for(build(None)) as http:
        read = await http.get("/api/kill-switch")
        write = await http.post("/api/kill-switch", json={"engaged": True}, headers=AUTH)
    message = (
        "this system runs no trading desk, so it has no kill switch to read or set; set "
        "SQUALL_TRADING_MODE (paper or live) to run one"
    )
    assert (read.status_code, read.json()) == (404, {"error": message})
    assert (write.status_code, write.json()) == (404, {"error": message})


async def test_create_gateway_passes_the_kill_switch_on(desk: FakeDesk) -> None:
    app = create_gateway(FakeService(), FakeFeed(), kill_switch=desk)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as h:
        response = await h.get("/api/kill-switch")
    assert (response.status_code, response.json()) == (200, RUNNING)


# -- engaging and releasing ----------------------------------------------------------------


async def test_the_operator_engages_and_releases_and_learns_what_changed(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    engaged = await http.post(
        "/api/kill-switch", json={"engaged": True, "detail": "broker incident"}, headers=AUTH
    )
    again = await http.post("/api/kill-switch", json={"engaged": True}, headers=AUTH)
    halted = {
        "engaged": True,
        "reason": "kill switch",
        "detail": "broker incident",
        "at": 12.5,
        "automatic": False,
    }
    assert (engaged.status_code, engaged.json()) == (200, {**halted, "changed": True})
    assert (again.status_code, again.json()) == (200, {**halted, "changed": False})
    assert (await http.get("/api/kill-switch")).json() == halted

    released = await http.post("/api/kill-switch", json={"engaged": False}, headers=AUTH)
    released_again = await http.post("/api/kill-switch", json={"engaged": False}, headers=AUTH)
    assert (released.status_code, released.json()) == (200, {**RUNNING, "changed": True})
    assert (released_again.status_code, released_again.json()) == (
        200,
        {**RUNNING, "changed": False},
    )
    assert desk.calls == [
        ("engage", "broker incident", "operator"),
        ("engage", DEFAULT_DETAIL, "operator"),
        ("release", "", "operator"),
        ("release", "", "operator"),
    ]


async def test_an_automatic_halt_is_released_by_the_operator(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    desk.halt = FakeHalt("feed-stall", "no price for 30 s", 3.0, automatic=True)
    response = await http.post("/api/kill-switch", json={"engaged": False}, headers=AUTH)
    assert response.json() == {**RUNNING, "changed": True}
    assert desk.halt is None


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json; charset=utf-8"}, b'{"engaged": true}'),
        ({"Content-Type": "application/vnd.squall+json"}, b'{"engaged": true}'),
        ({"Content-Type": "APPLICATION/JSON"}, b'{"engaged": true, "detail": "  "}'),
    ],
)
async def test_json_media_types_and_a_blank_detail_are_accepted(
    http: httpx.AsyncClient, desk: FakeDesk, headers: dict[str, str], body: bytes
) -> None:
    response = await http.post("/api/kill-switch", content=body, headers={**AUTH, **headers})
    assert response.status_code == 200, response.text
    assert desk.calls == [("engage", DEFAULT_DETAIL, "operator")]


async def test_a_detail_of_exactly_the_limit_is_accepted_and_trimmed(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    detail = " " + "x" * (MAX_DETAIL_CHARS - 2) + " "
    response = await http.post(
        "/api/kill-switch", json={"engaged": True, "detail": detail}, headers=AUTH
    )
    assert response.status_code == 200
    assert desk.calls == [("engage", "x" * (MAX_DETAIL_CHARS - 2), "operator")]


async def test_the_scheme_is_case_insensitive(http: httpx.AsyncClient, desk: FakeDesk) -> None:
    response = await http.post(
        "/api/kill-switch", json={"engaged": True}, headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert response.status_code == 200
    assert len(desk.calls) == 1


# -- who may ---------------------------------------------------------------------------------


async def test_without_a_configured_token_nobody_may_switch(desk: FakeDesk) -> None:
    async with client_for(build(desk, token=None)) as http:
        response = await http.post("/api/kill-switch", json={"engaged": True}, headers=AUTH)
        read = await http.get("/api/kill-switch")
    assert response.status_code == 403
    assert "no operator token" in response.json()["error"]
    assert "Set SQUALL_GATEWAY_OPERATOR_TOKEN" in response.json()["error"]
    assert read.status_code == 200
    assert desk.calls == []


@pytest.mark.parametrize(
    ("authorization", "says"),
    [
        (None, "needs the operator token"),
        (b"", "needs the operator token"),
        (b"Bearer", "needs the operator token"),
        (b"Bearer   ", "needs the operator token"),
        (f"Basic {TOKEN}".encode(), "needs the operator token"),
        (TOKEN.encode(), "needs the operator token"),
        (b"Bearer op-Zq8wJ1mV4rT7yB2nK5xD", "the operator token is wrong"),
        (f"Bearer {TOKEN[:-1]}".encode(), "the operator token is wrong"),
        (f"Bearer {TOKEN}x".encode(), "the operator token is wrong"),
        (f"Bearer {TOKEN} {TOKEN}".encode(), "the operator token is wrong"),
        ("Bearer tök€n-that-is-long-enough".encode(), "the operator token is wrong"),
    ],
)
async def test_a_missing_or_wrong_token_is_401_and_nothing_changes(
    http: httpx.AsyncClient, desk: FakeDesk, authorization: bytes | None, says: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await http.post("/api/kill-switch", json={"engaged": True}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert says in response.json()["error"]
    assert "SQUALL_GATEWAY_OPERATOR_TOKEN" in response.json()["error"]
    assert desk.calls == []


async def test_the_token_is_checked_before_the_body(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    response = await http.post(
        "/api/kill-switch", content=b"not json", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 401


# -- what is sent ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_not_sent_as_json_is_415(
    http: httpx.AsyncClient, desk: FakeDesk, content_type: str | None
) -> None:
    headers = dict(AUTH) if content_type is None else {**AUTH, "Content-Type": content_type}
    response = await http.post("/api/kill-switch", content=b'{"engaged": true}', headers=headers)
    assert response.status_code == 415
    assert response.headers["accept-post"] == "application/json"
    message = response.json()["error"]
    assert message.startswith("the command must be JSON, but the request has ")
    assert 'send "Content-Type: application/json"' in message
    assert desk.calls == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b"\xff\xfe", "the body is not valid JSON"),
        # Nested past the parser's recursion limit, under the body limit (64 KiB).
        (b"[" * 30_000 + b"]" * 30_000, "the body is not valid JSON"),
        (b"[true]", "the body must be a JSON object, got an array"),
        (b"true", "the body must be a JSON object, got a boolean"),
        (b"{}", "engaged must be true (halt trading) or false (resume), got nothing"),
        (b'{"engaged": "true"}', "engaged must be true (halt trading) or false (resume), got a"),
        (b'{"engaged": 1}', "got a number"),
        (b'{"engaged": null}', "got null"),
        (b'{"engage": true}', 'unknown field(s) "engage": send only engaged and detail'),
        (
            b'{"engaged": true, "a": 1, "op-Zq8wJ1mV4rT7yB2nK5xC": 1}',
            'unknown field(s) "a", 1 longer one(s): send only',
        ),
        (b'{"engaged": true, "detail": 5}', "detail must be a string saying why, got a number"),
        (b'{"engaged": true, "detail": ["a"]}', "detail must be a string saying why, got an"),
        (b'{"engaged": true, "detail": "a\\nb"}', "detail must be one line of text without"),
        (b'{"engaged": false, "detail": "done"}', "a release takes none"),
        (
            json.dumps({"engaged": True, "detail": "x" * (MAX_DETAIL_CHARS + 1)}).encode(),
            f"detail is {MAX_DETAIL_CHARS + 1} characters long; at most {MAX_DETAIL_CHARS}",
        ),
    ],
)
async def test_a_bad_body_is_400_saying_what_is_wrong(
    http: httpx.AsyncClient, desk: FakeDesk, body: bytes, says: str
) -> None:
    response = await http.post(
        "/api/kill-switch", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert says in response.json()["error"]
    assert desk.calls == []


async def test_other_methods_are_405(http: httpx.AsyncClient) -> None:
    response = await http.put("/api/kill-switch", json={"engaged": True}, headers=AUTH)
    assert response.status_code == 405


# -- the secret ------------------------------------------------------------------------------


async def test_the_token_is_never_echoed_in_a_response_or_a_log(
    desk: FakeDesk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    guess = "guess-Lm3nB7vC9xZ1aS5d"
    requests = [
        ("GET", {}, None),
        ("POST", {}, {"engaged": True}),
        ("POST", {"Authorization": f"Bearer {guess}"}, {"engaged": True}),
        ("POST", {"Authorization": f"Basic {TOKEN}"}, {"engaged": True}),
        ("POST", AUTH, {"engaged": "yes"}),
        ("POST", AUTH, {"engaged": True, TOKEN: guess}),
        ("POST", AUTH, {"engaged": True, "detail": 1}),
        ("POST", AUTH, {"engaged": True, "detail": "x" * 501}),
        ("POST", AUTH, {"engaged": True, "detail": "halt"}),
        ("POST", AUTH, {"engaged": False}),
    ]
    seen: list[str] = []
    gateway = build(desk)
    async with client_for(gateway) as http:
        for method, headers, body in requests:
            response = await http.request(method, "/api/kill-switch", json=body, headers=headers)
            seen.append(f"{response.status_code} {response.headers} {response.text}")
        health = await http.get("/health")
        seen.append(health.text)
    seen.append(repr(gateway.settings))
    seen.append(str(gateway.settings))
    seen.append(gateway.settings.model_dump_json())
    statuses = [int(line.split()[0]) for line in seen[: len(requests)]]
    assert statuses == [200, 401, 401, 401, 400, 400, 400, 400, 200, 200]
    assert "gateway: refused POST /api/kill-switch" in caplog.text  # something was logged
    assert "engaged the kill switch" in caplog.text
    for text in [*seen, caplog.text]:
        assert TOKEN not in text
        assert guess not in text


def test_the_token_is_read_from_the_environment_and_kept_secret() -> None:
    settings = GatewaySettings.from_env(environ={"SQUALL_GATEWAY_OPERATOR_TOKEN": f" {TOKEN} "})
    assert settings.operator_token is not None
    assert settings.operator_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    assert GatewaySettings().operator_token is None
    unset = GatewaySettings.from_env(environ={"SQUALL_GATEWAY_OPERATOR_TOKEN": "  "})
    assert unset.operator_token is None


@pytest.mark.parametrize(
    "token", ["short-Token-15c", "has a space in the token", "tökén-long-enough-ok"]
)
def test_a_weak_or_unsendable_token_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(SettingsError) as caught:
        GatewaySettings.from_env(environ={"SQUALL_GATEWAY_OPERATOR_TOKEN": token})
    message = str(caught.value)
    assert "SQUALL_GATEWAY_OPERATOR_TOKEN: Value error, operator_token must be at least 16" in (
        message
    )
    assert token not in message
    with pytest.raises(ValueError, match="operator_token must be at least 16") as direct:
        GatewaySettings(operator_token=token)  # type: ignore[arg-type]
    assert token not in str(direct.value)
