"""``async with`` for the system's long-lived parts: entering starts one, leaving closes it.

The broker clients, the trading service, the feed clients and the alert notifier all have
``aclose()`` (and some ``start()``): ``Lifecycle`` gives them the same two dunder methods
instead of a copy each.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Lifecycle(ABC):
    """``async with part:`` calls ``start()`` (nothing, unless the part has work to start)
    and, on the way out, ``aclose()``, also when the block raised."""

    def start(self) -> None:  # noqa: B027 - a default, not a forgotten abstract method
        """Start what runs in the background (idempotent); nothing by default."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop and release everything (idempotent)."""

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
