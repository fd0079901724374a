"""The shipped realtime scenarios catch a weakened system, each for the right reason, and
repeat exactly. (That the real system passes them is the scenarios tier's job: ``nox -s
scenarios`` runs every file under scenarios/.)

A weakened variant either switches a protection off through the system's settings, as a
scenario can, or, where no setting exists for it, replaces one part of the system with the
naive version of it that the seeds warn about: a feed client that believes every frame, a
gateway that writes to its clients one after another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.invariants import TICKS_MATCH_MARKET
from harness.result import ScenarioResult
from harness.runner import Options, run_scenario
from harness.scenario import Scenario, load_file
from mocks.broker.config import Api
from system.gateway.connections import ConnectionManager
from system.gateway.protocol import encode
from system.market.tape import Tape, Verdict

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def load(name: str) -> Scenario:
    return load_file(SCENARIOS / name)


def run(
    name: str,
    *,
    feed: dict[str, Any] | None = None,
    seed: int | None = None,
    broker: Api | None = None,
) -> ScenarioResult:
    scenario = load(name)
    if feed:
        system = scenario.system.model_copy(update={"feed": {**scenario.system.feed, **feed}})
        scenario = scenario.model_copy(update={"system": system})
    return run_scenario(scenario, str(SCENARIOS / name), Options(seed=seed, broker=broker))


def failed(result: ScenarioResult) -> dict[str, str]:
    return {check.description: check.observed for check in result.failed_checks}


def believe_every_frame(self: Tape, code: str, *, volume: int, accumulated: int) -> Verdict:
    """A feed client without sequence checks: every trade is news, nothing is a gap."""
    return "next"


def write_one_after_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's naive broadcast: ``for ws in subscribers: await ws.send_text(...)``, one
    broadcast after the other, so one stuck socket holds up everyone behind it."""
    lock = asyncio.Lock()

    def broadcast(self: ConnectionManager, topic: str, message: Any, key: str | None = None) -> int:
        clients = [self._clients[c] for c in self.subscribers(topic) if c in self._clients]
        text = encode(message)

        async def send_all() -> None:
            async with lock:
                for client in clients:
                    try:
                        await client.socket.send_text(text)
                    except Exception:
                        self.disconnect(client.id)

        self._spawn(send_all())
        return len(clients)

    monkeypatch.setattr(ConnectionManager, "broadcast", broadcast)


Weaken = Callable[[pytest.MonkeyPatch], None]


def through_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing patched: the variant's feed settings do the weakening."""


WEAKENED = [
    pytest.param(
        "market/disconnect-storm.yaml",
        {"resync_on_reconnect": False},
        through_settings,
        TICKS_MATCH_MARKET,
        id="storm-without-resync",
    ),
    pytest.param(
        "market/half-open-stall.yaml",
        {"stall_after_s": 100_000},
        through_settings,
        "the system called the silence a stall within the configured 10 s (and 2 s slack)",
        id="stall-without-detection",
    ),
    pytest.param(
        "market/gaps-and-duplicates.yaml",
        None,
        lambda mp: mp.setattr(Tape, "check", believe_every_frame),
        TICKS_MATCH_MARKET,
        id="gaps-without-sequence-checks",
    ),
    pytest.param(
        "gateway/slow-client.yaml",
        None,
        write_one_after_another,
        "healthy dashboards never went 10 s without most of their updates",
        id="slow-client-with-serial-broadcast",
    ),
    pytest.param(
        "market/subscription-limit.yaml",
        {"max_subscriptions": 60},
        through_settings,
        "the server never had to refuse a registration",
        id="limit-unknown-to-the-client",
    ),
]


# The same weakenings on Kiwoom's realtime dialect: the protections are the feed client's,
# whichever protocol it speaks.
WEAKENED_KIWOOM = [
    p
    for p in WEAKENED
    if p.id in {"storm-without-resync", "stall-without-detection", "gaps-without-sequence-checks"}
]


@pytest.mark.parametrize(
    ("name", "feed", "weaken", "check", "broker"),
    [pytest.param(*p.values, "kis", id=p.id) for p in WEAKENED]
    + [pytest.param(*p.values, "kiwoom", id=f"kiwoom-{p.id}") for p in WEAKENED_KIWOOM],
)
def test_a_weakened_system_fails_for_the_right_reason(
    name: str,
    feed: dict[str, Any] | None,
    weaken: Weaken,
    check: str,
    broker: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A misspelt check name would make the last assertion fail for the wrong reason; that the
    # check passes against the real system is the scenarios tier's job.
    scenario = load(name)
    assert check in {e.expect for e in scenario.expect} | {TICKS_MATCH_MARKET}
    weaken(monkeypatch)
    result = run(name, feed=feed, broker=broker)
    assert result.error is None
    assert not result.passed
    assert check in failed(result), failed(result)


@pytest.mark.parametrize(
    ("name", "broker"),
    [
        ("market/half-open-stall.yaml", "kis"),
        ("market/gaps-and-duplicates.yaml", "kis"),
        ("market/gaps-and-duplicates.yaml", "kiwoom"),
    ],
)
def test_the_same_seed_gives_the_same_journal(name: str, broker: Api) -> None:
    first, second = run(name, broker=broker), run(name, broker=broker)
    assert first.passed, failed(first)
    assert second.passed, failed(second)
    assert first.journal_digest == second.journal_digest
    other = run(name, seed=load(name).seed + 1, broker=broker)
    assert other.journal_digest != first.journal_digest
