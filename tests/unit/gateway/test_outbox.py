"""Outbox: a bounded queue, latest-wins per key, drop-oldest beyond that."""

from __future__ import annotations

import asyncio

import pytest

from system.gateway.outbox import Outbox


def drain(outbox: Outbox) -> list[str]:
    items = []
    while (item := outbox.get_nowait()) is not None:
        items.append(item)
    return items


def test_messages_come_out_in_order() -> None:
    outbox = Outbox(4)
    assert [outbox.put(t) for t in "abc"] == ["queued"] * 3
    assert drain(outbox) == ["a", "b", "c"]


def test_a_keyed_message_replaces_its_predecessor_in_place() -> None:
    outbox = Outbox(4)
    outbox.put("p1@100", "price:005930")
    outbox.put("ping")
    outbox.put("q1@200", "price:000660")
    assert outbox.put("p1@101", "price:005930") == "coalesced"
    assert drain(outbox) == ["p1@101", "ping", "q1@200"]
    assert (outbox.coalesced, outbox.dropped) == (1, 0)


def test_a_full_outbox_drops_the_oldest_and_counts_it() -> None:
    outbox = Outbox(3)
    for text in ["a", "b", "c"]:
        outbox.put(text)
    assert outbox.put("d") == "dropped_oldest"
    assert outbox.put("e", "k") == "dropped_oldest"
    assert drain(outbox) == ["c", "d", "e"]
    assert outbox.dropped == 2


def test_a_key_sent_again_after_delivery_is_queued_anew() -> None:
    outbox = Outbox(2)
    outbox.put("p@1", "price:005930")
    assert outbox.get_nowait() == "p@1"
    assert outbox.put("p@2", "price:005930") == "queued"
    assert outbox.coalesced == 0


async def test_get_waits_for_a_message() -> None:
    outbox = Outbox(2)
    waiting = asyncio.ensure_future(outbox.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    outbox.put("hello")
    assert await asyncio.wait_for(waiting, 1) == "hello"


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity >= 1, got 0"):
        Outbox(0)
