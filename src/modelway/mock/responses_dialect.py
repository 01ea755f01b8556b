"""The Responses API as the mock serves it: what an OpenAI upstream accepts, answered.

An upstream takes every tool type; the gateway's dialect, translating, drops hosted tools.
The mock runs no hosted tools (``web_search``, ``file_search``, ...), so it answers as if
they were absent, and offers the functions a ``namespace`` tool groups as plain functions.
Everything else (decoding, encoding, refusing server-side state) is the gateway's dialect.
"""

from __future__ import annotations

from typing import Any

from modelway.dialects.responses import ResponsesDialect
from modelway.types import ChatRequest


class MockResponsesDialect(ResponsesDialect):
    """``POST /v1/responses`` as the mock upstream reads it."""

    def decode_chat(self, body: Any) -> ChatRequest:
        if isinstance(body, dict) and isinstance(body.get("tools"), list):
            body = {**body, "tools": function_tools(body["tools"])}
        if isinstance(body, dict) and "background" in body:
            body = {k: v for k, v in body.items() if k != "background"}  # the mock runs it
        return super().decode_chat(body)


def function_tools(tools: list[Any]) -> list[Any]:
    """The function tools of a Responses ``tools`` list, a namespace's members included."""
    functions: list[Any] = []
    for tool in tools:
        if not isinstance(tool, dict):
            functions.append(tool)  # refused by the dialect, as an upstream would
        elif tool.get("type") == "function":
            functions.append(tool)
        elif tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            functions.extend(function_tools(tool["tools"]))
    return functions
