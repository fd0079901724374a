import pytest

from mocks import krx


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (1, 1),
        (1_999, 1),
        (2_000, 5),
        (4_995, 5),
        (5_000, 10),
        (19_990, 10),
        (20_000, 50),
        (49_950, 50),
        (50_000, 100),
        (199_900, 100),
        (200_000, 500),
        (499_500, 500),
        (500_000, 1_000),
        (1_250_000, 1_000),
    ],
)
def test_tick_size_follows_the_krx_table(price: int, tick: int) -> None:
    assert krx.tick_size(price) == tick


def test_daily_limits_stay_within_thirty_percent_and_on_tick() -> None:
    for base in (1_013, 4_985, 17_890, 44_850, 71_000, 182_000, 395_000, 812_000):
        lower, upper = krx.daily_limits(base)
        assert upper <= base * 1.3 < upper + krx.tick_size(upper)
        assert lower >= base * 0.7 > lower - krx.tick_size(lower)
        assert krx.is_on_tick(lower)
        assert krx.is_on_tick(upper)


def test_daily_limits_of_samsung_at_71000() -> None:
    assert krx.daily_limits(71_000) == (49_700, 92_300)


def test_codes_are_six_digits() -> None:
    assert krx.is_stock_code("005930")
    assert not krx.is_stock_code("5930")
    assert not krx.is_stock_code("00593A")
