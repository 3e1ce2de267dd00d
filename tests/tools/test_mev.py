"""mev_check against the three-swap sandwich of Zhou et al., written out here leg by leg."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from scipy.optimize import brentq

from tools.mev import MevCheckResult

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]
POOL = {"kind": "constant_product", "reserve_in": 1_000_000.0, "reserve_out": 500.0, "fee": 0.003}
SWAP = {"pool": POOL, "amount_in": 20_000.0, "slippage": 0.01, "gas_cost": 10.0}


def legs(x: float, y: float, v: float, a: float, fee: float, joins: bool) -> tuple[float, float]:
    """(victim's output, attacker's back-run output) for front-run a; `joins`: the fee stays."""
    g = 1 - fee
    d = 1.0 if joins else g
    front_out = g * a * y / (x + g * a)
    x1, y1 = x + d * a, y - front_out
    victim_out = g * v * y1 / (x1 + g * v)
    x2, y2 = x1 + d * v, y1 - victim_out
    return victim_out, g * front_out * x2 / (y2 + g * front_out)


def best_sandwich(
    x: float, y: float, v: float, slippage: float, fee: float, joins: bool = True
) -> tuple[float, float, float]:
    """(front-run, gross profit, victim loss) when the victim's tolerance caps the front-run."""
    quote = (1 - fee) * v * y / (x + (1 - fee) * v)
    least = (1 - slippage) * quote
    a = brentq(lambda a: legs(x, y, v, a, fee, joins)[0] - least, 0, x, xtol=1e-12, rtol=1e-14)
    victim_out, back = legs(x, y, v, a, fee, joins)
    return a, back - a, quote - victim_out


def check(tools: dict[str, BaseTool], call: Call, **args: Any) -> MevCheckResult:
    message = call(tools["mev_check"], {**SWAP, **args})
    assert message.status == "success", message.content
    assert isinstance(message.artifact, MevCheckResult)
    return message.artifact


def test_profitable_sandwich_on_a_constant_product_pool(
    tools: dict[str, BaseTool], call: Call
) -> None:
    result = check(tools, call)
    a, gross, loss = best_sandwich(1e6, 500, 20_000, 0.01, 0.003)
    assert result.sandwich_profitable and result.slippage_binds
    assert result.front_run == pytest.approx(a, rel=1e-9)
    assert result.attacker_profit == pytest.approx(gross - 10, rel=1e-9)
    assert result.victim_loss == pytest.approx(loss, rel=1e-9)
    assert result.victim_loss_pct == pytest.approx(1.0, rel=1e-9)  # the whole tolerance

    # The safe slippage is where the best sandwich's gross profit only just pays the gas.
    safe = brentq(lambda s: best_sandwich(1e6, 500, 20_000, s, 0.003)[1] - 10, 1e-9, 0.01)
    assert result.max_safe_slippage == pytest.approx(safe, rel=1e-6)

    n = result.suggested_chunks
    assert n is not None and not result.use_private_route
    assert best_sandwich(1e6, 500, 20_000 / n, 0.01, 0.003)[1] <= 10
    assert best_sandwich(1e6, 500, 20_000 / (n - 1), 0.01, 0.003)[1] > 10
    assert f"split into {n} swaps" in result.advice


def test_small_swap_is_safe_and_a_whale_needs_a_private_route(
    tools: dict[str, BaseTool], call: Call
) -> None:
    small = check(tools, call, amount_in=100.0)
    assert not small.sandwich_profitable and small.victim_loss == 0
    assert small.max_safe_slippage > 0.01 and small.suggested_chunks is None
    assert small.advice.startswith("no sandwich pays")

    whale = check(tools, call, amount_in=200_000.0, gas_cost=0.01, max_chunks=3)
    assert whale.sandwich_profitable and whale.use_private_route
    assert whale.suggested_chunks is None and "private route" in whale.advice


def test_concentrated_range_uses_virtual_reserves_in_whole_tokens(
    tools: dict[str, BaseTool], call: Call
) -> None:
    # WETH (18) / USDC (6) at 2000 USDC per WETH, virtual reserves 1000 WETH and 2M USDC.
    human_liquidity = math.sqrt(1000 * 2_000_000)
    pool = {
        "kind": "concentrated",
        "liquidity": human_liquidity * 1e12,
        "price": 2000.0,
        "price_lower": 1900.0,
        "price_upper": 2100.0,
        "fee_tier": 3000,
        "token0_decimals": 18,
        "token1_decimals": 6,
        "zero_for_one": False,  # the victim sells USDC
    }
    result = check(tools, call, pool=pool, amount_in=20_000.0, slippage=0.01, gas_cost=5.0)
    sqrt_price = math.sqrt(2000 * 1e-12)
    reserve_usdc, reserve_weth = (
        human_liquidity * 1e12 * sqrt_price,
        human_liquidity * 1e12 / sqrt_price,
    )
    a, gross, loss = best_sandwich(reserve_usdc, reserve_weth, 20_000e6, 0.01, 0.003, joins=False)
    assert result.front_run == pytest.approx(a / 1e6, rel=1e-6)
    assert result.attacker_profit == pytest.approx((gross - 5e6) / 1e6, rel=1e-6)
    assert result.victim_loss == pytest.approx(loss / 1e18, rel=1e-6)
    assert result.victim_expected_out == pytest.approx(20_000 * 0.997 / 2000, rel=0.02)

    leaving = call(tools["mev_check"], {**SWAP, "pool": pool, "amount_in": 400_000.0})
    assert leaving.status == "error" and "leave the active tick range" in leaving.content


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"slippage": 1.0}, "slippage: Input should be less than 1"),
        ({"amount_in": -5}, "amount_in: Input should be greater than 0"),
        ({"pool": {**POOL, "kind": "curve"}}, "pool: Input tag 'curve' found using 'kind'"),
        ({"pool": {**POOL, "reserve_out": 0}}, "pool.constant_product.reserve_out: Input should"),
        (
            {
                "pool": {
                    "kind": "concentrated",
                    "liquidity": 1e18,
                    "price": 2200.0,
                    "price_lower": 1900.0,
                    "price_upper": 2100.0,
                    "fee_tier": 500,
                    "zero_for_one": True,
                }
            },
            "need price_lower <= price <= price_upper",
        ),
        (
            {
                "pool": {
                    "kind": "concentrated",
                    "liquidity": 1e18,
                    "price": 2000.0,
                    "price_lower": 2000.0,
                    "price_upper": 2000.0,
                    "fee_tier": 500,
                    "zero_for_one": True,
                }
            },
            "price_lower must be below price_upper",
        ),
    ],
)
def test_bad_arguments_are_explained(
    tools: dict[str, BaseTool], call: Call, args: dict[str, Any], expected: str
) -> None:
    message = call(tools["mev_check"], {**SWAP, **args})
    assert message.status == "error" and expected in message.content
