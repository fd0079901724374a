"""What a broker's realtime protocol says, in the feed client's terms: a ``Dialect``.

``FeedClient`` keeps one connection to a broker's realtime server alive: it connects, logs
in or registers, reads, echoes heartbeats, notices stalls and gaps, and reconnects. What the
messages look like differs by broker, and only that: KIS sends ``|``-separated frames and
carries its approval key in every registration (``system.market.protocol``); Kiwoom sends
JSON keyed by ``trnm`` and logs in once with its access token
(``system.market.kiwoom_protocol``). A dialect turns each into the same few events, without
I/O (the websockets library's sans-I/O idea), so both are tested without a socket and the
client holds no broker's vocabulary.

A dialect opens a ``DialectSession`` per connection: Kiwoom's answers don't name what they
answer, so its session remembers what it asked, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from system.market.model import OrderBook
from system.market.records import Trade

Registration = tuple[str, str]  # (the dialect's type for trades or books, stock code)


@dataclass(frozen=True)
class Heartbeat:
    """The server's heartbeat; ``raw`` is exactly what must be sent back."""

    raw: str


@dataclass(frozen=True)
class Answer:
    """The server's answer to a login or a registration.

    - ``accepted``: the registration (or the login, ``registration`` None) went through;
    - ``removed``: an answer to an unregistration; nothing is kept about those;
    - ``refused``: this one registration was refused (``why``), the connection stays;
    - ``credential-refused``: the credential was not accepted (an expired approval key or
      token): get a fresh one; with ``fatal`` the connection is over too;
    - ``session-refused``: the server will not serve this session (KIS's OPSP8996: another
      process holds the appkey's one session); the connection is over.
    """

    outcome: Literal["accepted", "removed", "refused", "credential-refused", "session-refused"]
    registration: Registration | None = None
    why: str = ""
    fatal: bool = False


@dataclass(frozen=True)
class Data:
    """One data message: ``count`` records, its trades and books (an encrypted KIS frame has
    neither: this client cannot read it)."""

    count: int
    trades: tuple[Trade, ...] = ()
    books: tuple[OrderBook, ...] = ()
    encrypted: bool = False


Event = Heartbeat | Answer | Data


class DialectSession(Protocol):
    """One connection's protocol state."""

    def opening(self) -> list[str]:
        """What to send as soon as the connection is open (Kiwoom: LOGIN)."""
        ...

    def registration(self, registration: Registration, *, subscribe: bool) -> str:
        """The message that registers (or, not ``subscribe``, removes) ``registration``.
        It may carry the credential: never log it."""
        ...

    def parse(self, text: str, *, now: float) -> Event:
        """The event ``text`` means; ``FeedProtocolError`` if the message is not valid.
        ``now`` is the loop time it arrived (an order book is stamped with it)."""
        ...


class Dialect(Protocol):
    """One broker's realtime protocol."""

    @property
    def name(self) -> str:
        """The broker's name, for messages ("KIS", "Kiwoom")."""
        ...

    @property
    def trades(self) -> str:
        """The registration type of a code's trades (KIS H0STCNT0, Kiwoom 0B)."""
        ...

    @property
    def books(self) -> str | None:
        """The registration type of a code's order book; None when this client reads none."""
        ...

    @property
    def credential(self) -> str:
        """What the credential is called, for status messages ("approval key", "token")."""
        ...

    def session(self, credential: str, *, custtype: str) -> DialectSession:
        """A connection's protocol state, logged in with ``credential``."""
        ...
