"""One client's bounded queue of outgoing messages: latest-wins per key, then drop-oldest.

Kept apart from sockets so the overflow policy is tested on its own; the policy is stated
in ``ConnectionManager``'s docstring.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from typing import Literal

Outcome = Literal["queued", "coalesced", "dropped_oldest"]


class Outbox:
    """Encoded messages waiting for one client, oldest first, at most ``capacity``.

    ``put(text, key)``: a message with a ``key`` (``"price:005930"``) replaces a queued
    message with the same key *in its place* — the client gets the newest value as soon as
    it would have got the old one, and a burst of one ticker's prices takes one slot.
    Otherwise, when full, the oldest message is dropped to make room.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"an Outbox needs capacity >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[object, str] = OrderedDict()
        self._unkeyed = itertools.count()
        self._ready = asyncio.Event()
        self.coalesced = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, text: str, key: str | None = None) -> Outcome:
        if key is not None and key in self._items:
            self._items[key] = text
            self.coalesced += 1
            return "coalesced"
        outcome: Outcome = "queued"
        if len(self._items) >= self.capacity:
            self._items.popitem(last=False)
            self.dropped += 1
            outcome = "dropped_oldest"
        # Unkeyed messages get keys of their own (a tuple never equals a str key).
        self._items[key if key is not None else ("unkeyed", next(self._unkeyed))] = text
        self._ready.set()
        return outcome

    def get_nowait(self) -> str | None:
        if not self._items:
            return None
        _, text = self._items.popitem(last=False)
        if not self._items:
            self._ready.clear()
        return text

    async def get(self) -> str:
        while True:
            text = self.get_nowait()
            if text is not None:
                return text
            await self._ready.wait()
