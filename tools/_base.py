"""What every built-in tool shares: bindings, argument types, error handling, inference reads.

A tool maps a validated argument model to a result model in `_answer`. The base class makes the
three things every tool must get right identical everywhere:

- a domain error (any `DefaiError`: unknown symbol, NaN price, missing topic, a range the maths
  refuses) becomes a `ToolException`, and a bad argument a readable list of what to fix, so a
  model calling a tool with nonsense is told why instead of crashing the agent loop;
- the model reads the result as compact JSON while code gets the pydantic object as the
  ToolMessage's artifact (`response_format="content_and_artifact"`);
- an inference is checked before use: finite numbers, a well-formed confidence interval, and
  its age against the staleness limit.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, cast

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field, ValidationError
from pydantic.v1 import ValidationError as ValidationErrorV1

from defai.defi.lending import SECONDS_PER_YEAR
from defai.defi.sizing import LogReturnForecast
from defai.errors import DefaiError, NetworkError, StaleInferenceError
from defai.market.view import MarketView
from defai.network.base import InferenceSource
from defai.network.topic import Target
from defai.types import NetworkInference, timeframe_ms
from tools._topics import TopicKey, resolve_topic

ArgsT = TypeVar("ArgsT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)

YEAR_MS = SECONDS_PER_YEAR * 1000  # 365 days, as Aave's rates and the GBM formulas count a year
DAY_MS = 86_400_000

Symbol = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$",
        description="Market symbol BASE/QUOTE as the market feed names it, e.g. 'ETH/USDT'.",
    ),
]
Horizon = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]*[mhdw]$",
        description=(
            "Forecast horizon as a timeframe: a number and m, h, d or w, e.g. '1h', '24h'. "
            "It must name a topic the network serves."
        ),
    ),
]


def describe_validation_error(error: ValidationError | ValidationErrorV1) -> str:
    """Every rejected argument with its value and the rule it broke, for a model to fix."""
    if not isinstance(error, ValidationError):
        return f"invalid arguments: {error}"
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        message = item["msg"].removeprefix("Value error, ")
        given = "" if item["type"] == "missing" or not item["loc"] else f" (got {item['input']!r})"
        problems.append(f"{where}: {message}{given}")
    return "invalid arguments: " + "; ".join(problems) + ". Fix them and call the tool again."


def horizon_years(horizon: str) -> float:
    return timeframe_ms(horizon) / YEAR_MS


@dataclass(frozen=True, slots=True)
class Reading:
    """One inference as seen now: how old it is and how old it may be."""

    topic: str
    inference: NetworkInference
    age_ms: int
    max_age_ms: int

    @property
    def stale(self) -> bool:
        return self.age_ms > self.max_age_ms


class InferenceSummary(BaseModel):
    """An inference as a result reports it, so a decision can always be traced to its inputs."""

    topic: str
    value: float
    ci_percentiles: list[float] = Field(description="Percentiles (0-100) of the CI values.")
    ci_values: list[float]
    timestamp_ms: int
    age_s: float
    max_age_s: float = Field(description="Older than this the inference counts as stale.")
    stale: bool
    workers: int | None = Field(description="Workers weighted in (null: not revealed).")
    weight_hhi: float | None = Field(
        description="Herfindahl index of worker weights: 1/workers if even, 1 if one dominates."
    )
    effective_workers: float | None = Field(description="1 / weight_hhi.")
    epoch: int | None
    source: str

    @classmethod
    def of(cls, reading: Reading) -> InferenceSummary:
        inference = reading.inference
        hhi = inference.weight_concentration()
        known = math.isfinite(hhi) and hhi > 0
        return cls(
            topic=reading.topic,
            value=inference.value,
            ci_percentiles=list(inference.ci_percentiles),
            ci_values=list(inference.ci_values),
            timestamp_ms=inference.timestamp_ms,
            age_s=reading.age_ms / 1000,
            max_age_s=reading.max_age_ms / 1000,
            stale=reading.stale,
            workers=len(inference.weights) or None,
            weight_hhi=hhi if known else None,
            effective_workers=1 / hhi if known else None,
            epoch=inference.epoch,
            source=inference.source,
        )


def ci_spread(reading: Reading) -> float:
    """Standard deviation of a normal fitted to the CI: how far the models' answers spread.

    Percentiles 0 and 100 (min and max) are no normal quantiles and are left out; fewer than two
    distinct interior points, or one value for all, mean no measurable spread.
    """
    inference = reading.inference
    points = [
        (p / 100, v)
        for p, v in zip(inference.ci_percentiles, inference.ci_values, strict=True)
        if 0 < p < 100
    ]
    if len({p for p, _ in points}) < 2 or len({v for _, v in points}) < 2:
        return 0.0
    probabilities, values = zip(*points, strict=True)
    return LogReturnForecast.from_quantiles(probabilities, values, 1.0).std


@dataclass(frozen=True, slots=True)
class ReturnDistribution:
    """The horizon's log-return as the network sees it, summarised as a normal.

    Law of total variance: the volatility topic gives the spread of the return around a model's
    mean; the log-return topic's CI gives how far the models' means disagree. Both add up.
    """

    forecast: LogReturnForecast
    volatility: float  # the volatility topic's value: realised sigma over the horizon
    disagreement: float  # std fitted to the log-return topic's CI
    readings: tuple[Reading, Reading]

    @property
    def inferences(self) -> list[InferenceSummary]:
        return [InferenceSummary.of(reading) for reading in self.readings]


class DefaiTool(BaseTool, Generic[ArgsT, ResultT]):
    """A built-in tool bound to a network and a market; reads nothing else, never trades."""

    network: InferenceSource = Field(exclude=True)
    market: MarketView = Field(exclude=True)
    topics: Mapping[TopicKey, str] = Field(
        default_factory=dict, description="(symbol, target, horizon) -> the network's topic name."
    )
    max_age_ms: int | None = Field(
        default=None,
        gt=0,
        description="Staleness limit; by default the network's own (the topic's epoch), else "
        "the horizon's length.",
    )
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], Any] | None = True
    handle_validation_error: (
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None
    ) = describe_validation_error

    @abstractmethod
    def _answer(self, args: ArgsT) -> ResultT:
        """The tool's work on validated arguments; raises DefaiError on a domain problem."""

    def answer(self, args: ArgsT) -> ResultT:
        """The typed entry for code (strategies): the result, or a ToolException saying why not."""
        try:
            return self._answer(args)
        except DefaiError as exc:
            raise ToolException(str(exc)) from exc
        except ArithmeticError as exc:  # overflow, division by zero: inputs beyond the maths
            raise ToolException(
                f"the arguments or the forecast are out of range for this calculation ({exc})"
            ) from exc

    def direct(self, args: Mapping[str, Any]) -> tuple[str, ResultT]:
        """The (content, artifact) `invoke` gives a tool call, without LangChain's callback and
        schema-introspection machinery (about 1 ms a call): what ToolBox uses when code calls a
        tool thousands of times, as a backtest does. Refusals raise ToolException carrying the
        message `invoke` would have answered with."""
        schema = cast(type[BaseModel], self.args_schema)
        try:
            parsed = cast(ArgsT, schema.model_validate(dict(args)))
        except ValidationError as exc:
            raise ToolException(describe_validation_error(exc)) from exc
        result = self.answer(parsed)
        return result.model_dump_json(), result

    def _run(self, *args: Any, **kwargs: Any) -> tuple[str, ResultT]:
        schema = cast(type[BaseModel], self.args_schema)
        result = self.answer(cast(ArgsT, schema.model_validate(kwargs)))
        return result.model_dump_json(), result

    def read(self, symbol: str, target: Target, horizon: str) -> Reading:
        """The latest inference of a topic, checked to hold usable numbers; staleness measured."""
        topic = resolve_topic(symbol, target, horizon, self.topics)
        inference = self.network.latest(topic)
        numbers = (inference.value, *inference.ci_values, *inference.ci_percentiles)
        if not all(math.isfinite(x) for x in numbers):
            raise NetworkError(
                f"topic {topic!r}: the inference holds a non-finite number (value "
                f"{inference.value}, CI {list(inference.ci_values)}); it cannot be used"
            )
        if len(inference.ci_percentiles) != len(inference.ci_values) or not all(
            0 <= p <= 100 for p in inference.ci_percentiles
        ):
            raise NetworkError(
                f"topic {topic!r}: malformed confidence interval: percentiles "
                f"{list(inference.ci_percentiles)} (0-100) for values {list(inference.ci_values)}"
            )
        if (target == "volatility" and inference.value < 0) or (
            target == "price" and inference.value <= 0
        ):
            raise NetworkError(f"topic {topic!r}: a {target} of {inference.value} is impossible")
        now_ms = self.market.now_ms()
        max_age_ms = self._max_age_ms(inference, horizon)
        return Reading(topic, inference, inference.age_ms(now_ms), max_age_ms)

    def read_fresh(self, symbol: str, target: Target, horizon: str) -> Reading:
        """`read`, refusing a stale inference: nothing may be sized on an outdated forecast."""
        reading = self.read(symbol, target, horizon)
        if reading.stale:
            raise StaleInferenceError(
                f"topic {reading.topic!r}: the latest inference is {reading.age_ms / 1000:.0f}s "
                f"old, more than the {reading.max_age_ms / 1000:.0f}s allowed; nothing is sized "
                "on a stale forecast: wait for the network's next inference"
            )
        return reading

    def return_distribution(self, symbol: str, horizon: str) -> ReturnDistribution:
        """Mean from the log-return topic, spread from the volatility topic and the CI."""
        mean = self.read_fresh(symbol, "log_return", horizon)
        volatility = self.read_fresh(symbol, "volatility", horizon)
        disagreement = ci_spread(mean)
        std = math.hypot(volatility.inference.value, disagreement)
        if not std > 0:
            raise NetworkError(
                f"topics {mean.topic!r} and {volatility.topic!r} forecast no dispersion at all "
                "(zero volatility and a flat CI): no probability can be derived from them"
            )
        forecast = LogReturnForecast(mean.inference.value, std, horizon_years(horizon))
        return ReturnDistribution(
            forecast, volatility.inference.value, disagreement, (mean, volatility)
        )

    def _max_age_ms(self, inference: NetworkInference, horizon: str) -> int:
        """The configured limit, else the network's own (`extra["max_age_ms"]`: the topic's
        epoch for LocalNetwork), else the horizon: past it the forecast is about the past."""
        if self.max_age_ms is not None:
            return self.max_age_ms
        stated = inference.extra.get("max_age_ms")
        if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0:
            return stated
        return timeframe_ms(horizon)
