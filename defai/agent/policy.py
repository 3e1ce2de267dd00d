"""Policies turn an observation into proposed intents; the RiskGuard decides what happens.

A `Strategy` is deterministic code (`strategies/`); `StrategyPolicy` runs one. An LLM policy
proposes raw payloads from a chat model. Both only *propose*: what they return is parsed and
reviewed by the guard before any venue sees it, so nothing a policy returns is trusted.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from defai.agent.observation import Observation
from defai.agent.toolbox import ToolBox


@runtime_checkable
class Policy(Protocol):
    """Proposes actions: Intent objects or raw payloads (dicts) for `parse_intents`."""

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]: ...


@runtime_checkable
class Strategy(Protocol):
    """Deterministic trading code. `symbols` and `topics` tell the agent what to observe.

    A strategy may also name the `venues` it trades on ("exchange", "amm", "lending"): a
    backtest then funds only those, so idle capital elsewhere does not blur its results.
    """

    @property
    def name(self) -> str: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def topics(self) -> tuple[str, ...]: ...

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]: ...


class StrategyPolicy:
    """A Strategy as a Policy: its intents go to the guard like anyone else's."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        return list(self.strategy.decide(observation, toolbox))
