"""The simulated broker's world: its rules, its market and its accounts, on the mock clock."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from mocks.broker import codes
from mocks.broker.account import Accounts
from mocks.broker.budget import RequestBudget
from mocks.broker.config import BrokerConfig
from mocks.broker.tokens import TokenBook
from mocks.clock import MockClock
from mocks.faults import Error
from mocks.faults import Request as FaultRequest
from mocks.market import Market


class Broker:
    def __init__(self, config: BrokerConfig, clock: MockClock) -> None:
        self.config = config
        self.clock = clock
        self.market = Market(config.seed)
        self.tokens = TokenBook(config.seed)
        self.budget = RequestBudget()
        self.accounts = Accounts(self.market, config.initial_cash)

    def reset(self) -> None:
        self.market.events.clear()
        self.tokens.reset()
        self.budget.reset()
        self.accounts.reset()

    def step(self) -> int:
        """The market step the mock clock is at now."""
        return self.market.step_at(self.clock.now())

    def tr_id(self, real_id: str) -> str:
        """The id this profile expects: paper swaps a leading T/J/C for V."""
        if self.config.profile == "paper" and real_id[:1] in ("T", "J", "C"):
            return "V" + real_id[1:]
        return real_id

    def render_fault(
        self, action: Error, _: FaultRequest
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        """A fault rule's Error as the fault injector sends it (KIS names no request in an
        error, and adds no header)."""
        status, body = self.render_error(action)
        return status, body, {}

    def render_error(self, action: Error) -> tuple[int, dict[str, Any]]:
        """What a fault rule's Error answers: the broker's own body and status for its code."""
        if action.code is None and action.body is None:
            status = action.status or 500
            return status, {"error": _phrase(status)}
        body = (
            action.body
            if action.body is not None
            else codes.body_for(action.code or "", action.message)
        )
        if action.status is not None:
            return action.status, body
        if action.code == "EGW00133":
            return codes.TOKEN_RATE_STATUS, body
        if action.code is not None and codes.is_gateway_code(action.code):
            return self.config.gateway_error_status, body
        return 200, body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status IANA never named, e.g. 599: still a valid fault
        return "Error"
