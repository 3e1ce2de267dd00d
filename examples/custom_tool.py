"""A custom tool, written as a user would: realised volatility of recent candles.

It reads closed candles through the MarketView, so the answer is point-in-time in a backtest
and live alike, and it measures volatility the way the network's volatility topics do
(sqrt of the sum of squared one-candle log-returns), so an agent can set it beside
`volatility_forecast` for the same span: is the network expecting calmer or wilder than lately?

Plug it in, any one of three ways:

- an entry point of your distribution (pyproject.toml), found by `defai.plugins.discover`:

      [project.entry-points."defai.tools"]
      realised_volatility = "my_package.custom_tool:RealisedVolatilityTool"

- a "module:attr" or "path/to/file.py:attr" string:
  `defai.plugins.load_object("examples/custom_tool.py:RealisedVolatilityTool")`;
- a folder of .py files: `defai.plugins.from_folder("examples", accept=...)`.

defai builds a tool plugin that is a class or a factory by calling it with `network=` and
`market=`. This tool needs only the market; LangChain tools ignore fields they do not declare,
so the network is accepted and dropped.
"""

from __future__ import annotations

import math
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field

from defai.errors import DefaiError
from defai.market.view import MarketView
from defai.network.topic import log_returns
from defai.types import timeframe_ms

_YEAR_MS = 365 * 86_400_000


class RealisedVolatilityArgs(BaseModel):
    symbol: str = Field(description="Market symbol, e.g. 'ETH/USDT'.")
    candles: int = Field(default=24, ge=2, le=10_000, description="How many recent closed candles.")
    timeframe: str = Field(default="1h", description="Candle timeframe, e.g. '1h', '4h', '1d'.")


class RealisedVolatilityTool(BaseTool):
    name: str = "realised_volatility"
    description: str = (
        "Realised volatility of a symbol over its most recent closed candles: over the whole "
        "span (comparable with volatility_forecast for the same horizon) and annualised."
    )
    args_schema: type[BaseModel] = RealisedVolatilityArgs
    handle_tool_error: bool = True
    handle_validation_error: bool = True

    market: MarketView

    def _run(self, symbol: str, candles: int = 24, timeframe: str = "1h") -> dict[str, Any]:
        try:
            window = self.market.candles(symbol, timeframe, limit=candles + 1)
            period_ms = timeframe_ms(timeframe)
        except DefaiError as exc:  # unknown symbol or timeframe: tell the model, do not crash
            raise ToolException(str(exc)) from exc
        if len(window) < candles + 1:
            raise ToolException(
                f"only {len(window)} closed {timeframe} candles of {symbol} so far; "
                f"{candles + 1} are needed"
            )
        squares = float((log_returns(window.close) ** 2).sum())
        return {
            "symbol": symbol,
            "timeframe": timeframe,
            "candles": candles,
            "realised_volatility": math.sqrt(squares),
            "annualised_volatility": math.sqrt(squares * _YEAR_MS / (candles * period_ms)),
            "last_close_ms": int(window.close_ts[-1]),
        }
