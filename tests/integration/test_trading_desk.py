"""The trading desk wired into the running system, against the mock broker and feed on
virtual time: what its detectors see becomes orders at the broker, each under the signal's
id, bought and sold at the market's prices; paper mode sends none."""

from __future__ import annotations

import asyncio

import httpx

from harness import stack as stacks
from harness.clock import run
from harness.scenario import load_text
from system.trading.detectors import Signal

ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"


def scenario(mode: str) -> str:
    return f"""\
name: desk {mode}
duration: 900
needs: [broker, feed, trading]
system:
  trading: {{mode: {mode}, detectors: [vcp], codes: ["005930", "000660", "005380"]}}
"""


async def trade(mode: str) -> tuple[dict[str, float], list[str], list[str], list[Signal]]:
    """(desk metrics, client order ids, order-cash tr_ids at the broker, signals published)."""
    async with stacks.start(load_text(scenario(mode), "desk.yaml"), seed=5) as stack:
        assert stack.desk is not None
        published: list[Signal] = []
        stack.desk.add_signal_listener(published.append)
        await asyncio.sleep(900)
        await stack.desk.drain()
        journal = await stack.broker.journal(path=ORDER_PATH)
        ids = [record.client_order_id for record in stack.service.orders()]
        return stack.desk.metrics(), ids, [entry.tr_id or "" for entry in journal], published


def test_live_desk_orders_reach_the_broker_under_their_signal_ids() -> None:
    metrics, ids, tr_ids, signals = run(trade("live"))
    assert metrics["desk_signals"] >= 1
    assert len(signals) == metrics["desk_signals"]
    buys = [i for i in ids if not i.endswith("-exit")]
    assert buys == [s.signal_id for s in signals if s.signal_id in buys]
    assert len(ids) == metrics["desk_orders_sent"]
    # One request per order: the service retried nothing and sent nothing twice.
    assert len(tr_ids) == len(ids)
    assert set(tr_ids) <= {"TTTC0012U", "TTTC0011U"}
    assert metrics["desk_orders_failed"] == 0


def test_paper_desk_evaluates_the_same_signals_and_sends_nothing() -> None:
    live, _, _, live_signals = run(trade("live"))
    paper, ids, tr_ids, paper_signals = run(trade("paper"))
    # The same seed, the same market: the same signals, ids included.
    assert [s.signal_id for s in paper_signals] == [s.signal_id for s in live_signals]
    assert paper["desk_paper_orders"] == live["desk_signals"] - live["desk_refused"]
    assert (ids, tr_ids) == ([], [])


TOKEN = "operator-token-for-tests-0123"


async def press_the_kill_switch() -> tuple[int, int, dict[str, object], int, float]:
    """(orders before, orders after the press, the switch's state, status of a wrong token,
    signals refused after the press)."""
    text = scenario("live").replace(
        "needs: [broker, feed, trading]", "needs: [broker, feed, gateway, trading]"
    )
    text += f"  gateway: {{operator_token: {TOKEN}}}\n"
    async with stacks.start(load_text(text, "desk.yaml"), seed=5) as stack:
        assert stack.desk is not None
        assert stack.gateway_server is not None
        await asyncio.sleep(300)
        before = len(stack.service.orders())
        refused = stack.desk.metrics()["desk_refused"]
        async with httpx.AsyncClient(base_url=stack.gateway_server.url) as http:
            wrong = await http.post(
                "/api/kill-switch",
                json={"engaged": True},
                headers={"Authorization": "Bearer not-the-token-at-all"},
            )
            pressed = await http.post(
                "/api/kill-switch",
                json={"engaged": True, "detail": "pressed in a test"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert pressed.status_code == 200, pressed.text
            await asyncio.sleep(600)
            state = (await http.get("/api/kill-switch")).json()
        refused = stack.desk.metrics()["desk_refused"] - refused
        return before, len(stack.service.orders()), state, wrong.status_code, refused


def test_the_kill_switch_pressed_over_http_stops_every_order() -> None:
    before, after, state, wrong, refused = run(press_the_kill_switch())
    assert wrong == 401
    assert state["engaged"] is True
    assert state["reason"] == "manual"
    assert after == before
    assert refused >= 1  # there was something to stop: signals came, and were refused
