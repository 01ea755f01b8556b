"""Codex CLI's Responses API requests, translated to providers of other formats.

Codex sends ``namespace`` tools (groups of functions) and the hosted ``web_search`` tool;
``tests/fixtures/responses/codex_request.json`` has that shape. Translated, a namespace's
functions become canonical tools named ``<namespace>__<name>``, and a call to one is
answered as the API reports it: the function's own ``name`` plus ``namespace``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from modelway.dialects.responses import ResponsesDialect
from modelway.errors import BadRequest
from modelway.types import (
    ChatResponse,
    Message,
    StreamEvent,
    ToolCall,
    response_events,
)
from tests.unit.gateways import in_process_gateway

FIXTURE = Path(__file__).parent.parent / "fixtures" / "responses" / "codex_request.json"
dialect = ResponsesDialect()
stream_event = TypeAdapter[Any](ResponseStreamEvent)

NAMESPACED_ANSWER = ChatResponse(
    id="chatcmpl-789",
    model="gpt-5",
    message=Message(
        role="assistant",
        tool_calls=[
            ToolCall(id="call_2", name="mcp__files__read", arguments='{"path":"README.md"}'),
            ToolCall(id="call_3", name="shell", arguments='{"command":["ls"]}'),
        ],
    ),
    stop_reason="tool_calls",
)


def codex_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    body.update(overrides)
    return body


def sse_data(stream: bytes) -> list[dict[str, Any]]:
    return [
        orjson.loads(block.split("\ndata: ", 1)[1])
        for block in stream.decode().split("\n\n")
        if block
    ]


# --- decoding ---------------------------------------------------------------------------


def test_a_codex_body_decodes_with_namespace_functions_flattened_and_hosted_tools_left_out() -> (
    None
):
    request = dialect.decode_chat(codex_body())
    assert [(tool.name, tool.namespace) for tool in request.tools] == [
        ("shell", None),
        ("mcp__files__read", "mcp__files"),
    ]
    read = request.tools[1]
    assert read.description == "Tools of the files MCP server.\n\nReads a file."
    assert read.parameters["properties"] == {"path": {"type": "string"}}


def test_a_namespaced_call_sent_back_in_input_names_the_flattened_tool() -> None:
    body = codex_body()
    body["input"].append(
        {
            "type": "function_call",
            "call_id": "call_2",
            "name": "read",
            "namespace": "mcp__files",
            "arguments": '{"path":"README.md"}',
        }
    )
    body["input"].append({"type": "function_call_output", "call_id": "call_2", "output": "hi"})
    messages = dialect.decode_chat(body).messages
    assert messages[-2].tool_calls == [
        ToolCall(id="call_2", name="mcp__files__read", arguments='{"path":"README.md"}')
    ]
    assert (messages[-1].role, messages[-1].tool_call_id) == ("tool", "call_2")


def test_a_flattened_name_past_64_characters_is_refused_not_truncated() -> None:
    namespace = {"type": "namespace", "name": "n" * 40, "tools": [{"name": "f" * 30}]}
    with pytest.raises(BadRequest, match=r"tools\.0\.tools\.0\.name: .*at most 64"):
        dialect.decode_chat(codex_body(tools=[namespace]))


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "namespace", "name": "ns", "tools": [{"type": "custom", "name": "x"}]},
        {"type": "namespace", "name": "ns"},
        {"type": "namespace", "name": "", "tools": []},
        {"type": "custom", "name": "apply_patch"},
    ],
)
def test_namespaces_of_anything_but_functions_and_unknown_tools_are_refused(
    tool: dict[str, Any],
) -> None:
    with pytest.raises(BadRequest, match=r"^tools\.0"):
        dialect.decode_chat(codex_body(tools=[tool]))


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "function", "name": "read", "namespace": "mcp__files"},
        {"type": "function", "name": "read"},  # by its own name: one namespace has it
        {"type": "function", "name": "mcp__files__read"},
    ],
)
def test_tool_choice_may_name_a_namespaced_function(choice: dict[str, Any]) -> None:
    assert dialect.decode_chat(codex_body(tool_choice=choice)).tool_choice == "mcp__files__read"


# --- encoding ---------------------------------------------------------------------------


def test_a_whole_answer_names_a_namespaced_call_by_its_own_name_and_namespace() -> None:
    request = dialect.decode_chat(codex_body())
    body = orjson.loads(dialect.encode_response(NAMESPACED_ANSWER, request))
    Response.model_validate(body)
    calls = [(item["name"], item.get("namespace")) for item in body["output"]]
    assert calls == [("read", "mcp__files"), ("shell", None)]


def test_a_whole_answer_without_the_request_keeps_the_flattened_name() -> None:
    body = orjson.loads(dialect.encode_response(NAMESPACED_ANSWER))
    assert body["output"][0]["name"] == "mcp__files__read"
    assert "namespace" not in body["output"][0]


def test_a_stream_names_a_namespaced_call_by_its_own_name_and_namespace() -> None:
    request = dialect.decode_chat(codex_body())
    encoder = dialect.stream_encoder(request)
    events: list[StreamEvent] = response_events(NAMESPACED_ANSWER)
    data = sse_data(b"".join(encoder.encode(event) for event in events) + encoder.finish())
    for event in data:
        stream_event.validate_python(event)
    done = [e["item"] for e in data if e["type"] == "response.output_item.done"]
    assert [(item["name"], item.get("namespace")) for item in done] == [
        ("read", "mcp__files"),
        ("shell", None),
    ]
    final = data[-1]["response"]["output"]
    assert (final[0]["name"], final[0]["namespace"]) == ("read", "mcp__files")


def test_a_namespaced_call_round_trips_through_decode_and_encode() -> None:
    request = dialect.decode_chat(codex_body())
    item = orjson.loads(dialect.encode_response(NAMESPACED_ANSWER, request))["output"][0]
    body = codex_body()
    body["input"].append(
        {key: item[key] for key in ("type", "call_id", "name", "namespace", "arguments")}
    )
    again = dialect.decode_chat(body)
    assert again.messages[-1].tool_calls[0].name == NAMESPACED_ANSWER.message.tool_calls[0].name


# --- through the gateway ----------------------------------------------------------------


def _asking_for_read(body: dict[str, Any]) -> dict[str, Any]:
    ask = 'call mcp__files__read {"path": "README.md"}'
    body["input"].append({"type": "message", "role": "user", "content": ask})
    return body


@pytest.mark.parametrize("stream", [False, True])
async def test_codex_gets_a_namespaced_function_call_from_the_mock_provider(
    tmp_path: Path, stream: bool
) -> None:
    body = _asking_for_read(codex_body(model="mock/echo", stream=stream))
    async with in_process_gateway(tmp_path) as setup:
        response = await setup.http.post("/v1/responses", content=orjson.dumps(body))
    assert response.status_code == 200, response.text
    assert response.headers["x-modelway-dropped-tools"] == "web_search"
    if stream:
        output = sse_data(response.content)[-1]["response"]["output"]
    else:
        output = response.json()["output"]
    calls = [item for item in output if item["type"] == "function_call"]
    assert [(c["name"], c["namespace"]) for c in calls] == [("read", "mcp__files")]
    assert orjson.loads(calls[0]["arguments"]) == {"path": "README.md"}


async def test_a_request_without_hosted_tools_has_no_dropped_tools_header(tmp_path: Path) -> None:
    body = {"model": "mock/echo", "input": "hi"}
    async with in_process_gateway(tmp_path) as setup:
        response = await setup.http.post("/v1/responses", content=orjson.dumps(body))
    assert response.status_code == 200, response.text
    assert "x-modelway-dropped-tools" not in response.headers
