"""SignalBroadcaster and to_jsonable: any signal object becomes plain JSON on "signals"."""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import PurePosixPath

import pytest
from pydantic import BaseModel

from system.gateway import ConnectionManager, SignalBroadcaster, to_jsonable
from tests.unit.gateway.fakes import FakeSocket, settle


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class Grade(enum.IntEnum):
    A = 1


@dataclass
class Leg:
    code: str
    side: Side
    limit: Decimal


@dataclass
class VcpSignal:
    code: str
    at: datetime
    score: float
    legs: list[Leg]
    tags: frozenset[str] = frozenset()
    extra: dict[object, object] = field(default_factory=dict)


class JonggaV2Signal(BaseModel):
    code: str
    at: datetime
    target: Decimal
    grade: Grade
    confidence: float


AT = datetime(2026, 3, 2, 9, 5, 30, tzinfo=UTC)


def test_signal_object_to_dict_conversion() -> None:
    signal = VcpSignal(
        code="005930",
        at=AT,
        score=float("nan"),
        legs=[Leg("005930", Side.BUY, Decimal("80100.50")), Leg("000660", Side.SELL, Decimal(1))],
        tags=frozenset({"vcp", "breakout"}),
        extra={Side.BUY: timedelta(minutes=1, seconds=30), 3: date(2026, 3, 2), "grade": Grade.A},
    )
    assert to_jsonable(signal) == {
        "code": "005930",
        "at": "2026-03-02T09:05:30+00:00",
        "score": None,
        "legs": [
            {"code": "005930", "side": "buy", "limit": "80100.50"},
            {"code": "000660", "side": "sell", "limit": "1"},
        ],
        "tags": ["breakout", "vcp"],
        "extra": {"buy": 90.0, "3": "2026-03-02", "grade": 1},
    }


def test_pydantic_models_use_their_own_serialisers() -> None:
    signal = JonggaV2Signal(
        code="000660", at=AT, target=Decimal("182500.0"), grade=Grade.A, confidence=float("inf")
    )
    assert to_jsonable(signal) == {
        "code": "000660",
        "at": "2026-03-02T09:05:30Z",
        "target": "182500.0",
        "grade": 1,
        "confidence": None,
    }


def test_odd_leaves_become_text() -> None:
    ident = uuid.UUID(int=1)
    assert to_jsonable([ident, PurePosixPath("/a/b"), b"\x01\xff", (1, 2)]) == [
        "00000000-0000-0000-0000-000000000001",
        "/a/b",
        "01ff",
        [1, 2],
    ]


def test_an_unconvertible_value_is_named_with_its_place() -> None:
    signal = VcpSignal("005930", AT, 1.0, [Leg("005930", Side.BUY, object())])  # type: ignore[arg-type]
    with pytest.raises(TypeError) as caught:
        to_jsonable(signal)
    assert str(caught.value) == (
        "signal.legs[0].limit: cannot send a builtins.object as JSON; use a dataclass, a "
        "pydantic model, a dict, a list, an enum, or a number, text, date or Decimal"
    )


def test_a_signal_that_contains_itself_is_refused() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(TypeError, match=r"nested more than 32 levels deep; does the signal"):
        to_jsonable(loop)


async def test_broadcast_signal_update() -> None:
    manager = ConnectionManager()
    signals = SignalBroadcaster(manager)
    listening, other = FakeSocket(), FakeSocket()
    manager.subscribe(manager.connect(listening), "signals")
    manager.subscribe(manager.connect(other), "005930")
    assert signals.publish({"kind": "market_gate", "open": True}) == 1
    await settle()
    assert listening.messages("signal") == [
        {"type": "signal", "kind": "market_gate", "data": {"kind": "market_gate", "open": True}}
    ]
    assert other.messages("signal") == []


async def test_broadcast_vcp_signals() -> None:
    manager = ConnectionManager()
    signals = SignalBroadcaster(manager)
    socket = FakeSocket()
    manager.subscribe(manager.connect(socket), "signals")
    signals.publish(VcpSignal("005930", AT, 0.8, []))
    await settle()
    (message,) = socket.messages("signal")
    assert (message["kind"], message["data"]["code"], message["data"]["score"]) == (
        "VcpSignal",
        "005930",
        0.8,
    )


async def test_broadcast_jongga_v2_signals() -> None:
    manager = ConnectionManager()
    signals = SignalBroadcaster(manager)
    socket = FakeSocket()
    manager.subscribe(manager.connect(socket), "signals")
    signals.publish(
        JonggaV2Signal(code="000660", at=AT, target=Decimal(1), grade=Grade.A, confidence=0.5),
        kind="jongga_v2",
    )
    await settle()
    (message,) = socket.messages("signal")
    assert message["kind"] == "jongga_v2"
    assert json.dumps(message["data"]) == (
        '{"code": "000660", "at": "2026-03-02T09:05:30Z", "target": "1", "grade": 1, '
        '"confidence": 0.5}'
    )


async def test_a_bad_signal_sends_nothing() -> None:
    manager = ConnectionManager()
    signals = SignalBroadcaster(manager)
    socket = FakeSocket()
    manager.subscribe(manager.connect(socket), "signals")
    with pytest.raises(TypeError):
        signals.publish({"when": object()})
    await settle()
    assert (socket.messages("signal"), signals.published, signals.recent()) == ([], 0, [])


async def test_recent_signals_are_replayed_to_a_new_subscriber() -> None:
    manager = ConnectionManager()
    signals = SignalBroadcaster(manager, history=2)
    for n in range(3):
        signals.publish({"n": n})
    socket = FakeSocket()
    assert signals.replay(manager.connect(socket)) == 2
    await settle()
    assert [m["data"]["n"] for m in socket.messages("signal")] == [1, 2]
