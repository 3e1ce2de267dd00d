"""mev_check: would this swap be sandwiched, what would it cost, and how to avoid it.

Zhou et al.'s model (FORMULAS.md D) on a constant-product pool, or on one active Uniswap v3
range through its virtual reserves: valid only while all three swaps stay inside the range (the
tool refuses otherwise). Gas is the attacker's for both legs, in the token sold. Chunking
assumes each chunk lands in its own block on restored reserves; the victim's extra gas per chunk
is not counted.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, model_validator

from defai.defi.mev import (
    CurvePool,
    chunked_attack_profit,
    chunks_to_deter,
    concentrated_pool,
    max_safe_slippage,
    optimal_sandwich,
)
from defai.defi.uniswap_v3 import FEE_PIPS_DENOMINATOR, Q96, price_to_sqrt_price_x96
from tools._base import DefaiTool


class ConstantProductPool(BaseModel):
    kind: Literal["constant_product"] = Field(description="A Uniswap v2-style x*y=k pool.")
    reserve_in: float = Field(gt=0, description="Reserve of the token the swap sells.")
    reserve_out: float = Field(gt=0, description="Reserve of the token the swap buys.")
    fee: float = Field(
        default=0.003, ge=0, lt=1, description="Swap fee as a fraction (0.003 = 0.3%)."
    )


class ConcentratedRange(BaseModel):
    kind: Literal["concentrated"] = Field(description="The active range of a Uniswap v3 pool.")
    liquidity: float = Field(gt=0, description="Active liquidity L, raw units (liquidity()).")
    price: float = Field(gt=0, description="Pool price, token1 per token0, whole tokens.")
    price_lower: float = Field(gt=0, description="Active range's lower price (token1/token0).")
    price_upper: float = Field(gt=0, description="Active range's upper price (token1/token0).")
    fee_tier: Literal[100, 500, 3000, 10000] = Field(description="Fee in pips (3000 = 0.3%).")
    token0_decimals: int = Field(default=18, ge=0, le=36, description="Decimals of token0.")
    token1_decimals: int = Field(default=18, ge=0, le=36, description="Decimals of token1.")
    zero_for_one: bool = Field(description="True if the swap sells token0 for token1.")

    @model_validator(mode="after")
    def _price_inside(self) -> Self:
        if not self.price_lower <= self.price <= self.price_upper:
            raise ValueError(
                f"need price_lower <= price <= price_upper, got {self.price_lower}, "
                f"{self.price}, {self.price_upper}"
            )
        if not self.price_lower < self.price_upper:
            raise ValueError("price_lower must be below price_upper")
        return self

    def decimals_in_out(self) -> tuple[int, int]:
        if self.zero_for_one:
            return self.token0_decimals, self.token1_decimals
        return self.token1_decimals, self.token0_decimals

    def curve(self) -> CurvePool:
        """The range as a constant-product curve in raw units (virtual reserves)."""

        def sqrt_raw(price: float) -> float:
            return price_to_sqrt_price_x96(price, self.token0_decimals, self.token1_decimals) / Q96

        return concentrated_pool(
            self.liquidity,
            sqrt_raw(self.price),
            sqrt_raw(self.price_lower),
            sqrt_raw(self.price_upper),
            zero_for_one=self.zero_for_one,
            fee=self.fee_tier / FEE_PIPS_DENOMINATOR,
        )


class MevCheckArgs(BaseModel):
    pool: Annotated[ConstantProductPool | ConcentratedRange, Field(discriminator="kind")] = Field(
        description="The pool state before the swap; 'kind' says which of the two shapes."
    )
    amount_in: float = Field(gt=0, description="Amount the swap sells, whole tokens.")
    slippage: float = Field(
        ge=0, lt=1, description="Slippage tolerance as a fraction (0.005 = 0.5%)."
    )
    gas_cost: float = Field(
        ge=0, description="Attacker's gas for both legs, in units of the token sold."
    )
    max_chunks: int = Field(
        default=20, ge=1, le=1000, description="Most chunks worth splitting the swap into."
    )


class MevCheckResult(BaseModel):
    sandwich_profitable: bool
    attacker_profit: float = Field(description="Best sandwich's net profit, token sold.")
    front_run: float = Field(description="Attacker's front-run size, token sold.")
    victim_expected_out: float = Field(description="Output without attack, token bought.")
    victim_min_out: float = Field(description="Least output the slippage accepts.")
    victim_loss: float = Field(description="Output lost to a profitable sandwich (else 0).")
    victim_loss_pct: float
    slippage_binds: bool = Field(description="The slippage, not the attacker's fees, caps it.")
    max_safe_slippage: float = Field(
        description="Largest slippage at which no sandwich pays its gas (1.0: any)."
    )
    suggested_chunks: int | None = Field(
        description="Fewest equal swaps (one per block) that deter it; null if none needed."
    )
    use_private_route: bool = Field(
        description="No slippage cut or chunking up to max_chunks deters it."
    )
    advice: str


class MevCheckTool(DefaiTool[MevCheckArgs, MevCheckResult]):
    name: str = "mev_check"
    description: str = (
        "Checks whether a swap on a constant-product pool or a Uniswap v3 range would be "
        "profitably sandwiched at a slippage tolerance and attacker gas cost: attacker profit, "
        "victim loss, the largest safe slippage, and how many chunks (or a private route) "
        "avoid it. Read-only."
    )
    args_schema: type[BaseModel] = MevCheckArgs

    def _answer(self, args: MevCheckArgs) -> MevCheckResult:
        if isinstance(args.pool, ConcentratedRange):
            curve = args.pool.curve()
            decimals_in, decimals_out = args.pool.decimals_in_out()
        else:
            pool = args.pool
            curve = CurvePool(pool.reserve_in, pool.reserve_out, pool.fee)
            decimals_in = decimals_out = 0
        unit_in, unit_out = 10.0**decimals_in, 10.0**decimals_out
        amount, gas = args.amount_in * unit_in, args.gas_cost * unit_in
        best = optimal_sandwich(curve, amount, args.slippage, gas)
        safe = max_safe_slippage(curve, amount, gas)
        chunks: int | None = None
        private = False
        if not best.profitable:
            advice = "no sandwich pays at this slippage: submit as is"
        elif chunked_attack_profit(curve, amount, args.slippage, gas, args.max_chunks) > 0:
            private = True
            advice = (
                f"sandwich pays even split into {args.max_chunks} swaps: use a private route "
                f"(or cut slippage to {safe:.4%} if the swap can bear it)"
            )
        else:
            chunks = chunks_to_deter(curve, amount, args.slippage, gas, max_chunks=args.max_chunks)
            advice = (
                f"cut slippage to at most {safe:.4%}, or split into {chunks} swaps in separate "
                "blocks, or use a private route"
            )
        loss = best.victim_loss if best.profitable else 0.0
        return MevCheckResult(
            sandwich_profitable=best.profitable,
            attacker_profit=best.net_profit / unit_in,
            front_run=best.front_run / unit_in,
            victim_expected_out=best.victim_quote / unit_out,
            victim_min_out=best.victim_min_out / unit_out,
            victim_loss=loss / unit_out,
            victim_loss_pct=100 * loss / best.victim_quote,
            slippage_binds=best.slippage_binds,
            max_safe_slippage=safe,
            suggested_chunks=chunks,
            use_private_route=private,
            advice=advice,
        )
