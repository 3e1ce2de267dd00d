"""PaperLending on Binance ETH/USDT hourly candles: a 3x loop opened on 2020-03-01 meets the
2020-03-12 crash. Every expected number is computed here by hand with `defai.defi.lending`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import shared_file

from defai.defi.lending import (
    compounded_interest,
    linear_interest,
    liquidate,
    max_liquidatable_debt_v3_3,
)
from defai.execution.amm import InsufficientBalanceError, VenueInputError
from defai.execution.lending import (
    DEFAULT_RESERVES,
    HealthFactorError,
    PaperLending,
    ReserveConfig,
)
from defai.market.csv import CsvFeed
from defai.types import Candles, to_ms, to_timestamp

OPEN = to_ms("2020-03-01")
LT = DEFAULT_RESERVES["ETH"].liquidation_threshold
SUPPLY_RATE = DEFAULT_RESERVES["ETH"].supply_rate
BORROW_RATE = DEFAULT_RESERVES["USDT"].borrow_rate


@pytest.fixture(scope="module")
def feed() -> CsvFeed:
    return CsvFeed(shared_file("data", "binance_ETHUSDT_1h.csv.gz"))


def open_loop(venue: PaperLending, equity_eth: float, leverage: float = 3.0) -> float:
    """Supply ETH, borrow USDT, buy ETH at the candle close, supply it, until `leverage` x."""
    price = venue.price("ETH")
    venue.supply("ETH", equity_eth)
    collateral, target = equity_eth, leverage * equity_eth
    while collateral < target * (1 - 1e-12):
        usdt = min(venue.account().borrowing_power, (target - collateral) * price)
        venue.borrow("USDT", usdt)
        collateral += usdt / price  # the swap, by hand, at the close
        venue.supply("ETH", usdt / price)
    return price


def first_liquidatable_bar(bars: Candles, supplied: float, debt: float) -> tuple[int, float, float]:
    """By hand: accrue bar by bar, look at each bar's low; the bar, collateral and debt then."""
    for bar, low in enumerate(bars.low):
        supplied *= linear_interest(SUPPLY_RATE, 3600)
        debt *= compounded_interest(BORROW_RATE, 3600)
        if supplied * low * LT / debt < 1:
            return bar, supplied, debt
    raise AssertionError("the loop is never liquidatable in these bars")


def test_the_loop_opens_at_3x_with_the_expected_health_factor(feed: CsvFeed) -> None:
    venue = PaperLending(feed)
    venue.advance(OPEN)
    price = open_loop(venue, 10.0)
    assert price == 217.21  # close of the 2020-02-29 23:00 candle
    account = venue.account()
    assert account.supplied["ETH"] == pytest.approx(30.0, rel=1e-12)
    assert account.borrowed["USDT"] == pytest.approx(20.0 * price, rel=1e-12)
    assert account.health_factor == pytest.approx(LT * 3 / 2, rel=1e-12)  # FORMULAS.md E
    assert account.liquidation_prices["ETH"] == pytest.approx(price / (LT * 1.5), rel=1e-12)
    assert account.borrowing_power == pytest.approx(30 * price * 0.80 - 20 * price, rel=1e-9)
    assert venue.equity("USDT") == pytest.approx(10.0 * price, rel=1e-12)


def test_interest_accrues_as_aave_compounded_debt_linear_supply(feed: CsvFeed) -> None:
    venue = PaperLending(feed)
    venue.advance(OPEN)
    price = open_loop(venue, 10.0)
    assert venue.advance("2020-03-05") == []
    hours = 4 * 24
    supplied = 30.0 * linear_interest(SUPPLY_RATE, 3600) ** hours
    debt = 20.0 * price * compounded_interest(BORROW_RATE, 3600) ** hours
    account = venue.account()
    assert account.supplied["ETH"] == pytest.approx(supplied, rel=1e-12)
    assert account.borrowed["USDT"] == pytest.approx(debt, rel=1e-12)
    close = feed.candles("ETH/USDT", "1h", to_ms("2020-03-05"), limit=1).close[-1]
    assert account.health_factor == pytest.approx(supplied * close * LT / debt, rel=1e-12)
    reserves = DEFAULT_RESERVES
    assert reserves["ETH"].supply_rate == pytest.approx(0.07 * 0.45 * 0.9)  # kink, less 10%
    assert reserves["USDT"].borrow_rate == pytest.approx(0.04)


def test_the_3x_loop_is_liquidated_in_the_2020_03_12_crash_at_the_bar_low(feed: CsvFeed) -> None:
    venue = PaperLending(feed)
    venue.advance(OPEN)
    price = open_loop(venue, 10.0)
    events = venue.advance("2020-03-14")
    assert events == venue.liquidations()

    bars = feed.candles("ETH/USDT", "1h", to_ms("2020-03-14"), since=OPEN)
    bar, supplied, debt = first_liquidatable_bar(bars, 30.0, 20.0 * price)
    low = bars.low[bar]
    health_factor = supplied * low * LT / debt
    first = events[0]
    assert to_timestamp(int(bars.ts[bar])) == to_timestamp(to_ms("2020-03-12 06:00"))
    assert first.time_ms == bars.close_ts[bar]
    assert (first.collateral_price, first.debt_price) == (low, 1.0) == (172.0, 1.0)
    assert first.health_factor == pytest.approx(health_factor, rel=1e-12)
    assert 0.95 < health_factor < 1  # a large position above 0.95: 50% of the debt (v3.3)

    cover = max_liquidatable_debt_v3_3(health_factor, debt, supplied * low, debt)
    assert cover == pytest.approx(debt / 2, rel=1e-15)
    expected = liquidate(cover, supplied, 1.0, low, 1.05, 0.10)
    assert first.debt_repaid == pytest.approx(expected.debt_repaid, rel=1e-12)
    assert first.collateral_seized == pytest.approx(expected.collateral_seized, rel=1e-12)
    assert first.protocol_fee == pytest.approx(expected.protocol_fee, rel=1e-12)
    assert first.bonus == pytest.approx(expected.collateral_seized * (1 - 1 / 1.05), rel=1e-12)
    left, owed = supplied - expected.collateral_seized, debt - expected.debt_repaid
    assert first.health_factor_after == pytest.approx(left * low * LT / owed, rel=1e-12)
    assert first.health_factor_after > 1
    # later in the crash the rest goes, the last of it with bad debt left behind
    assert all(e.time_ms < to_ms("2020-03-13 12:00") for e in events)
    assert venue.account().supplied["ETH"] == 0.0 and venue.account().borrowed["USDT"] > 0


def test_v3_2_close_factor_is_selectable(feed: CsvFeed) -> None:
    """A small loan (< 2000 USD) above HF 0.95: v3.3 repays all of it, v3.0-3.2 half."""
    repaid = {}
    for rule in ("v3.3", "v3.2"):
        venue = PaperLending(feed, close_factor=rule)
        venue.advance(OPEN)
        price = open_loop(venue, 1.0)
        first = venue.advance("2020-03-14")[0]
        debt_then = 2.0 * price * compounded_interest(BORROW_RATE, 3600) ** (11 * 24 + 7)
        repaid[rule] = first.debt_repaid / debt_then
    assert repaid["v3.3"] == pytest.approx(1.0, rel=1e-9)
    assert repaid["v3.2"] == pytest.approx(0.5, rel=1e-9)


def test_borrows_and_withdrawals_that_break_the_account_are_refused(feed: CsvFeed) -> None:
    venue = PaperLending(feed)
    venue.advance(OPEN)
    price = open_loop(venue, 10.0)
    collateral, debt = 30.0 * price, 20.0 * price

    past_one = (collateral * LT) / (debt + 2000.0)
    with pytest.raises(HealthFactorError, match=f"health factor at {past_one:.4f} < 1") as refused:
        venue.borrow("USDT", 2000.0)
    assert refused.value.health_factor == pytest.approx(past_one, rel=1e-12)

    past_ltv = (collateral * LT) / (debt + 900.0)  # above 1, yet past collateral x LTV
    assert past_ltv > 1
    with pytest.raises(HealthFactorError, match=f"borrowing power.*{past_ltv:.4f}"):
        venue.borrow("USDT", 900.0)

    leaves = (20.0 * price * LT) / debt
    with pytest.raises(HealthFactorError, match=f"health factor at {leaves:.4f} < 1"):
        venue.withdraw("ETH", 10.0)
    with pytest.raises(InsufficientBalanceError, match="supplied"):
        venue.withdraw("ETH", 31.0)
    assert venue.account().borrowed["USDT"] == pytest.approx(debt, rel=1e-12)

    receipt = venue.repay("USDT", 1e9)  # like Aave: more than owed repays the debt only
    assert receipt.amount == pytest.approx(debt, rel=1e-12)
    assert venue.account().health_factor == float("inf")
    assert venue.withdraw("ETH", 30.0).health_factor == float("inf")


def test_bad_input_is_refused_clearly(feed: CsvFeed) -> None:
    venue = PaperLending(feed)
    with pytest.raises(VenueInputError, match="advance"):
        venue.supply("ETH", 1.0)
    venue.advance(OPEN)
    with pytest.raises(VenueInputError, match="unknown asset"):
        venue.supply("BTC", 1.0)
    for amount in (-1.0, float("nan"), float("inf"), 0.0):
        with pytest.raises(VenueInputError, match="amount"):
            venue.supply("ETH", amount)
    with pytest.raises(InsufficientBalanceError, match="no USDT debt"):
        venue.repay("USDT", 1.0)
    with pytest.raises(VenueInputError, match="cannot go back"):
        venue.advance(OPEN - 1)
    with pytest.raises(VenueInputError, match="ltv"):
        ReserveConfig("ETH/USDT", ltv=0.9, liquidation_threshold=0.8)
    with pytest.raises(VenueInputError, match="one quote"):
        PaperLending(feed, {"ETH": ReserveConfig("ETH/USDT"), "BTC": ReserveConfig("BTC/USD")})


def test_the_account_and_its_liquidations_restore_after_a_restart(
    feed: CsvFeed, tmp_path: Path
) -> None:
    db = tmp_path / "venues.sqlite"
    venue = PaperLending(feed, db=db)
    venue.advance(OPEN)
    open_loop(venue, 10.0)
    venue.advance("2020-03-12 12:00")
    account, liquidations = venue.account(), venue.liquidations()
    assert liquidations
    venue.close()

    reopened = PaperLending(feed, db=db)
    assert reopened.account() == account
    assert reopened.liquidations() == liquidations
    reopened.advance("2020-03-14")
    continued = PaperLending(feed)  # the same history without a restart
    continued.advance(OPEN)
    open_loop(continued, 10.0)
    continued.advance("2020-03-12 12:00")
    continued.advance("2020-03-14")
    assert reopened.account() == continued.account()
    assert reopened.liquidations() == continued.liquidations()
    reopened.close()
