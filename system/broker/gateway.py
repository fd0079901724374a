"""One request to a broker, start to verdict: token, budget, headers, and what the answer
means.

``BrokerGateway`` is the broker-neutral part; a ``Wire`` is one broker's dialect: the headers
a call carries and what an answer's body says (``KisWire`` for KIS). Every answer is judged
by its body first, whatever its HTTP status: KIS gateway errors come as
``{"rt_cd": "1", "msg_cd": "EGW…"}`` under HTTP 500 on most deployments and under 200 on
others. Two gateway refusals are retried here because the gateway refused the request before
it reached the exchange, so even an order can be sent again:

- an expired or invalid token (KIS ``EGW00123``/``EGW00121``): drop the token, retry once
  with a new one.
- the per-second budget exceeded (KIS ``EGW00201``): hold every caller back, wait, retry a
  few times.

Anything that leaves the outcome open — a timeout or broken connection after the request may
have left, an answer without a verdict — is ``BrokerUnavailable`` for reads (``read`` retries
those with backoff) and ``OrderOutcomeUnknown`` for orders (never retried).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import httpx

from system.broker.backoff import jittered_backoff
from system.broker.clock import loop_time
from system.broker.errors import (
    TOKEN_ENDPOINT,
    AuthExpired,
    BrokerError,
    BrokerRejected,
    BrokerUnavailable,
    MalformedResponse,
    OrderBlocked,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
    TokenUnavailable,
)
from system.broker.http import BrokerHttp
from system.broker.models import OrderRequest
from system.broker.ratelimit import RateLimiter
from system.broker.settings import BrokerSettings, KisSettings
from system.broker.token import IssuedToken, TokenManager
from system.broker.wire import (
    JSON_CONTENT,
    NEVER_SENT,
    Counters,
    describe,
    json_or_none,
    oauth_error,
    snippet,
)

T = TypeVar("T")
# An order's last check before the wire: a reason to hold it back, or None to send it.
OrderPermit = Callable[[OrderRequest], str | None]

TOKEN_REFUSED = frozenset({"EGW00123", "EGW00121"})
BUDGET_EXCEEDED = "EGW00201"


@dataclass(frozen=True)
class Call:
    """A request to send: ``endpoint`` (``"GET /uapi/…"``) names it in every error."""

    method: Literal["GET", "POST"]
    path: str
    tr_id: str | None = None
    params: Mapping[str, str] | None = None
    content: bytes | None = None
    tr_cont: str = ""  # KIS paging: "N" asks for the next page
    next_key: str = ""  # Kiwoom paging: the previous answer's next-key asks for the next page
    hashkey: str | None = None
    # /uapi/hashkey and /oauth2/Approval take no token and answer without rt_cd.
    authorized: bool = True

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Reply:
    """A successful answer: the JSON body and the response headers (``tr_cont`` for paging)."""

    body: Mapping[str, Any]
    headers: httpx.Headers
    status_code: int


@dataclass(frozen=True)
class Verdict:
    """What a broker's answer says of a request: done, refused for its token, refused for
    the per-second budget, or refused for good (``code`` and ``message`` are the broker's)."""

    kind: Literal["ok", "token", "budget", "refused"]
    code: str = ""
    message: str = ""


class Wire(Protocol):
    """One broker's dialect on the wire."""

    name: str  # the broker, in error messages: "KIS"
    token_endpoint: str  # where tokens are issued, in error messages: "POST /oauth2/tokenP"

    def headers(self, call: Call, token: str | None) -> dict[str, str]:
        """The headers ``call`` goes out with (``token`` is None for a call without one)."""
        ...

    def verdict(self, body: Mapping[str, Any]) -> Verdict | None:
        """What ``body`` says, or None when it gives no verdict at all."""
        ...


TokenIssue = Callable[[], Awaitable[IssuedToken]]


class KisWire:
    """KIS: credentials and ``tr_id`` in headers; ``rt_cd``/``msg_cd``/``msg1`` in bodies."""

    name = "KIS"
    token_endpoint = TOKEN_ENDPOINT

    def __init__(self, settings: KisSettings) -> None:
        self.settings = settings

    def tr_id(self, real_tr_id: str) -> str:
        """The profile's tr_id: paper accounts use V for a leading T/J/C (TTTC0012U → VTTC…)."""
        if self.settings.profile == "paper" and real_tr_id[:1] in ("T", "J", "C"):
            return "V" + real_tr_id[1:]
        return real_tr_id

    def headers(self, call: Call, token: str | None) -> dict[str, str]:
        settings = self.settings
        headers = {
            "content-type": JSON_CONTENT,
            "appkey": settings.appkey,
            "appsecret": settings.appsecret.get_secret_value(),
        }
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if call.tr_id is not None:
            headers["tr_id"] = call.tr_id
        if call.authorized:
            headers["tr_cont"] = call.tr_cont
            headers["custtype"] = settings.custtype
        if call.hashkey is not None:
            headers["hashkey"] = call.hashkey
        return headers

    def verdict(self, body: Mapping[str, Any]) -> Verdict | None:
        if "rt_cd" not in body:
            return None
        rt_cd, msg_cd, msg1 = (str(body.get(key, "")) for key in ("rt_cd", "msg_cd", "msg1"))
        if rt_cd == "0":
            return Verdict("ok", msg_cd, msg1)
        return refusal(msg_cd, msg1, token=TOKEN_REFUSED, budget=BUDGET_EXCEEDED)


def refusal(code: str, message: str, *, token: frozenset[str], budget: str) -> Verdict:
    """A broker's refusal by its code: for the token (one of ``token``), for the per-second
    budget (``budget``), or for good."""
    if code in token:
        return Verdict("token", code, message)
    if code == budget:
        return Verdict("budget", code, message)
    return Verdict("refused", code, message)


@dataclass
class Unanswered:
    """Requests in a row that went out and got no answer at all: a timeout, a refused or reset
    connection. Any answer, an error included, ends the run.

    Health reads it because a hanging broker shows here first: an interaction (a quote with
    its retries) fails only when its last attempt does, and behind a small budget (Kiwoom's
    5/s) attempts queue for so long that the first interaction can fail half a minute into
    the hang, and the answers after it return before three have."""

    in_a_row: int = 0
    last_error: str = ""

    def missed(self, error: BaseException) -> None:
        self.in_a_row += 1
        self.last_error = type(error).__name__

    def answered(self) -> None:
        self.in_a_row = 0


class BrokerGateway:
    """Sends ``Call``s through one shared ``BrokerHttp`` under the account's budget,
    in ``wire``'s dialect, with tokens from ``issue``."""

    def __init__(
        self,
        settings: BrokerSettings,
        http: BrokerHttp,
        rng: random.Random,
        *,
        wire: Wire,
        issue: TokenIssue,
        counters: Counters,
    ) -> None:
        self.settings = settings
        self.http = http
        self.rng = rng
        self.wire = wire
        self.limiter = RateLimiter(
            settings.budget_per_second,
            margin_s=settings.rate_window_margin_s,
            transit_s=settings.rate_transit_s,
        )
        self.counters = counters
        self.unanswered = Unanswered()
        self.tokens = TokenManager(
            issue,
            cooldown_s=settings.token_cooldown_s,
            renew_before_s=settings.token_renew_before_s,
            endpoint=wire.token_endpoint,
        )
        # Asked of every order just before it goes out: a reason not to send it, or None.
        self.order_permit: OrderPermit | None = None

    async def read(self, call: Call, parse: Callable[[Reply], T]) -> T:
        """``exchange`` + ``parse``, retrying unusable answers with jittered backoff.

        Only for requests that change nothing at the broker. Token trouble is not retried
        here: waiting out a token cooldown is the caller's decision.
        """
        attempt = 0
        while True:
            try:
                return parse(await self.exchange(call))
            except TokenUnavailable:
                raise
            except BrokerUnavailable:
                if attempt >= self.settings.read_retries:
                    raise
            attempt += 1
            self.counters.retries += 1
            await asyncio.sleep(self.backoff(attempt))

    def backoff(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1-based): exponential, capped, jittered by rng."""
        settings = self.settings
        return jittered_backoff(
            attempt, base_s=settings.backoff_base_s, max_s=settings.backoff_max_s, rng=self.rng
        )

    async def exchange(self, call: Call, *, order: OrderRequest | None = None) -> Reply:
        """Send ``call`` until the gateway gives a verdict; see the module docstring."""
        token_renewed = False
        budget_retries = 0
        while True:
            token = await self.tokens.get() if call.authorized else None
            slot = await self.limiter.acquire()
            if token is not None and self.tokens.token != token:
                # Dropped or renewed while this call queued for the budget (the first of a
                # crowd saw EGW00123): don't spend the broker's budget on a dead token.
                self.limiter.refund(slot)
                continue
            if order is not None and self.order_permit is not None:
                # Asked at the last moment, after the token and the budget: a halt that came
                # while this order waited for either must still stop it.
                held = self.order_permit(order)
                if held is not None:
                    self.limiter.refund(slot)
                    raise OrderBlocked(order=order, endpoint=call.endpoint, reason=held)
            try:
                response, body, sent_at = await self._send(call, token, order)
            finally:
                self.limiter.release(slot)
            verdict = self.wire.verdict(body) if isinstance(body, Mapping) else None
            if verdict is None:
                # Only the calls without a token (KIS: /uapi/hashkey, /oauth2/Approval)
                # succeed without a verdict; their parsers check the answer's own keys.
                if not call.authorized and isinstance(body, Mapping):
                    if response.is_success:
                        return Reply(body, response.headers, response.status_code)
                    # /oauth2/Approval refuses (e.g. EGW00103, an unknown appkey) OAuth-style.
                    refusal = oauth_error(body) if response.is_client_error else None
                    if refusal is not None:
                        raise BrokerRejected(
                            endpoint=call.endpoint,
                            msg_cd=refusal[0],
                            msg1=refusal[1],
                            status_code=response.status_code,
                        )
                raise self._no_verdict(call, response, order, sent_at)
            assert isinstance(body, Mapping)  # a verdict comes only from a body
            msg_cd, msg1 = verdict.code, verdict.message
            if verdict.kind == "ok":
                return Reply(body, response.headers, response.status_code)
            if verdict.kind == "token" and token is not None:
                self.tokens.invalidate(token)
                if token_renewed:
                    raise AuthExpired(endpoint=call.endpoint, msg_cd=msg_cd, msg1=msg1)
                token_renewed = True
                continue
            if verdict.kind == "budget":
                wait = self.settings.rate_limit_wait_s
                self.limiter.penalize(wait)
                if budget_retries >= self.settings.rate_limit_retries:
                    raise RateLimited(
                        endpoint=call.endpoint, retries=budget_retries, retry_after=wait, msg1=msg1
                    )
                budget_retries += 1
                self.counters.rate_limited_retries += 1
                await asyncio.sleep(wait * self.rng.uniform(1.0, 1.2))
                continue
            rejected = OrderRejected if order is not None else BrokerRejected
            raise rejected(
                endpoint=call.endpoint, msg_cd=msg_cd, msg1=msg1, status_code=response.status_code
            )

    async def _send(
        self, call: Call, token: str | None, order: OrderRequest | None
    ) -> tuple[httpx.Response, object, float]:
        request = self.http.build_request(
            call.method,
            call.path,
            params=call.params,
            content=call.content,
            headers=self.wire.headers(call, token),
        )
        sent_at = loop_time()
        self.counters.requests_sent += 1
        try:
            response = await self.http.send(request)
        except httpx.TransportError as exc:
            self.counters.unavailable_errors += 1
            self.unanswered.missed(exc)
            reason = describe(exc, self.settings)
            if order is not None and not isinstance(exc, NEVER_SENT):
                raise OrderOutcomeUnknown(
                    order=order, sent_at=sent_at, endpoint=call.endpoint, reason=reason
                ) from exc
            advice = (
                "the order never left this client, so placing it again is safe"
                if order is not None
                else "nothing was executed; retry later, and check base_url and the network"
            )
            raise BrokerUnavailable(
                f"{call.endpoint}: the broker is unavailable: {reason}; {advice}",
                endpoint=call.endpoint,
            ) from exc
        self.unanswered.answered()
        return response, json_or_none(response), sent_at

    def _no_verdict(
        self, call: Call, response: httpx.Response, order: OrderRequest | None, sent_at: float
    ) -> BrokerError:
        self.counters.unavailable_errors += 1
        what = (
            f"HTTP {response.status_code} without a {self.wire.name} verdict ({snippet(response)})"
        )
        if order is not None:
            return OrderOutcomeUnknown(
                order=order, sent_at=sent_at, endpoint=call.endpoint, reason=what
            )
        unavailable = BrokerUnavailable if response.status_code >= 500 else MalformedResponse
        return unavailable(
            f"{call.endpoint}: the broker answered {what}; nothing was executed — retry later",
            endpoint=call.endpoint,
        )
