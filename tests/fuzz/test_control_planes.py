"""Every mock's control plane (broker, feed, proxy) under fuzzed requests and callers.

Each answer is a documented status with JSON (``detail`` saying what is wrong on a 4xx),
never a 500. Who may change things is fuzzed too: a plane without a control token answers
loopback callers only; a plane with one requires it, in every request. A refused request
changes nothing (the fault rules, the broker's settings and market events stay as they
were), and the control token never comes back in an answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import event, given
from hypothesis import strategies as st

from mocks.broker import BrokerConfig, create_app
from mocks.control import TOKEN_HEADER, BaseControlPlane
from mocks.feed import create_feed_app
from mocks.proxy import FaultProxy, ProxyConfig
from mocks.proxy.control import ProxyControlPlane, create_control_app
from tests.fuzz.strategies import HEADER_VALUES, JSON_VALUES, bodies, mostly, variants

CONTROL_TOKEN = "ctl-fuzz-8Jd02kLmQ7vXw1Zr"
SHARED = [
    ("GET", "/_squall/health", None),
    ("GET", "/_squall/clock", None),
    ("GET", "/_squall/faults", None),
    ("DELETE", "/_squall/faults", None),
    ("DELETE", "/_squall/faults/r1", None),
    ("GET", "/_squall/journal", None),
    ("POST", "/_squall/reset", None),
]
ROUTES = {
    "broker": [
        *SHARED,
        (
            "POST",
            "/_squall/faults",
            {"what": {"kind": "error", "code": "EGW00201"}, "when": {"first": 1}},
        ),
        ("GET", "/_squall/broker/config", None),
        ("PATCH", "/_squall/broker/config", {"requests_per_second": 5}),
        ("POST", "/_squall/broker/tokens/expire", None),
        ("GET", "/_squall/broker/tokens", None),
        ("GET", "/_squall/market/events", None),
        ("POST", "/_squall/market/events", {"kind": "vi", "code": "005930"}),
        ("DELETE", "/_squall/market/events", None),
        ("GET", "/_squall/account/orders", None),
    ],
    "feed": [
        *SHARED,
        ("POST", "/_squall/faults", {"what": {"kind": "stall"}, "when": {"first": 1}}),
        ("GET", "/_squall/feed/config", None),
        ("GET", "/_squall/feed/connections", None),
        ("POST", "/_squall/feed/signals", {"signal": "vcp", "ticker": "005930"}),
    ],
    "proxy": [
        *SHARED,
        (
            "POST",
            "/_squall/faults",
            {"what": {"kind": "reset"}, "where": {"direction": "upstream"}},
        ),
        ("GET", "/_squall/proxy/connections", None),
        ("GET", "/_squall/proxy/config", None),
    ],
}
QUERIES = st.dictionaries(
    st.sampled_from(["since", "limit", "path", "kind", "method", "tr_id", "code", "direction"]),
    st.sampled_from(["0", "-1", "5", "abc", "", "1e9", "99999999999999999999"])
    | JSON_VALUES.map(str),
    max_size=3,
)
LOOPBACK, REMOTE = "127.0.0.1", "203.0.113.9"


@dataclass
class Mock:
    app: FastAPI
    plane: BaseControlPlane[Any]
    state: Callable[[], Any]  # what a refused request must leave as it was


def _broker(token: str | None) -> Mock:
    app = create_app(BrokerConfig(), control_token=token)
    broker = app.state.broker
    return Mock(
        app,
        app.state.control,
        lambda: (app.state.control.faults.rules(), broker.config.model_dump(), repr(broker.market)),
    )


def _feed(token: str | None) -> Mock:
    app = create_feed_app(control_token=token)
    return Mock(app, app.state.control, lambda: app.state.control.faults.rules())


def _proxy(token: str | None) -> Mock:
    plane = ProxyControlPlane(seed=3, control_token=token)
    config = ProxyConfig(upstream_host="127.0.0.1", upstream_port=5432, seed=3)
    app = create_control_app(plane, FaultProxy(config, plane))
    return Mock(app, plane, lambda: plane.faults.rules())


MAKERS = {"broker": _broker, "feed": _feed, "proxy": _proxy}


@pytest.fixture(scope="module")
def mocks() -> dict[tuple[str, bool], Mock]:
    return {
        (name, guarded): make(CONTROL_TOKEN if guarded else None)
        for name, make in MAKERS.items()
        for guarded in (False, True)
    }


@st.composite
def control_requests(draw: st.DrawFn) -> dict[str, Any]:
    mock = draw(st.sampled_from(sorted(ROUTES)))
    method, path, valid = draw(st.sampled_from(ROUTES[mock]))
    token = draw(
        mostly(
            CONTROL_TOKEN,
            st.sampled_from([None, CONTROL_TOKEN + "x", CONTROL_TOKEN[:-1]]) | HEADER_VALUES,
        )
    )
    headers = {"content-type": "application/json"}
    if token is not None:
        headers[TOKEN_HEADER] = token
    return {
        "mock": mock,
        "guarded": draw(st.booleans()),
        "caller": draw(mostly(LOOPBACK, st.sampled_from([REMOTE, "::1", "10.0.0.1", "localhost"]))),
        "method": method,
        "path": path,
        "headers": headers,
        "params": draw(QUERIES) if method == "GET" else {},
        "body": draw(bodies(variants(valid) if valid else JSON_VALUES)),
    }


def _allowed(request: dict[str, Any]) -> bool:
    if request["guarded"]:
        return request["headers"].get(TOKEN_HEADER) == CONTROL_TOKEN
    return request["caller"] in {LOOPBACK, "::1", "localhost"}


@given(request=control_requests())
async def test_every_control_request_is_answered_and_only_the_allowed_change_anything(
    mocks: dict[tuple[str, bool], Mock], request: dict[str, Any]
) -> None:
    mock = mocks[(request["mock"], request["guarded"])]
    before = mock.state()
    transport = httpx.ASGITransport(app=mock.app, client=(request["caller"], 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://mock.test", timeout=10
    ) as http:
        answer = await http.request(
            request["method"],
            request["path"],
            headers=request["headers"],
            params=request["params"],
            content=request["body"],
        )
    allowed = _allowed(request)
    event(f"{request['mock']} {'allowed' if allowed else 'refused'} → {answer.status_code}")
    assert answer.status_code < 500, answer.text
    assert CONTROL_TOKEN not in answer.text, "the control token came back in an answer"
    try:
        body = answer.json()
    except json.JSONDecodeError:
        pytest.fail(f"HTTP {answer.status_code} with a body that is not JSON: {answer.text!r}")
    if answer.status_code >= 400:
        detail = body.get("detail")
        # A sentence, or FastAPI's list of problems for a query parameter (loc + msg each;
        # mocks.control.problems_line reads it).
        if not isinstance(detail, str):
            assert isinstance(detail, list), body
            assert all("loc" in problem and "msg" in problem for problem in detail), body
    if not allowed:
        assert answer.status_code == 403, (request["caller"], answer.text)
        assert mock.state() == before, "a refused control request changed the mock"
