"""The mock provider's answers: deterministic stream events for any chat request, no I/O.

``echo`` repeats the last user message verbatim; any other model says a fixed sentence
naming itself. Offered tools are called with arguments built from their JSON Schema
(``mock.schema_examples``, bounded), and a tool result is answered in text that quotes it.
Which tool: the one ``tool_choice`` names, else the one the last user message asks for
with ``call <tool name>`` (optionally followed by a JSON object of its arguments; how an
agent's test makes the mock read a file), else the first offered. A structured-output
request (``response_format``) is answered with JSON: an example valid against its schema,
or for ``json_object`` the answer text as ``{"answer": ...}`` unless it is a JSON object.
A request asking for thinking (``ChatRequest.reasoning``) is answered with one line of
visible thinking that names the effort or budget it got, signed for the wire the mock
speaks; a signed earlier turn sent back with a signature the mock did not write is a 400,
as Anthropic and Gemini refuse tampered thinking.
Embeddings are unit vectors from a hash of the text, within ``MAX_EMBEDDING_DIMENSIONS``
and ``MAX_EMBEDDING_VALUES``: a request is the caller's, so none may size the work freely.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import uuid
from collections.abc import Sequence

import orjson

from modelway.errors import BadRequest
from modelway.mock.schema_examples import schema_example
from modelway.reasoning import signature_for, tagged
from modelway.types import (
    ChatRequest,
    ChatResponse,
    Message,
    MessageEnd,
    MessageStart,
    Reasoning,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
    fold_events,
    new_tool_call_id,
)

ECHO_MODEL = "echo"
#: The models ``modelway mock`` lists; any other name answers too.
MOCK_MODELS = ("echo", "mock-1")
#: Dimensions of a mock embedding when the request names none.
EMBEDDING_DIMENSIONS = 8
#: The most dimensions a mock embedding has (asking for more is a 400).
MAX_EMBEDDING_DIMENSIONS = 4096
#: The most values (inputs times dimensions) one mock embeddings answer holds.
MAX_EMBEDDING_VALUES = 2**18

# A word with the whitespace after it, or a whitespace run with no word before it (the
# start of the text), so the pieces always concatenate back to the exact text.
_WORD_PIECE = re.compile(r"\S+\s*|\s+")
#: ``call Read {"file_path": "/tmp/notes.txt"}`` in a user message: which tool to call.
_CALL_TOOL = re.compile(r"\bcall (?P<name>[\w.:-]{1,128})(?:\s+(?P<arguments>\{.*\}))?", re.DOTALL)


_MOCK_SIGNATURE = re.compile(r"mocksig-[0-9a-f]{24}")
#: The value Gemini documents for replayed calls whose signature was lost.
_GEMINI_BYPASS = "skip_thought_signature_validator"
#: The wires whose providers sign their thinking (and check it when it comes back).
_SIGNING_WIRES = ("anthropic", "gemini")


def mock_events(request: ChatRequest, model: str, wire: str = "openai") -> list[StreamEvent]:
    """The stream events of the mock's answer to ``request`` as ``model``, speaking ``wire``."""
    _check_signatures(request, wire)
    events: list[StreamEvent] = [MessageStart(id=f"mock-{uuid.uuid4().hex}", model=model)]
    reasoning_tokens = 0
    if request.reasoning is not None and request.reasoning.effort != "none":
        thought = mock_thinking(request.reasoning)
        reasoning_tokens = count_words(thought)
        signature = tagged(wire, mock_signature(thought)) if wire in _SIGNING_WIRES else None
        events.append(ReasoningDelta(thought, signature))
    stop_reason: StopReason = "stop"
    tool, asked_arguments = _tool_to_call(request)
    if tool is not None:
        arguments = asked_arguments or orjson.dumps(schema_example(tool.parameters)).decode()
        events.append(ToolCallStart(index=0, id=new_tool_call_id(), name=tool.name))
        events.append(ToolCallDelta(index=0, arguments=arguments))
        completion_tokens = count_words(arguments)
        stop_reason = "tool_calls"
    else:
        text = _answer_text(request, model)
        events.extend(TextDelta(piece) for piece in split_words(text))
        completion_tokens = count_words(text)
    events.append(MessageEnd(stop_reason))
    usage = Usage(
        prompt_tokens=_prompt_tokens(request),
        completion_tokens=completion_tokens + reasoning_tokens,  # thinking is output too
        reasoning_tokens=reasoning_tokens,
    )
    events.append(UsageReport(usage))
    return events


def mock_response(request: ChatRequest, model: str, wire: str = "openai") -> ChatResponse:
    """The mock's complete answer: the fold of ``mock_events``."""
    return fold_events(mock_events(request, model, wire))


def mock_thinking(reasoning: Reasoning) -> str:
    """The mock's visible thinking: which effort or budget the request asked for."""
    if reasoning.budget_tokens is not None:
        return f"Thinking with a budget of {reasoning.budget_tokens} tokens."
    return f"Thinking at {reasoning.effort} effort."


def mock_signature(thought: str) -> str:
    """The signature the mock writes for its thinking ``thought``."""
    return "mocksig-" + hashlib.sha256(thought.encode()).hexdigest()[:24]


def _check_signatures(request: ChatRequest, wire: str) -> None:
    for index, message in enumerate(request.messages):
        signature = signature_for(wire, message.reasoning_signature)
        if signature is None:
            continue
        # Anthropic gets the thinking back with its signature; Gemini only the signature.
        if message.reasoning is not None:
            valid = signature == mock_signature(message.reasoning)
        else:
            valid = _MOCK_SIGNATURE.fullmatch(signature) is not None or signature == _GEMINI_BYPASS
        if not valid:
            raise BadRequest(
                f"messages.{index}: invalid thinking signature: thinking blocks must be "
                "sent back unchanged"
            )


def mock_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic unit vector derived from a hash of ``text``."""
    # One SHAKE-256 pass gives any number of bytes: the work is the text's length plus
    # the dimensions, never their product.
    digest = hashlib.shake_256(text.encode("utf-8", "surrogatepass")).digest(4 * dimensions)
    values = [word / 2**31 - 1.0 for (word,) in struct.iter_unpack("<I", digest)]
    norm = math.sqrt(sum(v * v for v in values))
    if norm == 0.0:
        return [1.0] + [0.0] * (dimensions - 1) if dimensions else []
    return [v / norm for v in values]


def mock_embeddings(texts: Sequence[str], dimensions: int | None = None) -> list[list[float]]:
    """``mock_embedding`` of each text; ``BadRequest`` naming the field past the mock's bounds."""
    dimensions = EMBEDDING_DIMENSIONS if dimensions is None else dimensions
    check_embedding_size(len(texts), dimensions)
    return [mock_embedding(text, dimensions) for text in texts]


def check_embedding_size(count: int, dimensions: int) -> None:
    """``BadRequest`` naming the field unless ``count`` vectors of ``dimensions`` are allowed."""
    if not 1 <= dimensions <= MAX_EMBEDDING_DIMENSIONS:
        raise BadRequest(f"dimensions: the mock makes 1 to {MAX_EMBEDDING_DIMENSIONS}")
    if count * dimensions > MAX_EMBEDDING_VALUES:
        raise BadRequest(
            f"input: the mock answers at most {MAX_EMBEDDING_VALUES} values a request "
            f"(inputs times dimensions; {count} x {dimensions} asked)"
        )


def split_words(text: str) -> list[str]:
    """``text`` as word-plus-following-whitespace pieces that concatenate to it exactly."""
    return _WORD_PIECE.findall(text)


def count_words(text: str) -> int:
    """The mock's token count: whitespace-separated pieces."""
    return len(text.split())


def mock_answer_text(model: str) -> str:
    """The fixed answer of a non-echo model."""
    return (
        f"Hello from the {model} mock model. "
        "This answer is fixed and deterministic, so tests can rely on it."
    )


def _conversation(request: ChatRequest) -> list[Message]:
    """The messages as the mock answers them: trailing system turns left out (Claude Code
    appends one after the user's for some models), and a user turn of images alone right
    after tool results (how an image a tool returned travels in some formats) taken as
    part of those results."""
    messages = request.messages
    end = len(messages)
    while end and messages[end - 1].role == "system":
        end -= 1
    last = messages[end - 1] if end else None
    if (
        last is not None
        and end >= 2
        and last.role == "user"
        and not last.text().strip()
        and messages[end - 2].role == "tool"
    ):
        end -= 1
    return messages[:end]


def _tool_to_call(request: ChatRequest) -> tuple[Tool | None, str | None]:
    """The tool to call and the arguments the user asked for (JSON text), if any."""
    if not request.tools or request.tool_choice == "none":
        return None, None
    for tool in request.tools:
        if tool.name == request.tool_choice:
            return tool, None  # forced, as a model is, whatever the last turn was
    messages = _conversation(request)
    if request.tool_choice == "required" and messages and messages[-1].role == "tool":
        # Some tool must be called after the results too: one not called yet, the last
        # offered (where the gateway puts the tool a structured answer is given through).
        called = {call.name for message in messages for call in message.tool_calls}
        fresh = [tool for tool in request.tools if tool.name not in called]
        return (fresh or request.tools)[-1], None
    if not messages or messages[-1].role != "user":
        return None, None
    asked = _CALL_TOOL.search(messages[-1].text())
    if asked is not None:
        for tool in request.tools:
            if tool.name == asked["name"]:
                return tool, _json_object_text(asked["arguments"])
    return request.tools[0], None


def _json_object_text(text: str | None) -> str | None:
    """``text`` when it is a JSON object (re-encoded), else None."""
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return orjson.dumps(value).decode() if isinstance(value, dict) else None


def _answer_text(request: ChatRequest, model: str) -> str:
    wanted = request.response_format
    messages = _conversation(request)
    after_tools = bool(messages) and messages[-1].role == "tool"
    # After tool results an answer with a schema is the final, structured one (an agent
    # with an output type and tools); a mere JSON mode answers the results in words.
    if wanted is None or (after_tools and wanted.schema is None):
        return _free_text(request, model)
    if wanted.schema is not None:
        return orjson.dumps(schema_example(wanted.schema)).decode()
    text = _free_text(request, model)
    return _json_object_text(text) or orjson.dumps({"answer": text}).decode()


def _free_text(request: ChatRequest, model: str) -> str:
    messages = _conversation(request)
    if messages and messages[-1].role == "tool":
        return _tool_result_text(request)
    if model.rsplit("/", 1)[-1] == ECHO_MODEL:
        for message in reversed(messages):
            if message.role == "user":
                return message.text()
        return ""
    return mock_answer_text(model)


def _tool_result_text(request: ChatRequest) -> str:
    names = {
        call.id: call.name
        for message in request.messages
        for call in message.tool_calls
        if message.role == "assistant"
    }
    results: list[str] = []
    for message in reversed(_conversation(request)):
        if message.role != "tool":
            break
        name = names.get(message.tool_call_id or "") or message.name or "tool"
        results.append(f"The {name} tool returned: {message.text()}")
    return "\n".join(reversed(results))


def _prompt_tokens(request: ChatRequest) -> int:
    total = 0
    for message in request.messages:
        total += count_words(message.text())
        total += sum(count_words(call.arguments) for call in message.tool_calls)
    return total
