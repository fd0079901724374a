"""The Kiwoom face of a simulated broker: the shared world, and what only Kiwoom keeps.

Decisions where Kiwoom's documents are silent:
- Accounts. Kiwoom TRs name no account: a token acts for the account of its app key. The
  mock opens one cash account per app key in the same account book KIS orders use
  (``mocks.broker.account``), numbered from a hash of the app key (8 digits, product "11"),
  so fills, limits and the control plane's ``/_squall/account/orders`` behave the same.
  ka00001 tells a client its number.
- Order numbers are the book's order numbers cut to Kiwoom's 7 digits.
- What the book has no place for (the venue an order named, KRX/NXT/SOR) is noted here,
  and forgotten on a control-plane reset like the book itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from mocks.broker.account import Account
from mocks.broker.kiwoom.codes import KiwoomError
from mocks.broker.kiwoom.history import DailyBar, DailyHistory
from mocks.broker.kiwoom.listings import Listing, Listings
from mocks.broker.state import Broker

ACCOUNT_PRODUCT = "11"
# ka10001/ka10081/ka10060 take a venue suffix on the code: _NX (NXT), _AL (SOR). The mock
# has one order book per code, so every venue quotes the same prices.
VENUE_SUFFIXES = ("NX", "AL")


def account_number(appkey: str) -> str:
    digest = hashlib.sha256(f"squall-kiwoom-account:{appkey}".encode()).hexdigest()
    return f"{int(digest, 16) % 10**8:08d}"


def order_number(odno: str) -> str:
    return odno[-7:]


@dataclass(frozen=True)
class StockCode:
    listing: Listing
    raw: str  # as the client sent it, suffix included


class Kiwoom:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.listings = Listings(broker.market)
        self.history = DailyHistory(broker.market)
        self.venues: dict[str, str] = {}  # book order number -> dmst_stex_tp

    def reset(self) -> None:
        self.venues.clear()

    def account(self, appkey: str) -> Account:
        return self.broker.accounts.get(account_number(appkey), ACCOUNT_PRODUCT)

    def today(self) -> date:
        return self.broker.clock.wall().date()

    def stock(self, raw: str) -> StockCode:
        """The listing ``raw`` names ("005930", "005930_NX"); 1901 for an unknown venue
        suffix, 1902 for a code the market doesn't list."""
        code, separator, suffix = raw.partition("_")
        if separator and suffix.upper() not in VENUE_SUFFIXES:
            raise KiwoomError(1901, raw)
        listing = self.listings.get(code)
        if listing is None:
            raise KiwoomError(1902, raw)
        return StockCode(listing, raw)

    def bars(self, code: str) -> list[DailyBar]:
        """Today's bar and the configured history before it, newest first."""
        days = self.broker.config.kiwoom_history_days
        return self.history.bars(code, self.today(), self.broker.step(), days)
