"""Which realtime registrations the client wants, and where each stands on this connection.

A registration is one (type, code) pair at the server: a code's trades (KIS H0STCNT0,
Kiwoom 0B) and, when asked and the broker's dialect reads them, its order book (KIS
H0STASP0). KIS counts registrations against a per-appkey limit. What is *wanted* outlives
connections; what was *sent*, *acknowledged* or *refused* belongs to the current
connection and starts over with the next one, which is how a refused registration is asked
again on reconnect and never in a loop on one connection.
"""

from __future__ import annotations

from system.market.columns import BOOKS, TRADES
from system.market.dialect import Registration
from system.market.errors import SubscriptionLimitExceeded


class Subscriptions:
    """The wanted registrations (in the order asked) and this connection's view of them."""

    def __init__(self, limit: int, *, trades: str = TRADES, books: str | None = BOOKS) -> None:
        self.limit = limit
        self.trades = trades
        self.books = books  # None: no books to register, whatever is asked
        self._wanted: dict[Registration, None] = {}  # an insertion-ordered set
        self._sent: set[Registration] = set()
        self.active: set[Registration] = set()
        self.refused: dict[Registration, str] = {}

    def __contains__(self, registration: object) -> bool:
        return registration in self._wanted

    def __len__(self) -> int:
        return len(self._wanted)

    def codes(self) -> tuple[str, ...]:
        """Every wanted code, sorted."""
        return tuple(sorted({code for _, code in self._wanted}))

    def trades_wanted(self, code: str) -> bool:
        return (self.trades, code) in self._wanted

    def want(self, code: str, *, book: bool) -> list[Registration]:
        """Add ``code``'s trades (and book); the registrations that are new.

        ``SubscriptionLimitExceeded`` (and nothing added) if they would pass the limit.
        """
        books = [(self.books, code)] if book and self.books is not None else []
        asked = [(self.trades, code), *books]
        new = [registration for registration in asked if registration not in self._wanted]
        if len(self._wanted) + len(new) > self.limit:
            raise SubscriptionLimitExceeded(code=code, wanted=len(new), limit=self.limit)
        self._wanted.update(dict.fromkeys(new))
        return new

    def drop(self, code: str) -> list[Registration]:
        """Remove every registration of ``code``; the ones removed."""
        dropped = [registration for registration in self._wanted if registration[1] == code]
        for registration in dropped:
            del self._wanted[registration]
            self.active.discard(registration)
            self.refused.pop(registration, None)
        return dropped

    def new_connection(self) -> list[Registration]:
        """Forget the last connection's view; every wanted registration, to send again."""
        self._sent.clear()
        self.active.clear()
        self.refused.clear()
        return list(self._wanted)

    def claim(self, registration: Registration) -> bool:
        """Whether to send a subscribe for ``registration`` now: it is wanted and was not
        sent on this connection yet. Claimed before sending, so concurrent callers don't
        send it twice."""
        if registration not in self._wanted or registration in self._sent:
            return False
        self._sent.add(registration)
        return True

    def release(self, registration: Registration) -> bool:
        """Whether an unsubscribe for ``registration`` is due (it was sent on this
        connection); it counts as not sent from now on."""
        if registration not in self._sent:
            return False
        self._sent.discard(registration)
        return True

    def acknowledged(self, registration: Registration) -> bool:
        """The server accepted ``registration``; False if it is not wanted (any more)."""
        if registration not in self._wanted:
            return False
        self.active.add(registration)
        self.refused.pop(registration, None)
        return True

    def refuse(self, registration: Registration, why: str) -> bool:
        """The server refused ``registration`` with ``why``; False if it is not wanted."""
        if registration not in self._wanted:
            return False
        self.refused[registration] = why
        return True

    def refusals(self) -> list[str]:
        """One sentence per refused registration, for the status detail."""
        return [
            f"{code} {tr_id} refused by the server: {why}"
            for (tr_id, code), why in self.refused.items()
        ]
