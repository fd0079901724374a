"""What Kiwoom's stock list (ka10099) and stock info (ka10001) say about a listing beyond
the market simulator's instruments: its market, shares outstanding and listing date.

Markets are real (the three KOSDAQ names of ``mocks.market.LISTINGS``; the rest are on
KOSPI). Share counts and listing dates are drawn from the seed: the same seed lists the
same world, and nothing here pretends to be market data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from mocks.market import Instrument, Market

# ka10099 mrkt_tp: 0 코스피, 10 코스닥; the other documented values name markets the
# simulator has no listings in (ETF, ELW, K-OTC, ...), which list nothing.
KOSPI = "0"
KOSDAQ = "10"
MARKET_TYPES = frozenset(
    {"0", "10", "30", "50", "60", "70", "80", "90", "2", "3", "4", "5", "6", "7", "8", "9"}
)
MARKET_NAMES = {KOSPI: "거래소", KOSDAQ: "코스닥"}
_KOSDAQ_CODES = frozenset({"086520", "247540", "293490"})  # 에코프로, 에코프로비엠, 카카오게임즈


@dataclass(frozen=True)
class Listing:
    instrument: Instrument
    market: str  # a ka10099 mrkt_tp / marketCode
    shares: int
    listed_on: date

    @property
    def code(self) -> str:
        return self.instrument.code


class Listings:
    def __init__(self, market: Market) -> None:
        self._by_code = {
            code: _listing(market.seed, instrument)
            for code, instrument in sorted(market.instruments.items())
        }

    def get(self, code: str) -> Listing | None:
        return self._by_code.get(code)

    def of_market(self, market: str) -> list[Listing]:
        """Every listing of ka10099's ``mrkt_tp``, by code."""
        return [listing for listing in self._by_code.values() if listing.market == market]


def _listing(seed: int, instrument: Instrument) -> Listing:
    rng = random.Random(f"squall:{seed}:{instrument.code}:kiwoom-listing")
    return Listing(
        instrument=instrument,
        market=KOSDAQ if instrument.code in _KOSDAQ_CODES else KOSPI,
        shares=rng.randint(20_000_000, 6_000_000_000),
        listed_on=date(1975, 6, 11) + timedelta(days=rng.randint(0, 16_000)),
    )
