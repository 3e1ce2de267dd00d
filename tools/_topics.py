"""Which network topic answers (symbol, target, horizon): one naming rule, overridable.

The embedded network names its default topics `"{symbol} {target} {horizon}"`; a remote network
(Allora's live topics) uses its own names, so a toolkit takes a mapping that overrides the rule
for the keys it lists.
"""

from __future__ import annotations

from collections.abc import Mapping

from defai.network.local import topic_name
from defai.network.topic import Target

TopicKey = tuple[str, str, str]
"""(symbol, target, horizon), e.g. ("ETH/USDT", "volatility", "24h")."""


def resolve_topic(
    symbol: str, target: Target, horizon: str, overrides: Mapping[TopicKey, str]
) -> str:
    """The override for (symbol, target, horizon) when there is one, else the built-in name."""
    return overrides.get((symbol, target, horizon)) or topic_name(symbol, target, horizon)
