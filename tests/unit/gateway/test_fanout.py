"""The fan-out's protocol side, without Redis: envelopes, what a gateway counts when Redis
is away, and what it prints (never a password). The Redis side is in
tests/integration/test_gateway_fanout.py."""

from __future__ import annotations

import json

import pytest

from system.gateway import GatewaySettings
from system.gateway.fanout import EnvelopeError, RedisFanout, open_envelope, redis_server, seal
from system.gateway.protocol import signal

SIGNAL = signal("breakout", {"code": "005930", "price": 80100})


def test_an_envelope_round_trips() -> None:
    envelope = open_envelope(seal("gateway-a", SIGNAL).encode())
    assert envelope.origin == "gateway-a"
    assert envelope.message == SIGNAL


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"{", "not UTF-8 JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (json.dumps({"message": SIGNAL}), 'no "origin"'),
        (json.dumps({"origin": "", "message": SIGNAL}), 'no "origin"'),
        (json.dumps({"origin": "a", "message": {"type": "price_update"}}), 'of type "signal"'),
        (json.dumps({"origin": "a", "message": {"type": "signal", "kind": 3}}), '"kind"'),
        (json.dumps({"origin": "a", "message": {"type": "signal", "kind": "x"}}), '"data"'),
    ],
)
def test_a_malformed_envelope_says_what_is_wrong(raw: bytes | str, says: str) -> None:
    with pytest.raises(EnvelopeError, match=says):
        open_envelope(raw)


def test_the_server_is_named_without_its_password() -> None:
    assert redis_server("redis://:hunter2-secret@cache.internal:6380/2") == "cache.internal:6380/2"
    assert redis_server("redis://localhost") == "localhost:6379/0"


async def test_signals_are_not_queued_while_not_shared_and_health_says_why() -> None:
    delivered: list[object] = []
    fanout = RedisFanout("redis://:hunter2-secret@127.0.0.1:9/0", delivered.append)
    fanout.share(SIGNAL)  # still connecting: nothing to publish through
    assert fanout.counters.not_shared == 1
    (reason,) = fanout.health().reasons
    assert fanout.health().state == "degraded"
    assert "connecting to Redis at 127.0.0.1:9/0" in reason
    assert "hunter2" not in reason


def test_the_redis_url_must_be_a_redis_url_and_is_never_echoed() -> None:
    with pytest.raises(ValueError, match="redis://") as caught:
        GatewaySettings(redis_url="http://:hunter2-secret@cache:6379")  # type: ignore[arg-type]
    assert "hunter2" not in str(caught.value)
    settings = GatewaySettings(redis_url="redis://:hunter2-secret@cache:6379/0")  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings)
