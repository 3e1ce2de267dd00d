"""ToolBox: the one way any policy calls a tool, so every call is recorded and replayable.

A strategy calls `toolbox.call(name, args)` and gets the tool's structured result (the
pydantic artifact of a defai tool, else its JSON or text content); an LLM policy runs the same
tools through LangChain and reports each call with `record`. The agent journals the calls of
each tick (inputs, outputs, latency), and a replay answers from the journal instead.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException

from defai.errors import DefaiError


class ToolCallError(DefaiError):
    """A tool answered with an error (bad arguments, stale inference, a refused calculation)."""


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    tool: str
    inputs: Mapping[str, Any]
    output: str
    latency_ms: float
    error: str | None


class ToolBox:
    """The tools of one agent, called by name; records every call until `drain()`."""

    def __init__(self, tools: Iterable[BaseTool], clock: Callable[[], float] = time.perf_counter):
        self._tools = {t.name: t for t in tools}
        self._clock = clock
        self._calls: list[ToolCallRecord] = []
        self._ids = itertools.count()

    @property
    def tools(self) -> list[BaseTool]:
        return list(self._tools.values())

    def names(self) -> list[str]:
        return sorted(self._tools)

    def call(self, name: str, args: Mapping[str, Any]) -> Any:
        """The tool's result; ToolCallError (with the tool's message) when it refuses."""
        tool = self._tools.get(name)
        if tool is None:
            raise ToolCallError(f"no tool named {name!r}; this agent has {self.names()}")
        started = self._clock()
        content, artifact, failed = self._run(tool, name, args)
        latency_ms = (self._clock() - started) * 1000
        self.record(name, args, content, latency_ms, content if failed else None)
        if failed:
            raise ToolCallError(f"{name}: {content}")
        if artifact is not None:
            return artifact
        try:
            return json.loads(content)
        except json.JSONDecodeError:
            return content

    def _run(self, tool: BaseTool, name: str, args: Mapping[str, Any]) -> tuple[str, Any, bool]:
        """(content, artifact, failed) as the tool-call protocol answers; a tool offering
        `direct` (defai's own) answers the same without LangChain's per-call overhead."""
        direct = getattr(tool, "direct", None)
        if callable(direct):
            try:
                content, artifact = direct(args)
            except ToolException as exc:
                return str(exc), None, True
            return str(content), artifact, False
        message = tool.invoke(
            {"name": name, "args": dict(args), "id": f"call-{next(self._ids)}", "type": "tool_call"}
        )
        if not isinstance(message, ToolMessage):  # a tool that ignores the tool-call protocol
            return str(message), None, False
        return str(message.content), message.artifact, message.status == "error"

    def record(
        self,
        tool: str,
        inputs: Mapping[str, Any],
        output: str,
        latency_ms: float,
        error: str | None = None,
    ) -> None:
        """Note a call made elsewhere (an LLM's tool call run by LangChain)."""
        self._calls.append(ToolCallRecord(tool, dict(inputs), output, latency_ms, error))

    def drain(self) -> list[ToolCallRecord]:
        """The calls recorded since the last drain: what the agent journals for this tick."""
        calls, self._calls = self._calls, []
        return calls
