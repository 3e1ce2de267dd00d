"""What the built-in strategies share: typed tool calls, horizons, and MEV-checked swaps.

Every swap a built-in strategy proposes goes through `guarded_swap`: `mev_check` on the pool the
swap will hit, then the whole swap at a slippage no sandwich pays at, or one chunk of it (the
rest follows on later ticks, one block each, as the tool's chunking assumes), or a Hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from defai.agent.intents import Hold, Swap
from defai.agent.toolbox import ToolBox, ToolCallError
from defai.defi.lending import SECONDS_PER_YEAR
from defai.defi.uniswap_v3 import FEE_PIPS_DENOMINATOR
from defai.errors import ConfigError
from defai.types import timeframe_ms
from tools.mev import MevCheckResult

ResultT = TypeVar("ResultT", bound=BaseModel)


def call_tool(
    toolbox: ToolBox, name: str, args: Mapping[str, Any], result: type[ResultT]
) -> ResultT:
    """The tool's answer as its result model. A replay answers with JSON, not the model, so the
    answer is validated either way; one that does not fit counts as a refusal."""
    answer = toolbox.call(name, args)
    try:
        return result.model_validate(answer)
    except ValidationError as exc:
        raise ToolCallError(f"{name}: unexpected answer ({exc.error_count()} problems)") from None


class _Cited(Protocol):
    topic: str  # a tool result's InferenceSummary


def topics_of(*summaries: Iterable[_Cited]) -> tuple[str, ...]:
    """The topics behind tool results' `inferences`, each once, in order: what an intent cites."""
    return tuple(dict.fromkeys(summary.topic for group in summaries for summary in group))


def require(owner: object, condition: bool, rule: str) -> None:
    """A strategy's parameters checked when it is made, not when a tick trips over them."""
    if not condition:
        raise ConfigError(f"{type(owner).__name__}: {rule} (got {owner})")


def horizon_years(horizon: str) -> float:
    """'24h' -> years, counted as the lending maths and the tools count them (365 days)."""
    return timeframe_ms(horizon) / (SECONDS_PER_YEAR * 1000)


@dataclass(frozen=True, slots=True)
class SwapRules:
    """How a strategy swaps on the AMM without being sandwiched. The pool is modelled as the
    paper AMM trades it: one constant-product curve whose virtual reserves are worth `pool_depth`
    quote (PoolConfig.depth), with an attacker paying `attacker_gas` for both legs."""

    max_slippage: float = 0.005
    """Widest tolerance a swap may carry; with the 0.3% pool fee this stays inside the
    RiskGuard's default 1% max_slippage, which is measured before fees."""
    min_slippage: float = 0.001
    """Tighter than this, a swap would revert on ordinary price moves: chunk instead."""
    pool_depth: float = 1_000_000_000.0
    """Quote value of the pool's in-range virtual reserves (the paper AMM's default depth)."""
    attacker_gas: float = 10.0
    """Attacker's gas for front- and back-run, in quote (twice the paper AMM's gas_cost)."""
    max_chunks: int = 20
    """Most chunks a swap is split into before it is deemed to need a private route."""

    def __post_init__(self) -> None:
        require(self, 0 < self.min_slippage <= self.max_slippage < 1, "need 0 < min <= max < 1")
        require(self, self.pool_depth > 0 and self.attacker_gas >= 0, "need depth > 0, gas >= 0")
        require(self, 1 <= self.max_chunks <= 1000, "max_chunks must be in [1, 1000]")


def guarded_swap(
    toolbox: ToolBox,
    rules: SwapRules,
    *,
    pair: str,
    side: Literal["buy", "sell"],
    amount_in: float,
    price: float,
    fee_tier: int,
    reason: str,
    topics: tuple[str, ...],
) -> list[object]:
    """`amount_in` swapped at the widest slippage (up to the rules' max) no sandwich pays at, and
    min_amount_out from it; else the first of the chunks `mev_check` suggests; else a Hold."""
    check = _mev_check(toolbox, rules, side, amount_in, price, fee_tier)
    if isinstance(check, Hold):
        return [check]
    chunks = check.suggested_chunks
    if min(rules.max_slippage, check.max_safe_slippage) < rules.min_slippage and chunks:
        amount_in /= chunks
        reason += f" (chunk 1 of {chunks}: a sandwich pays on the whole swap)"
        check = _mev_check(toolbox, rules, side, amount_in, price, fee_tier)
        if isinstance(check, Hold):
            return [check]
    slippage = min(rules.max_slippage, check.max_safe_slippage)
    if slippage < rules.min_slippage:
        return [Hold(reason=f"{reason}, but {check.advice}; no private route here: holding")]
    return [
        Swap(
            pair=pair,
            side=side,
            amount_in=amount_in,
            min_amount_out=check.victim_expected_out * (1 - slippage),
            reason=f"{reason}; no sandwich pays at {slippage:.3%} slippage",
            topics=topics,
        )
    ]


def _mev_check(
    toolbox: ToolBox,
    rules: SwapRules,
    side: Literal["buy", "sell"],
    amount_in: float,
    price: float,
    fee_tier: int,
) -> MevCheckResult | Hold:
    """mev_check on the pool as the paper AMM trades it (virtual reserves worth the depth at
    the price), the attacker's gas in the token sold; a refusal is a Hold."""
    reserve_base, reserve_quote = rules.pool_depth / (2 * price), rules.pool_depth / 2
    selling_base = side == "sell"
    pool = {
        "kind": "constant_product",
        "reserve_in": reserve_base if selling_base else reserve_quote,
        "reserve_out": reserve_quote if selling_base else reserve_base,
        "fee": fee_tier / FEE_PIPS_DENOMINATOR,
    }
    args = {
        "pool": pool,
        "amount_in": amount_in,
        "slippage": rules.max_slippage,
        "gas_cost": rules.attacker_gas / price if selling_base else rules.attacker_gas,
        "max_chunks": rules.max_chunks,
    }
    try:
        return call_tool(toolbox, "mev_check", args, MevCheckResult)
    except ToolCallError as exc:
        return Hold(reason=f"no swap without an MEV check: {exc}")
