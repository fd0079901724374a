"""Trading signals to the clients of the ``"signals"`` topic, as plain JSON.

Signals are whatever the trading core produces — dataclasses, pydantic models, dicts —
nested as it likes, holding datetimes, Decimals and enums. ``to_jsonable`` turns them into
what ``json.dumps`` takes and a browser reads without surprises:

==========================  ==================================================================
dataclass                   dict of its fields (recursively; ``asdict`` would deep-copy first)
pydantic model              ``model_dump(mode="json")`` (the model's own serializers apply)
Mapping                     dict; keys become strings (an enum key by its value)
list, tuple, set            list (a set sorted when its items allow it, for stable output)
Enum                        its value, converted
datetime, date, time        ISO 8601 text (``isoformat()``)
timedelta                   seconds (float)
Decimal                     text (``"80100.50"``): exact; a float would round it in JavaScript
float                       itself if finite, else None (JSON has no NaN or infinity)
UUID, Path                  text
bytes                       hex text
==========================  ==================================================================

Anything else is a ``TypeError`` naming where in the signal it sits and its type.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import math
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

from system.gateway.connections import ConnectionManager
from system.gateway.protocol import SIGNALS, signal

_MAX_DEPTH = 32


def to_jsonable(value: object, *, where: str = "signal", depth: int = 0) -> Any:
    """``value`` as JSON-safe Python (see the module's table); ``TypeError`` otherwise."""
    if depth > _MAX_DEPTH:
        raise TypeError(
            f"{where}: nested more than {_MAX_DEPTH} levels deep; does the signal refer to "
            "itself? Send a flat copy of what the page needs"
        )
    # Enums first: an IntEnum or StrEnum member is also an int or a str.
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, where=where, depth=depth + 1)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, BaseModel):
        # Through to_jsonable again: a model's non-finite floats must become None too.
        return to_jsonable(value.model_dump(mode="json"), where=where, depth=depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name), where=f"{where}.{f.name}", depth=depth + 1)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {
            _key(key, where): to_jsonable(item, where=f"{where}[{key!r}]", depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset | deque):
        items = list(value)
        if isinstance(value, set | frozenset):
            # Unorderable members: then any order is as good as another.
            with contextlib.suppress(TypeError):
                items = sorted(items)
        return [
            to_jsonable(item, where=f"{where}[{index}]", depth=depth + 1)
            for index, item in enumerate(items)
        ]
    raise TypeError(
        f"{where}: cannot send a {type(value).__module__}.{type(value).__qualname__} as JSON; "
        "use a dataclass, a pydantic model, a dict, a list, an enum, or a number, text, date "
        "or Decimal"
    )


def _key(key: object, where: str) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str | int | float | bool | Decimal) or key is None:
        return str(key)
    raise TypeError(
        f"{where}: a key of type {type(key).__qualname__} cannot be a JSON object key; "
        "use text or numbers as keys"
    )


class SignalBroadcaster:
    """Sends each signal to the ``"signals"`` topic as ``{"type":"signal","kind","data"}``.

    ``kind`` is the signal's class name (``"VcpSignal"``) unless given. The last
    ``history`` signals are replayed to each new subscriber, so a page that connects (or
    reconnects) sees what happened recently. Signals are never coalesced; a client that is
    far behind loses the oldest ones like any other message (see ``ConnectionManager``).
    """

    def __init__(self, manager: ConnectionManager, *, history: int = 20) -> None:
        self.manager = manager
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        self.published = 0
        # Other gateways' share of this one's signals (system.gateway.fanout), when set.
        self.share: Callable[[dict[str, Any]], None] | None = None

    def publish(self, payload: object, kind: str | None = None) -> int:
        """Convert and send one signal; returns how many clients it was queued for.

        Raises ``TypeError`` (naming the field) before anything is sent if part of the
        signal cannot be JSON.
        """
        message = signal(kind or _kind_of(payload), to_jsonable(payload))
        self.published += 1
        if self.share is not None:
            self.share(message)
        return self.deliver(message)

    def deliver(self, message: dict[str, Any]) -> int:
        """Send a signal message as it is (this gateway's own, or one another gateway
        shared) to the subscribers, and keep it for replay."""
        self._history.append(message)  # a no-op with history=0 (maxlen 0)
        return self.manager.broadcast(SIGNALS, message)

    def replay(self, client_id: str) -> int:
        """Queue the recent signals for one client, oldest first."""
        for message in self._history:
            self.manager.send(client_id, message)
        return len(self._history)

    def recent(self) -> list[dict[str, Any]]:
        return list(self._history)


def _kind_of(payload: object) -> str:
    if isinstance(payload, Mapping):
        kind = payload.get("kind") or payload.get("type")
        return str(kind) if kind else "signal"
    return type(payload).__name__
