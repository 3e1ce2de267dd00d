"""What a consumer needs from any inference network, embedded or remote."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from defai.types import NetworkInference


@runtime_checkable
class InferenceSource(Protocol):
    """LocalNetwork and AlloraNetwork both satisfy this; tools depend on nothing more."""

    def latest(self, topic: str) -> NetworkInference:
        """The newest combined inference of a topic (by name); raises NetworkError if none."""
        ...
