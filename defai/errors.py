"""One exception hierarchy, so a caller can catch everything defai raises with one clause.

Each error is raised at the boundary where bad input enters (a config file, a CSV row, an API
payload, a tool argument) and says what was wrong and where, never echoing a secret.
"""

from __future__ import annotations


class DefaiError(Exception):
    """Base of every error defai raises on purpose."""


class ConfigError(DefaiError):
    """A configuration file or environment variable is missing, unknown or mistyped."""


class DataError(DefaiError):
    """Market data is malformed: unsorted, duplicated, NaN, non-positive or inconsistent."""


class FeedError(DataError):
    """A feed cannot answer: unknown symbol or timeframe, or a download that failed."""


class LookAheadError(DataError):
    """Something asked for data from the future of the simulated clock."""


class NetworkError(DefaiError):
    """The inference network cannot answer: unknown topic, bad parameters, bad state."""


class PayloadError(NetworkError):
    """A remote API answered with a payload that does not have the documented shape."""


class StaleInferenceError(NetworkError):
    """An inference is older than its topic allows; nothing may be decided on it."""


class ProtocolMathError(DefaiError, ValueError):
    """Protocol maths was asked something outside its domain (tick out of range, zero liquidity)."""


class ToolInputError(DefaiError, ValueError):
    """A tool was called with arguments that make no sense for the protocol."""


class PluginError(DefaiError):
    """A tool or strategy plugin cannot be found or loaded."""


class ExecutionError(DefaiError):
    """A venue refused or failed to carry out an action."""


class RiskError(DefaiError):
    """The risk guard refused an intent."""
