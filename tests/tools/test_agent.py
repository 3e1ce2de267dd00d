"""The tools inside LangChain's agent loop (create_agent), driven by a scripted chat model.

The model is fake, the plumbing is real: tool schemas are bound, tool calls are routed by the
agent's ToolNode, and every answer, bad-argument errors included, comes back to the model as a
ToolMessage it reads before its next turn.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from llm_support import scripted

from tools.lp_range import LpRangeResult


def tool_call(call_id: str, name: str, **args: Any) -> dict[str, Any]:
    return {"id": call_id, "name": name, "args": args, "type": "tool_call"}


LP = {"symbol": "ETH/USDT", "capital": 10_000, "fee_apr": 0.25}


def test_bad_tool_calls_come_back_to_the_model_and_the_run_continues(
    tools: dict[str, BaseTool],
) -> None:
    script = [
        AIMessage(
            content="",
            tool_calls=[
                tool_call("forecast", "price_forecast", symbol="ETH/USDT"),
                tool_call("bad-tier", "lp_range", fee_tier=250, **LP),
                tool_call(
                    "bad-symbol",
                    "liquidation_risk",
                    symbol="DOGE/USDT",
                    collateral_amount=1,
                    debt=100,
                    liquidation_threshold=0.8,
                ),
            ],
        ),
        AIMessage(content="", tool_calls=[tool_call("fixed", "lp_range", fee_tier=3000, **LP)]),
        AIMessage(content="Range planned."),
    ]
    model = scripted(*script)
    agent = create_agent(model, tools=list(tools.values()), system_prompt="You plan DeFi moves.")

    final = agent.invoke({"messages": [HumanMessage("Plan an ETH/USDT LP range.")]})

    answers = {m.tool_call_id: m for m in final["messages"] if isinstance(m, ToolMessage)}
    assert answers["forecast"].status == "success"
    assert answers["bad-tier"].status == "error"
    assert answers["bad-tier"].text.startswith(
        "invalid arguments: fee_tier: Input should be 100, 500, 3000 or 10000 (got 250)"
    )
    assert answers["bad-symbol"].status == "error"
    assert "unknown symbol 'DOGE/USDT'" in answers["bad-symbol"].content
    assert answers["fixed"].status == "success"
    assert isinstance(answers["fixed"].artifact, LpRangeResult)

    # The model read the errors before its second turn, and the run went on to the end.
    second_turn = {m.tool_call_id: m.content for m in model.seen[1] if isinstance(m, ToolMessage)}
    assert second_turn["bad-tier"] == answers["bad-tier"].content
    assert len(model.seen) == 3
    assert final["messages"][-1].content == "Range planned."
