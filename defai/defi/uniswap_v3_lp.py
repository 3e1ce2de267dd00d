"""Concentrated-liquidity LP maths in human units (floats): amounts, value, range bounds, IL.

Range planning and backtest valuation work in whole tokens and float prices, where the exact
integer maths of `uniswap_v3` would only add conversions. Every price here is the human pool
price P = token1 per token0 (decimals already applied), and values are in token1; for the
inverse quote divide by P. Formulas: FORMULAS.md A4-A5 (whitepaper 6.29-6.30, Elsts' note).
"""

from __future__ import annotations

import math

from defai.errors import ProtocolMathError


def _sqrt_range(price: float, price_lower: float, price_upper: float) -> tuple[float, float, float]:
    """sqrt of (price, lower, upper) after checking the range is a real, non-empty interval."""
    if not (0 < price_lower < price_upper and price > 0):
        raise ProtocolMathError(
            f"need 0 < price_lower < price_upper and price > 0, got {price_lower}, {price_upper},"
            f" {price}"
        )
    return math.sqrt(price), math.sqrt(price_lower), math.sqrt(price_upper)


def range_liquidity(
    amount0: float, amount1: float, price: float, price_lower: float, price_upper: float
) -> float:
    """Largest liquidity the amounts fund in [price_lower, price_upper] at `price`.

    Pass math.inf for a token available without limit: the other one then sets the liquidity.
    """
    if amount0 < 0 or amount1 < 0:
        raise ProtocolMathError(f"amounts must be >= 0, got {amount0}, {amount1}")
    sqrt_p, sqrt_a, sqrt_b = _sqrt_range(price, price_lower, price_upper)
    if sqrt_p <= sqrt_a:
        return amount0 * sqrt_a * sqrt_b / (sqrt_b - sqrt_a)
    if sqrt_p < sqrt_b:
        return min(amount0 * sqrt_p * sqrt_b / (sqrt_b - sqrt_p), amount1 / (sqrt_p - sqrt_a))
    return amount1 / (sqrt_b - sqrt_a)


def range_amounts(
    liquidity: float, price: float, price_lower: float, price_upper: float
) -> tuple[float, float]:
    """(token0, token1) held by `liquidity` at `price`: all token0 below the range, token1 above."""
    sqrt_p, sqrt_a, sqrt_b = _sqrt_range(price, price_lower, price_upper)
    sqrt_p = min(max(sqrt_p, sqrt_a), sqrt_b)
    return liquidity * (sqrt_b - sqrt_p) / (sqrt_p * sqrt_b), liquidity * (sqrt_p - sqrt_a)


def range_value(liquidity: float, price: float, price_lower: float, price_upper: float) -> float:
    """Value in token1 of the position's principal at `price` (fees excluded)."""
    amount0, amount1 = range_amounts(liquidity, price, price_lower, price_upper)
    return amount0 * price + amount1


def range_lower_price(amount0: float, amount1: float, price: float, price_upper: float) -> float:
    """Lower bound that uses both amounts fully, given the upper bound (Elsts, example 2)."""
    if not (amount0 > 0 and amount1 >= 0 and 0 < price < price_upper):
        raise ProtocolMathError("need amount0 > 0, amount1 >= 0 and 0 < price < price_upper")
    sqrt_p, sqrt_b = math.sqrt(price), math.sqrt(price_upper)
    sqrt_a = amount1 / (sqrt_b * amount0) + sqrt_p - amount1 / (sqrt_p * amount0)
    if sqrt_a <= 0:
        raise ProtocolMathError("too much token1 for this upper bound: no lower bound balances it")
    return sqrt_a * sqrt_a


def range_upper_price(amount0: float, amount1: float, price: float, price_lower: float) -> float:
    """Upper bound that uses both amounts fully, given the lower bound."""
    if not (amount0 >= 0 and amount1 > 0 and 0 < price_lower < price):
        raise ProtocolMathError("need amount0 >= 0, amount1 > 0 and 0 < price_lower < price")
    sqrt_p = math.sqrt(price)
    liquidity = amount1 / (sqrt_p - math.sqrt(price_lower))
    headroom = liquidity - sqrt_p * amount0
    if headroom <= 0:
        raise ProtocolMathError("too much token0 for this lower bound: no upper bound balances it")
    sqrt_b = liquidity * sqrt_p / headroom
    return sqrt_b * sqrt_b


def impermanent_loss_full_range(price_ratio: float) -> float:
    """v2-style IL of a full-range position after the price moves by price_ratio = P1/P0 (<= 0)."""
    if not price_ratio > 0:
        raise ProtocolMathError(f"price ratio must be positive, got {price_ratio}")
    return 2 * math.sqrt(price_ratio) / (1 + price_ratio) - 1


def impermanent_loss_range(
    price0: float, price1: float, price_lower: float, price_upper: float
) -> float:
    """IL of a concentrated position opened at price0, valued at price1, against holding the
    tokens it was opened with (fees excluded); narrower ranges lose more for the same move."""
    amount0, amount1 = range_amounts(1.0, price0, price_lower, price_upper)
    hold = amount0 * price1 + amount1
    return range_value(1.0, price1, price_lower, price_upper) / hold - 1
