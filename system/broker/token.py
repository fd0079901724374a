"""The access token: issued once, shared, renewed early, and never requested in a storm.

KIS issues one token per minute per appkey and answers any other request with HTTP 403
``EGW00133``. A client that retries issuance on every failing call turns one refusal into a
cascade; this manager makes every issuance attempt start a cooldown, during which callers
without a usable token are told how long to wait, without a request being sent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from system.broker.clock import loop_time
from system.broker.errors import TOKEN_ENDPOINT, TokenCooldown


@dataclass(frozen=True)
class IssuedToken:
    """What ``POST /oauth2/tokenP`` returned: the token and its lifetime in seconds."""

    access_token: str
    expires_in: float


@dataclass(frozen=True)
class _Held:
    value: str
    expires_at: float
    renew_at: float


class TokenManager:
    """Hands out the current access token, issuing it through ``issue`` only when needed.

    - The first caller issues; the token is reused until ``renew_before_s`` before it expires.
    - Concurrent callers share one issuance (single flight) and get its token or its error.
    - Every attempt, successful or not, starts a ``cooldown_s`` cooldown. During it, callers
      without a usable token get ``TokenCooldown`` at once; callers whose token is merely due
      for renewal keep using it.
    """

    def __init__(
        self,
        issue: Callable[[], Awaitable[IssuedToken]],
        *,
        cooldown_s: float = 60.0,
        renew_before_s: float = 300.0,
        endpoint: str = TOKEN_ENDPOINT,
    ) -> None:
        self._issue = issue
        self.endpoint = endpoint  # the broker's token endpoint, for error messages
        self.cooldown_s = cooldown_s
        self.renew_before_s = renew_before_s
        self._held: _Held | None = None
        self._last_attempt_at = -math.inf
        self._in_flight: asyncio.Future[_Held] | None = None
        self.issuance_attempts = 0
        self.issuances_succeeded = 0
        self.cooldown_rejections = 0

    @property
    def token(self) -> str | None:
        """The held token, if any (it may be due for renewal, but it has not expired)."""
        held = self._held
        return held.value if held is not None and loop_time() < held.expires_at else None

    @property
    def expires_at(self) -> float | None:
        """Loop time at which the held token expires, if one is held."""
        return None if self._held is None else self._held.expires_at

    @property
    def cooldown_remaining(self) -> float:
        """Seconds until a new token may be requested (0 when issuance is allowed now)."""
        return max(0.0, self._last_attempt_at + self.cooldown_s - loop_time())

    async def get(self) -> str:
        """The token to send now; issues one if there is none or renewal is due."""
        now = loop_time()
        held = self._held
        usable = held is not None and now < held.expires_at
        if held is not None and usable and now < held.renew_at:
            return held.value
        if self._in_flight is not None:
            if held is not None and usable:
                return held.value  # renewal under way; the old token is still good
            return (await asyncio.shield(self._in_flight)).value
        retry_after = self._last_attempt_at + self.cooldown_s - now
        if retry_after > 0:
            if held is not None and usable:
                return held.value
            self.cooldown_rejections += 1
            raise TokenCooldown(
                retry_after=retry_after,
                attempted_at=self._last_attempt_at,
                endpoint=self.endpoint,
            )
        try:
            return (await self._issue_shared(now)).value
        except Exception:
            if held is not None and usable and self._held is held:
                return held.value  # a failed early renewal must not break a working token
            raise

    def invalidate(self, token: str) -> None:
        """Drop ``token`` because the broker refused it (EGW00123/EGW00121).

        Only the token the caller actually sent is dropped: when many requests fail with the
        same expired token, the first one's re-issue must not be undone by the others.
        """
        if self._held is not None and self._held.value == token:
            self._held = None

    def _issue_shared(self, started_at: float) -> asyncio.Future[_Held]:
        self._last_attempt_at = started_at
        self.issuance_attempts += 1
        task = asyncio.ensure_future(self._issue_once(started_at))
        self._in_flight = task
        task.add_done_callback(self._landed)
        # Shielded: a caller being cancelled must not cancel the issuance the others share.
        return asyncio.shield(task)

    async def _issue_once(self, started_at: float) -> _Held:
        issued = await self._issue()
        # Expiry counts from when the request left, so clock skew errs on the early side.
        expires_at = started_at + issued.expires_in
        # A short-lived token (a simulator's) must not be "due for renewal" from birth.
        renew_at = expires_at - min(self.renew_before_s, issued.expires_in / 2)
        held = _Held(issued.access_token, expires_at, renew_at)
        self._held = held
        self.issuances_succeeded += 1
        return held

    def _landed(self, task: asyncio.Future[_Held]) -> None:
        if self._in_flight is task:
            self._in_flight = None
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged as lost
