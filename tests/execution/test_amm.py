"""PaperAMM on a hand-made market: fees in and out of range, value and IL, swaps, restarts.

Every expected number is computed here by hand from `defai.defi` (uniswap_v3, uniswap_v3_lp,
constant_product, mev), never read back from the venue.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from defai.defi.constant_product import amount_out
from defai.defi.mev import concentrated_pool, optimal_sandwich
from defai.defi.uniswap_v3 import (
    MAX_SQRT_RATIO,
    MIN_SQRT_RATIO,
    Q96,
    get_amounts_for_liquidity,
    get_sqrt_ratio_at_tick,
    price_to_sqrt_price_x96,
)
from defai.defi.uniswap_v3_lp import impermanent_loss_range, range_value
from defai.execution.amm import (
    InsufficientBalanceError,
    PaperAMM,
    PoolConfig,
    SlippageError,
    VenueInputError,
    range_overlap,
)
from defai.market.feed import Series, SeriesStore, StoreFeed
from defai.types import to_ms

HOUR = 3_600_000
T0 = to_ms("2021-01-01")
PAIR = "ETH/USDT"
DEPTH = 50_000_000.0
# (open, high, low, close, volume in ETH); bar i closes at T0 + (i + 1) hours
BARS = [
    (2000.0, 2000.0, 2000.0, 2000.0, 100.0),  # the price when we mint
    (2000.0, 2050.0, 1950.0, 2000.0, 1000.0),  # inside [1800, 2200]
    (2600.0, 2700.0, 2600.0, 2650.0, 5000.0),  # entirely above it
    (2150.0, 2300.0, 2100.0, 2150.0, 800.0),  # half inside
    (2100.0, 2110.0, 2090.0, 2100.0, 300.0),  # back inside, price moved from 2000
]


def at(bar: int) -> int:
    """The close time of a bar."""
    return T0 + (bar + 1) * HOUR


@pytest.fixture
def feed() -> StoreFeed:
    o, h, lo, c, v = (np.array(column) for column in zip(*BARS, strict=True))
    ts = T0 + np.arange(len(BARS), dtype=np.int64) * HOUR
    return StoreFeed(SeriesStore([Series.from_arrays(PAIR, "1h", ts, o, h, lo, c, v)]))


def venue(
    feed: StoreFeed, db: Path | None = None, depth: float = DEPTH, mev: bool = True
) -> PaperAMM:
    pool = PoolConfig(depth=depth, gas_cost=2.0, volume_share=1.0, mev=mev)
    amm = PaperAMM(feed, [pool], {"ETH": 10.0, "USDT": 30_000.0}, db=db)
    amm.advance(at(0))
    return amm


def pool_liquidity(price: float, depth: float = DEPTH) -> float:
    """The configured depth as raw L: virtual reserves worth 2 L sqrt(P_raw) USDT units."""
    return depth * 1e6 / (2 * math.sqrt(price * 1e-12))


def fee_by_hand(bar: int, liquidity: int, in_range: float = 1.0) -> float:
    _, _, _, close, volume = BARS[bar]
    share = liquidity / (liquidity + pool_liquidity(close))
    return volume * close * 0.003 * in_range * share


def test_fees_only_while_the_range_holds_the_price(feed: StoreFeed) -> None:
    amm = venue(feed)
    amm.mint(PAIR, 1800.0, 2200.0, amount0_max=1.0, amount1_max=5000.0)
    (position,) = amm.positions()
    assert position.fees_owed == 0.0

    amm.advance(at(1))  # a bar entirely inside the range
    expected = fee_by_hand(1, position.liquidity)
    assert amm.positions()[0].fees_owed == pytest.approx(expected, rel=1e-12)

    amm.advance(at(2))  # a bar entirely above the range earns nothing
    assert amm.positions()[0].fees_owed == pytest.approx(expected, rel=1e-12)

    amm.advance(at(3))  # [2100, 2300] against 2200 rounded up to the next usable tick
    inside = (position.price_upper - 2100.0) / (2300.0 - 2100.0)
    assert 0.5 < inside < 0.55
    expected += fee_by_hand(3, position.liquidity, inside)
    assert amm.positions()[0].fees_owed == pytest.approx(expected, rel=1e-12)

    receipt = amm.collect(position.id)
    assert receipt.amount1 == pytest.approx(expected, abs=1e-6)
    assert amm.positions()[0].fees_owed == 0.0


def test_a_position_earns_nothing_on_a_bar_it_was_not_there_for(feed: StoreFeed) -> None:
    amm = venue(feed)
    amm.advance(at(1))
    amm.mint(PAIR, 1800.0, 2200.0, amount0_max=1.0, amount1_max=5000.0)
    amm.advance(at(2))  # the only new bar is out of range
    assert amm.positions()[0].fees_owed == 0.0


def test_range_overlap_edges() -> None:
    lows, highs = np.array([100.0, 90.0, 150.0, 120.0]), np.array([100.0, 110.0, 160.0, 120.0])
    overlap = range_overlap(lows, highs, np.array(95.0), np.array(120.0))
    # a point inside, half of [90, 110], entirely above, a point on the (open) upper bound
    assert overlap.tolist() == [1.0, 0.75, 0.0, 0.0]


def test_value_and_impermanent_loss_follow_the_v3_maths(feed: StoreFeed) -> None:
    amm = venue(feed)
    minted = amm.mint(PAIR, 1800.0, 2200.0, amount0_max=1.0, amount1_max=5000.0)
    amm.advance(at(4))
    (position,) = amm.positions()
    assert position.in_range

    sqrt_price = price_to_sqrt_price_x96(2100.0, 18, 6)
    raw0, raw1 = get_amounts_for_liquidity(
        sqrt_price,
        get_sqrt_ratio_at_tick(position.tick_lower),
        get_sqrt_ratio_at_tick(position.tick_upper),
        position.liquidity,
    )
    principal = raw0 / 1e18 * 2100.0 + raw1 / 1e6
    assert (position.amount0, position.amount1) == (raw0 / 1e18, raw1 / 1e6)
    assert position.value == pytest.approx(principal + position.fees_owed, rel=1e-12)
    # the same principal from the human-unit maths: L_human = L_raw / sqrt(10^18 * 10^6)
    human = range_value(
        position.liquidity / 1e12, 2100.0, position.price_lower, position.price_upper
    )
    assert human == pytest.approx(principal, rel=1e-9)

    il = impermanent_loss_range(2000.0, 2100.0, position.price_lower, position.price_upper)
    assert position.impermanent_loss == pytest.approx(il, rel=1e-12)
    held = minted.amount0 * 2100.0 + minted.amount1
    assert principal / held - 1 == pytest.approx(il, rel=1e-6)
    assert il < 0

    balances = amm.balances()
    assert amm.equity("USDT") == pytest.approx(
        balances["ETH"] * 2100.0 + balances["USDT"] + position.value, rel=1e-12
    )


def test_mint_burn_round_trip_loses_only_rounding_and_gas(feed: StoreFeed) -> None:
    amm = venue(feed)
    before = amm.balances()
    minted = amm.mint(
        PAIR, lower_tick=-202_000, upper_tick=-198_001, amount0_max=2.0, amount1_max=3000.0
    )
    (position,) = amm.positions()
    assert (position.tick_lower, position.tick_upper) == (-202_020, -198_000)  # outward to 60s
    assert 0 < minted.amount0 <= 2.0 and 0 < minted.amount1 <= 3000.0
    burned = amm.burn(position.id)
    assert amm.positions() == []  # no fees owed: the position is gone
    after = amm.balances()
    eth_lost = round((before["ETH"] - after["ETH"]) * 1e18)
    usdt_lost = round((before["USDT"] - after["USDT"]) * 1e6) - 2 * 2_000_000  # two actions' gas
    assert 0 <= eth_lost <= 1 and 0 <= usdt_lost <= 1
    assert burned.amount0 == pytest.approx(minted.amount0, abs=1e-18)


def test_mint_refuses_what_the_wallet_cannot_pay_and_changes_nothing(feed: StoreFeed) -> None:
    amm = venue(feed)
    before = amm.balances()
    with pytest.raises(InsufficientBalanceError, match="ETH"):
        amm.mint(PAIR, 1800.0, 2200.0, amount0_max=50.0, amount1_max=1e6)
    with pytest.raises(VenueInputError, match="fund no liquidity"):
        amm.mint(PAIR, 2500.0, 3000.0, amount0_max=0.0, amount1_max=1000.0)  # needs ETH
    with pytest.raises(VenueInputError, match="lower_price and upper_price"):
        amm.mint(PAIR, 1800.0, upper_tick=0, amount0_max=1.0)
    assert amm.balances() == before and amm.positions() == []


def test_swap_prices_through_the_configured_depth(feed: StoreFeed) -> None:
    amm = venue(feed, mev=False)
    receipt = amm.swap(PAIR, "sell", 5.0, 9000.0)
    # inside one range the v3 swap is the constant product over the virtual reserves
    liquidity = pool_liquidity(2000.0)
    sqrt_price = math.sqrt(2000.0 * 1e-12)
    expected = amount_out(5e18, liquidity / sqrt_price, liquidity * sqrt_price, 0.003) / 1e6
    assert receipt.amount_out == pytest.approx(expected, rel=1e-9)
    assert receipt.fee == pytest.approx(5.0 * 0.003, rel=1e-9)
    assert 0 < receipt.price_impact < 1e-3
    assert amm.balances() == pytest.approx({"ETH": 5.0, "USDT": 30_000.0 + expected - 2.0})


def test_swap_below_min_out_or_without_a_floor_is_refused(feed: StoreFeed) -> None:
    amm = venue(feed)
    before = amm.balances()
    with pytest.raises(SlippageError, match="below min_amount_out"):
        amm.swap(PAIR, "sell", 1.0, 2000.0)  # the mid price, before fee and impact
    for floor in (0.0, -1.0):
        with pytest.raises(SlippageError, match="min_amount_out must be > 0"):
            amm.swap(PAIR, "buy", 1000.0, floor)
    with pytest.raises(VenueInputError):
        amm.swap(PAIR, "sell", float("nan"), 1.0)
    with pytest.raises(InsufficientBalanceError):
        amm.swap(PAIR, "sell", 11.0, 1.0)
    assert amm.balances() == before


def test_a_loose_floor_on_a_thin_pool_pays_the_expected_sandwich(feed: StoreFeed) -> None:
    thin = 1_000_000.0  # virtual reserves of 250 ETH: an 8 ETH sale moves the price ~3%
    amm = venue(feed, depth=thin, mev=True)
    quote = venue(feed, depth=thin, mev=False).swap(PAIR, "sell", 8.0, 1.0).amount_out
    floor = quote * 0.97
    receipt = amm.swap(PAIR, "sell", 8.0, floor)
    liquidity, sqrt_price = pool_liquidity(2000.0, thin), math.sqrt(2000.0 * 1e-12)
    curve = concentrated_pool(
        liquidity,
        sqrt_price,
        MIN_SQRT_RATIO / Q96,
        MAX_SQRT_RATIO / Q96,
        zero_for_one=True,
        fee=0.003,
    )
    attack = optimal_sandwich(curve, 8e18, 1 - floor / quote, 2 * 2.0 / 2000.0 * 1e18)
    assert attack.profitable
    assert receipt.mev_cost == pytest.approx(min(attack.victim_loss / 1e6, quote - floor), abs=2e-6)
    assert receipt.amount_out == pytest.approx(quote - receipt.mev_cost, abs=1e-6)
    assert receipt.amount_out >= floor
    tight = amm.swap(PAIR, "sell", 0.01, 0.01 * 2000.0 * 0.99)  # too small to pay the gas
    assert tight.mev_cost == 0.0


def test_positions_restore_after_a_restart(feed: StoreFeed, tmp_path: Path) -> None:
    db = tmp_path / "venues.sqlite"
    amm = venue(feed, db)
    amm.mint(PAIR, 1800.0, 2200.0, amount0_max=1.0, amount1_max=5000.0)
    amm.advance(at(1))
    positions, balances = amm.positions(), amm.balances()
    amm.close()

    config = PoolConfig(depth=DEPTH, gas_cost=2.0, volume_share=1.0)
    reopened = PaperAMM(feed, [config], {"ETH": 1.0}, db=db)
    assert reopened.positions() == positions
    assert reopened.balances() == balances  # the saved wallet wins over the new balances
    with pytest.raises(VenueInputError, match="cannot go back"):
        reopened.advance(at(0))
    reopened.advance(at(3))
    assert reopened.positions()[0].fees_owed > positions[0].fees_owed
    reopened.close()


def test_bad_input_is_refused_clearly(feed: StoreFeed) -> None:
    unstarted = PaperAMM(feed, [PoolConfig()], {"ETH": 1.0})
    with pytest.raises(VenueInputError, match="advance"):
        unstarted.swap(PAIR, "sell", 0.1, 1.0)
    with pytest.raises(VenueInputError, match="unknown asset"):
        PaperAMM(feed, [PoolConfig()], {"BTC": 1.0})
    with pytest.raises(VenueInputError, match=">= 0"):
        PaperAMM(feed, [PoolConfig()], {"ETH": -1.0})
    with pytest.raises(VenueInputError, match="fee tier"):
        PoolConfig(fee_pips=2500)
    amm = venue(feed)
    with pytest.raises(VenueInputError, match="unknown pair"):
        amm.swap("BTC/USDT", "sell", 1.0, 1.0)
    with pytest.raises(VenueInputError, match="side"):
        amm.swap(PAIR, "short", 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(VenueInputError, match="no open position"):
        amm.burn(42)
    with pytest.raises(VenueInputError, match="cannot value"):
        amm.equity("EUR")
    amm.advance(at(2))
    with pytest.raises(VenueInputError, match="cannot go back"):
        amm.advance(at(1))
