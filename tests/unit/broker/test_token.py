"""TokenManager on virtual time: cache, single flight, cooldown, renewal, invalidation."""

from __future__ import annotations

import asyncio

import pytest

from system.broker import (
    BrokerUnavailable,
    IssuedToken,
    TokenCooldown,
    TokenIssuanceFailed,
    TokenManager,
    TokenUnavailable,
)
from tests.unit.broker.conftest import now

pytestmark = pytest.mark.looptime


class FakeIssuer:
    """An ``issue()`` that records when it was called and answers from a script."""

    def __init__(self, *answers: IssuedToken | Exception, delay: float = 0.1) -> None:
        self.answers = list(answers)
        self.calls: list[float] = []
        self.delay = delay

    async def __call__(self) -> IssuedToken:
        self.calls.append(now())
        answer = self.answers.pop(0)
        await asyncio.sleep(self.delay)  # a round trip, so concurrent callers overlap
        if isinstance(answer, Exception):
            raise answer
        return answer


def tok(value: str, expires_in: float = 86400) -> IssuedToken:
    return IssuedToken(value, expires_in)


def egw00133() -> TokenIssuanceFailed:
    return TokenIssuanceFailed(
        error_code="EGW00133", description="1분당 1회", status_code=403, cooldown_s=60
    )


async def test_the_first_call_issues_and_later_calls_reuse_the_token() -> None:
    issuer = FakeIssuer(tok("tok-1"))
    tokens = TokenManager(issuer)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(3600)
    assert await tokens.get() == "tok-1"
    assert len(issuer.calls) == 1
    assert (tokens.issuance_attempts, tokens.issuances_succeeded) == (1, 1)
    assert tokens.token == "tok-1"
    assert tokens.expires_at == pytest.approx(86400)


async def test_concurrent_callers_share_one_issuance() -> None:
    issuer = FakeIssuer(tok("tok-1"), tok("tok-2"))
    tokens = TokenManager(issuer)
    results = await asyncio.gather(*(tokens.get() for _ in range(5)))
    assert results == ["tok-1"] * 5
    assert len(issuer.calls) == 1


async def test_concurrent_callers_share_the_same_error() -> None:
    failure = egw00133()
    tokens = TokenManager(FakeIssuer(failure))
    results = await asyncio.gather(*(tokens.get() for _ in range(5)), return_exceptions=True)
    assert all(result is failure for result in results)
    assert tokens.issuance_attempts == 1


async def test_after_a_failure_callers_are_told_to_wait_without_a_request() -> None:
    issuer = FakeIssuer(egw00133(), tok("tok-1"))
    tokens = TokenManager(issuer, cooldown_s=60)
    with pytest.raises(TokenIssuanceFailed):
        await tokens.get()
    await asyncio.sleep(17.9)  # 18 s after the attempt started (it took 0.1 s)
    with pytest.raises(TokenCooldown) as info:
        await tokens.get()
    assert info.value.retry_after == pytest.approx(42.0)
    assert "retry in 42.0 s" in str(info.value)
    assert "one token per minute" in str(info.value)
    assert isinstance(info.value, TokenUnavailable)
    assert isinstance(info.value, BrokerUnavailable)
    assert isinstance(info.value, ConnectionError)
    assert len(issuer.calls) == 1
    assert tokens.cooldown_rejections == 1


async def test_issuance_is_allowed_again_once_the_cooldown_is_over() -> None:
    issuer = FakeIssuer(egw00133(), tok("tok-1"))
    tokens = TokenManager(issuer, cooldown_s=60)
    with pytest.raises(TokenIssuanceFailed):
        await tokens.get()
    await asyncio.sleep(59.8)
    with pytest.raises(TokenCooldown):
        await tokens.get()
    await asyncio.sleep(0.1)
    assert await tokens.get() == "tok-1"
    assert issuer.calls == pytest.approx([0.0, 60.0])


async def test_a_successful_issuance_starts_the_cooldown_too() -> None:
    issuer = FakeIssuer(tok("tok-1"), tok("tok-2"))
    tokens = TokenManager(issuer, cooldown_s=60)
    assert await tokens.get() == "tok-1"
    tokens.invalidate("tok-1")  # e.g. the broker said EGW00123 right away
    with pytest.raises(TokenCooldown) as info:
        await tokens.get()
    assert info.value.retry_after == pytest.approx(60 - 0.1)  # counted from the attempt
    await asyncio.sleep(60)
    assert await tokens.get() == "tok-2"


async def test_the_token_is_renewed_before_it_expires() -> None:
    issuer = FakeIssuer(tok("tok-1", 86400), tok("tok-2", 86400))
    tokens = TokenManager(issuer, renew_before_s=300)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(86400 - 300 - 1)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(1)
    assert await tokens.get() == "tok-2"
    assert issuer.calls == pytest.approx([0.0, 86100.1])  # renew_at counts from 0


async def test_renewal_due_during_the_cooldown_keeps_the_valid_token() -> None:
    issuer = FakeIssuer(tok("tok-1", 100), tok("tok-2", 100))
    tokens = TokenManager(issuer, cooldown_s=80, renew_before_s=30)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(75)  # renewal due at 70, cooldown until 80
    assert await tokens.get() == "tok-1"
    assert len(issuer.calls) == 1
    assert tokens.cooldown_rejections == 0
    await asyncio.sleep(5)
    assert await tokens.get() == "tok-2"


async def test_a_failed_renewal_keeps_the_valid_token() -> None:
    issuer = FakeIssuer(tok("tok-1", 1000), egw00133(), tok("tok-2"))
    tokens = TokenManager(issuer, cooldown_s=60, renew_before_s=300)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(700)
    assert await tokens.get() == "tok-1"  # renewal refused, old token still valid
    await asyncio.sleep(10)
    assert await tokens.get() == "tok-1"  # cooling down: no new attempt
    assert len(issuer.calls) == 2


async def test_callers_during_a_renewal_use_the_valid_token_without_waiting() -> None:
    issuer = FakeIssuer(tok("tok-1", 1000), tok("tok-2"), delay=5)
    tokens = TokenManager(issuer, renew_before_s=300)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(700)
    renewing = asyncio.create_task(tokens.get())
    await asyncio.sleep(1)
    started = now()
    assert await tokens.get() == "tok-1"
    assert now() == started
    assert await renewing == "tok-2"


async def test_an_expired_token_in_the_cooldown_is_not_used() -> None:
    issuer = FakeIssuer(tok("tok-1", 50))
    tokens = TokenManager(issuer, cooldown_s=60, renew_before_s=10)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(55)
    assert tokens.token is None
    with pytest.raises(TokenCooldown):
        await tokens.get()


async def test_a_short_lived_token_is_not_due_for_renewal_from_birth() -> None:
    issuer = FakeIssuer(tok("tok-1", 120), tok("tok-2", 120))
    tokens = TokenManager(issuer, cooldown_s=0, renew_before_s=300)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(30)
    assert await tokens.get() == "tok-1"
    await asyncio.sleep(31)  # past half its life
    assert await tokens.get() == "tok-2"


async def test_invalidate_drops_only_the_token_it_names() -> None:
    issuer = FakeIssuer(tok("tok-1"), tok("tok-2"))
    tokens = TokenManager(issuer, cooldown_s=0)
    assert await tokens.get() == "tok-1"
    tokens.invalidate("tok-1")
    assert await tokens.get() == "tok-2"
    tokens.invalidate("tok-1")  # a late caller that also failed with the old token
    assert tokens.token == "tok-2"
    assert len(issuer.calls) == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_issuance() -> None:
    issuer = FakeIssuer(tok("tok-1"), delay=1)
    tokens = TokenManager(issuer)
    first = asyncio.create_task(tokens.get())
    second = asyncio.create_task(tokens.get())
    await asyncio.sleep(0.5)
    first.cancel()
    assert await second == "tok-1"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert tokens.token == "tok-1"
    assert len(issuer.calls) == 1


async def test_an_unawaited_failed_issuance_is_not_reported_as_lost() -> None:
    issuer = FakeIssuer(egw00133(), delay=1)
    tokens = TokenManager(issuer)
    caller = asyncio.create_task(tokens.get())
    await asyncio.sleep(0.5)
    caller.cancel()
    await asyncio.sleep(1)  # the issuance fails with nobody waiting
    with pytest.raises(TokenCooldown):
        await tokens.get()
