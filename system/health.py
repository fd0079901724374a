"""How well the system can reach its broker right now, and why: ``Health``.

``BrokerHealth`` is told the outcome of every broker interaction (each attempt the service
makes: one quote, one order send, one reconciliation) and turns that, plus the state of the
client's token and orders, into one of three states. The rules, worst first:

**unhealthy** — the system cannot trade now:
  - the last ``unhealthy_after`` interactions all failed (this holds until an interaction
    succeeds: without traffic the system cannot know that the broker is back), or
  - the client holds no usable access token and token issuance is cooling down (every
    request needing a token is refused without being sent until the cooldown ends), or
  - the last ``unhealthy_after`` requests the client sent got no answer at all (timed out,
    refused or reset). This sees a hanging broker before any interaction has failed: one
    interaction may wait through several attempts, each queued behind the budget.

**degraded** — the system works, but something is wrong or unsettled:
  - an interaction failed within the last ``window_s`` seconds, or
  - some order's outcome is unknown (sent, no verdict, not yet reconciled).

**healthy** — none of the above.

A failure is an answer that says nothing about the request (``BrokerUnavailable`` and its
token errors, ``RateLimited``, ``AuthExpired``, ``OrderOutcomeUnknown``). A business
rejection (``BrokerRejected``, ``OrderRejected``) is a *success* here: the broker was
reachable and gave a verdict. Times are loop times (virtual under looptime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HealthState = Literal["healthy", "degraded", "unhealthy"]

# The numbers the ``health_state`` metric carries; higher is worse.
HEALTH_CODES: dict[HealthState, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


@dataclass(frozen=True)
class Health:
    """A verdict and the short sentences that explain it (empty when healthy)."""

    state: HealthState
    reasons: tuple[str, ...] = ()

    @property
    def code(self) -> int:
        """0 healthy, 1 degraded, 2 unhealthy (the ``health_state`` metric)."""
        return HEALTH_CODES[self.state]

    @classmethod
    def judge(cls, unhealthy: list[str], degraded: list[str]) -> Health:
        """The verdict of a part's rules: unhealthy if any unhealthy reason (the degraded
        ones said too), else degraded if any degraded reason, else healthy."""
        if unhealthy:
            return cls("unhealthy", tuple(unhealthy + degraded))
        if degraded:
            return cls("degraded", tuple(degraded))
        return cls("healthy")

    @classmethod
    def worst(cls, *parts: Health) -> Health:
        """Several parts' verdicts as one: the worst state, every part's reasons in order."""
        state = max((part.state for part in parts), key=HEALTH_CODES.__getitem__)
        return cls(state, tuple(reason for part in parts for reason in part.reasons))


class BrokerHealth:
    """Interaction outcomes, and the rules in the module docstring that judge them."""

    def __init__(self, *, window_s: float, unhealthy_after: int) -> None:
        if window_s <= 0 or unhealthy_after < 1:
            raise ValueError(
                f"BrokerHealth needs window_s > 0 and unhealthy_after >= 1, "
                f"got {window_s} and {unhealthy_after}"
            )
        self.window_s = window_s
        self.unhealthy_after = unhealthy_after
        self.consecutive_failures = 0
        self.last_failure: tuple[float, str] | None = None  # (loop time, error type)

    def succeeded(self) -> None:
        """An interaction got a verdict from the broker (including a rejection)."""
        self.consecutive_failures = 0

    def failed(self, at: float, error: BaseException) -> None:
        """An interaction got no verdict: ``error`` says why."""
        self.consecutive_failures += 1
        self.last_failure = (at, type(error).__name__)

    def assess(
        self,
        now: float,
        *,
        unknown_orders: int,
        token_usable: bool,
        token_cooldown_s: float,
        unanswered: int = 0,
        last_unanswered: str = "",
    ) -> Health:
        """The verdict at loop time ``now``, given the client's token and unknown orders."""
        unhealthy: list[str] = []
        degraded: list[str] = []
        failing = self.consecutive_failures >= self.unhealthy_after
        if failing and self.last_failure is not None:
            unhealthy.append(
                f"{self.consecutive_failures} consecutive broker failures "
                f"(last: {self.last_failure[1]})"
            )
        if unanswered >= self.unhealthy_after:
            unhealthy.append(
                f"the broker left the last {unanswered} requests unanswered "
                f"(last: {last_unanswered})"
            )
        if not token_usable and token_cooldown_s > 0:
            unhealthy.append(
                "no usable access token, and token issuance is cooling down for another "
                f"{token_cooldown_s:.1f} s"
            )
        # Already said above when the failures are consecutive enough to be unhealthy.
        if self.last_failure is not None and not failing:
            at, error = self.last_failure
            if now - at < self.window_s:
                degraded.append(f"a broker interaction failed {now - at:.1f} s ago ({error})")
        if unknown_orders:
            plural = "order" if unknown_orders == 1 else "orders"
            degraded.append(f"{unknown_orders} {plural} of unknown outcome")
        return Health.judge(unhealthy, degraded)
