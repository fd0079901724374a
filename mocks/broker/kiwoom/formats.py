"""How Kiwoom writes numbers: all strings, some signed, some zero-padded.

- Quote prices are "signed" (부호가 포함된 숫자): "+72100" above the previous close,
  "-69500" below, "71000" at it. Changes carry their own sign ("+600", "-600", "0").
- Rates are percentages with two decimals and a sign ("+0.16", "-2.05", "0.00").
- Account figures are zero-padded to a fixed width with the sign inside it
  ("000000000373500", "-00000000995004"): kt00007, kt00018, ka10099 in the API guide.
"""

from __future__ import annotations


def signed_price(price: int, reference: int) -> str:
    """``price`` with the sign of its move from ``reference``."""
    if price > reference:
        return f"+{price}"
    if price < reference:
        return f"-{price}"
    return str(price)


def signed(value: int) -> str:
    return f"+{value}" if value > 0 else str(value)


def signed_rate(percent: float) -> str:
    rounded = round(percent, 2)
    return "0.00" if rounded == 0 else f"{rounded:+.2f}"


def rate(percent: float) -> str:
    """A percentage without a plus sign (kt00018's prft_rt, poss_rt)."""
    rounded = round(percent, 2)
    return f"{0.0 if rounded == 0 else rounded:.2f}"


def padded(value: int, width: int) -> str:
    """``value`` zero-padded to ``width`` characters, a minus sign taking the first."""
    if value < 0:
        return "-" + str(-value).zfill(width - 1)
    return str(value).zfill(width)
