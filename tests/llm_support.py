"""A scripted LangChain chat model for tests: real LangChain plumbing, no provider."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field


class ScriptedModel(GenericFakeChatModel):
    """Answers with the scripted messages in turn; remembers what it was shown, which tools were
    bound (and how), and can be forbidden to answer at all."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bindings: list[tuple[list[str], object]] = Field(default_factory=list)
    delay_s: float = 0.0
    forbidden: bool = False

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: object = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        names = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        self.bindings.append((names, tool_choice))
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.forbidden:
            raise AssertionError("the model was called")
        self.seen.append(list(messages))
        time.sleep(self.delay_s)
        return super()._generate(messages, stop, run_manager, **kwargs)


def scripted(*replies: AIMessage | str, **fields: Any) -> ScriptedModel:
    return ScriptedModel(messages=iter(replies), **fields)
