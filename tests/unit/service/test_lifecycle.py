"""Lifecycle: ``async with`` starts a part and closes it, also when the block raised."""

from __future__ import annotations

import pytest

from system.lifecycle import Lifecycle


class Part(Lifecycle):
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    async def aclose(self) -> None:
        self.events.append("aclose")


async def test_entering_starts_and_leaving_closes_the_part_it_returns() -> None:
    part = Part()
    async with part as entered:
        assert entered is part
        assert part.events == ["start"]
    assert part.events == ["start", "aclose"]


async def test_a_block_that_raises_still_closes_the_part() -> None:
    part = Part()
    with pytest.raises(RuntimeError, match="boom"):
        async with part:
            raise RuntimeError("boom")
    assert part.events == ["start", "aclose"]
