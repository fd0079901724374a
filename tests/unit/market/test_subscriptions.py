"""Subscriptions: wanted registrations, the limit, and one connection's sent/acked/refused."""

from __future__ import annotations

import pytest

from system.market import SubscriptionLimitExceeded
from system.market.subscriptions import Subscriptions

TRADES, BOOKS = "H0STCNT0", "H0STASP0"


def test_want_returns_only_what_is_new_in_the_order_asked() -> None:
    subscriptions = Subscriptions(limit=41)
    assert subscriptions.want("005930", book=False) == [(TRADES, "005930")]
    assert subscriptions.want("005930", book=True) == [(BOOKS, "005930")]
    assert subscriptions.want("005930", book=True) == []
    assert subscriptions.want("000660", book=False) == [(TRADES, "000660")]
    assert len(subscriptions) == 3
    assert subscriptions.codes() == ("000660", "005930")
    assert subscriptions.new_connection() == [
        (TRADES, "005930"),
        (BOOKS, "005930"),
        (TRADES, "000660"),
    ]


def test_the_limit_counts_registrations_and_adds_nothing_beyond_it() -> None:
    subscriptions = Subscriptions(limit=2)
    subscriptions.want("005930", book=False)
    with pytest.raises(SubscriptionLimitExceeded) as refused:
        subscriptions.want("000660", book=True)
    assert (refused.value.code, refused.value.wanted, refused.value.limit) == ("000660", 2, 2)
    assert subscriptions.codes() == ("005930",)
    assert subscriptions.want("000660", book=False) == [(TRADES, "000660")]


def test_a_registration_is_claimed_once_per_connection() -> None:
    subscriptions = Subscriptions(limit=41)
    subscriptions.want("005930", book=False)
    assert subscriptions.claim((TRADES, "005930")) is True
    assert subscriptions.claim((TRADES, "005930")) is False
    assert subscriptions.claim((TRADES, "000660")) is False  # not wanted
    subscriptions.new_connection()
    assert subscriptions.claim((TRADES, "005930")) is True


def test_only_what_was_sent_is_released() -> None:
    subscriptions = Subscriptions(limit=41)
    subscriptions.want("005930", book=True)
    subscriptions.claim((TRADES, "005930"))
    assert subscriptions.drop("005930") == [(TRADES, "005930"), (BOOKS, "005930")]
    assert subscriptions.release((TRADES, "005930")) is True
    assert subscriptions.release((TRADES, "005930")) is False
    assert subscriptions.release((BOOKS, "005930")) is False  # never sent
    assert subscriptions.drop("005930") == []


def test_acks_and_refusals_belong_to_the_connection() -> None:
    subscriptions = Subscriptions(limit=41)
    subscriptions.want("005930", book=False)
    subscriptions.want("000660", book=False)
    assert subscriptions.acknowledged((TRADES, "005930")) is True
    assert subscriptions.refuse((TRADES, "000660"), "OPSP0008 MAX SUBSCRIBE OVER") is True
    assert subscriptions.refuse((TRADES, "035420"), "OPSP0008") is False  # not wanted
    assert subscriptions.acknowledged((TRADES, "035420")) is False
    assert subscriptions.active == {(TRADES, "005930")}
    assert subscriptions.refusals() == [
        "000660 H0STCNT0 refused by the server: OPSP0008 MAX SUBSCRIBE OVER"
    ]
    assert subscriptions.trades_wanted("000660") is True
    subscriptions.new_connection()
    assert (subscriptions.active, subscriptions.refusals()) == (set(), [])
    subscriptions.drop("005930")
    assert subscriptions.trades_wanted("005930") is False
