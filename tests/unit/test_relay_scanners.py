"""The relay scanners: byte-faithful, usage-reading, truncation-aware, sizing the text."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from modelway.calls.scanners import (
    AnthropicScanner,
    OllamaScanner,
    OpenAIScanner,
    StreamScanner,
    answer_finish_reason,
    answer_usage,
    scanner_for,
)
from modelway.calls.tallies import ByteTally
from modelway.errors import StreamTruncated, UndecodableResponse
from modelway.streams import NDJSONDecoder, SSEDecoder
from modelway.tokens import BYTES_PER_TOKEN
from modelway.types import Usage

FIXTURES = Path(__file__).parent.parent / "fixtures"
ANTHROPIC_TEXT = (FIXTURES / "anthropic" / "stream_text.sse").read_bytes()
ANTHROPIC_TOOLS = (FIXTURES / "anthropic" / "stream_tool_use.sse").read_bytes()
OLLAMA_TEXT = (FIXTURES / "ollama" / "chat_stream.ndjson").read_bytes()


def relay(scanner: StreamScanner, data: bytes, split: int) -> bytes:
    return scanner.feed(data[:split]) + scanner.feed(data[split:]) + scanner.close()


@pytest.mark.parametrize("fixture", [ANTHROPIC_TEXT, ANTHROPIC_TOOLS])
def test_anthropic_events_pass_through_unchanged_wherever_the_bytes_split(
    fixture: bytes,
) -> None:
    expected = SSEDecoder().feed(fixture) + SSEDecoder().close()
    for split in range(0, len(fixture), 7):
        out = relay(AnthropicScanner(), fixture, split)
        decoder = SSEDecoder()
        assert decoder.feed(out) + decoder.close() == expected


def test_anthropic_usage_is_read_from_message_start_and_message_delta() -> None:
    scanner = AnthropicScanner()
    relay(scanner, ANTHROPIC_TOOLS, 0)
    assert scanner.usage is not None
    assert scanner.usage.prompt_tokens > 0 and scanner.usage.completion_tokens > 0


def test_anthropic_stream_without_message_stop_is_truncated() -> None:
    cut = ANTHROPIC_TEXT[: ANTHROPIC_TEXT.index(b"event: message_stop")]
    scanner = AnthropicScanner()
    scanner.feed(cut)
    with pytest.raises(StreamTruncated):
        scanner.close()
    assert scanner.error(StreamTruncated("cut")).startswith(b"event: error\ndata: {")


def test_anthropic_corrupt_event_is_undecodable() -> None:
    with pytest.raises(UndecodableResponse):
        AnthropicScanner().feed(b"event: content_block_delta\ndata: {not json\n\n")


def test_ollama_lines_pass_through_and_the_done_line_carries_usage() -> None:
    expected = NDJSONDecoder().feed(OLLAMA_TEXT)
    for split in range(0, len(OLLAMA_TEXT), 5):
        scanner = OllamaScanner()
        out = relay(scanner, OLLAMA_TEXT, split)
        assert NDJSONDecoder().feed(out) == expected
        assert scanner.usage is not None and scanner.usage != Usage()


def test_ollama_stream_without_its_done_line_is_truncated() -> None:
    lines = OLLAMA_TEXT.splitlines(keepends=True)
    scanner = OllamaScanner()
    scanner.feed(b"".join(line for line in lines if b'"done":true' not in line.replace(b" ", b"")))
    with pytest.raises(StreamTruncated):
        scanner.close()
    assert scanner.error(StreamTruncated("cut")) == b'{"error":"cut"}\n'


# --- prompt cache usage --------------------------------------------------------------

#: Anthropic's counts for 10 uncached input tokens, 1000 read from the cache, 200 written.
CACHE_COUNTS = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 1000,
}
CACHE_USAGE = Usage(
    prompt_tokens=1210, completion_tokens=5, cached_tokens=1000, cache_write_tokens=200
)


def test_anthropic_scanner_reads_cache_reads_and_writes_from_message_start() -> None:
    start = {"type": "message_start", "message": {"usage": {**CACHE_COUNTS, "output_tokens": 1}}}
    delta = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 5}}
    stream = b"".join(
        b"data: " + orjson.dumps(event) + b"\n\n"
        for event in (start, delta, {"type": "message_stop"})
    )
    scanner = AnthropicScanner()
    relay(scanner, stream, 0)
    assert scanner.usage == CACHE_USAGE


def test_a_whole_anthropic_answer_reports_its_cache_reads_and_writes() -> None:
    answer = {"type": "message", "usage": {**CACHE_COUNTS, "output_tokens": 5}}
    assert answer_usage("anthropic", answer) == CACHE_USAGE


def test_a_whole_openai_answer_reports_its_cached_tokens() -> None:
    usage = {
        "prompt_tokens": 1210,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    assert answer_usage("openai", {"usage": usage}) == Usage(
        prompt_tokens=1210, completion_tokens=5, cached_tokens=1000
    )


@pytest.mark.parametrize(
    ("wire", "stream", "reason"),
    [
        ("anthropic", FIXTURES / "anthropic" / "stream_tool_use.sse", "tool_use"),
        ("ollama", FIXTURES / "ollama" / "chat_stream.ndjson", "stop"),
        ("openai", FIXTURES / "openai" / "stream_parallel_tool_calls.sse", "tool_calls"),
        ("responses", FIXTURES / "responses" / "stream_reasoning_text.sse", "completed"),
    ],
)
def test_each_scanner_reads_how_the_stream_ended_as_the_upstream_said(
    wire: str, stream: Path, reason: str
) -> None:
    scanner = scanner_for(wire, {"stream": True})
    assert scanner.finish_reason is None
    relay(scanner, stream.read_bytes(), 0)
    assert scanner.finish_reason == reason


@pytest.mark.parametrize(
    ("wire", "answer", "reason"),
    [
        ("anthropic", FIXTURES / "anthropic" / "message_text.json", "end_turn"),
        ("ollama", FIXTURES / "ollama" / "chat.json", "stop"),
        ("openai", FIXTURES / "openai" / "chat_tool_calls.json", "tool_calls"),
    ],
)
def test_a_whole_answer_says_how_it_ended(wire: str, answer: Path, reason: str) -> None:
    assert answer_finish_reason(wire, orjson.loads(answer.read_bytes())) == reason


def test_an_incomplete_responses_answer_ends_with_its_reason_and_odd_shapes_with_none() -> None:
    incomplete = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert answer_finish_reason("responses", incomplete) == "max_output_tokens"
    assert answer_finish_reason("responses", {"status": "completed"}) == "completed"
    for odd in (None, [], {"choices": []}, {"choices": [1]}, {"choices": [{"finish_reason": 3}]}):
        assert answer_finish_reason("openai", odd) is None
    assert answer_finish_reason("anthropic", {"stop_reason": None}) is None


# --- the answer's text size, which an estimate is made from ----------------------------

#: A 60-delta answer, as a model streams it: a word or two at a time, one non-ASCII.
PIECES = [f" word{i}" for i in range(59)] + [" café"]
TEXT_BYTES = len("".join(PIECES).encode())


def openai_chunk(delta: dict[str, object]) -> bytes:
    chunk = {
        "id": "chatcmpl-BjoxdCfe2SnNCuk8kPxuUYktHsuda",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "system_fingerprint": "fp_a1102cf978",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        "usage": None,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def anthropic_event(delta: dict[str, object]) -> bytes:
    event = {"type": "content_block_delta", "index": 0, "delta": delta}
    return b"event: content_block_delta\ndata: " + orjson.dumps(event) + b"\n\n"


def responses_event(kind: str, delta: str, sequence: int = 7) -> bytes:
    event = {
        "type": kind,
        "sequence_number": sequence,
        "item_id": "msg_68b5f2e1a4c08190a2b3c4d5e6f70812",
        "output_index": 1,
        "content_index": 0,
        "delta": delta,
        "logprobs": [],
    }
    return f"event: {kind}\ndata: ".encode() + orjson.dumps(event) + b"\n\n"


def ollama_line(message: dict[str, object]) -> bytes:
    line = {
        "model": "llama3.2",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "message": {"role": "assistant", **message},
        "done": False,
    }
    return orjson.dumps(line) + b"\n"


#: Each wire's stream of ``PIECES``, cut off before its usage and its end.
CUT_STREAMS = {
    "openai": [openai_chunk({"content": piece}) for piece in PIECES],
    "anthropic": [anthropic_event({"type": "text_delta", "text": piece}) for piece in PIECES],
    "responses": [
        responses_event("response.output_text.delta", piece, n) for n, piece in enumerate(PIECES)
    ],
    "ollama": [ollama_line({"content": piece}) for piece in PIECES],
}


@pytest.mark.parametrize("wire", sorted(CUT_STREAMS))
def test_a_cut_off_stream_is_sized_by_its_text_not_by_the_events_around_it(wire: str) -> None:
    chunks = CUT_STREAMS[wire]
    scanner = scanner_for(wire, {"stream": True})
    tally = ByteTally(scanner)
    for chunk in chunks:  # as ``MeteredCall`` meters a relayed stream
        tally.add(scanner.feed(chunk))
    assert tally.usage is None  # the caller left: no usage came
    assert sum(map(len, chunks)) > 10 * TEXT_BYTES  # the envelope is most of the bytes
    assert tally.size == TEXT_BYTES
    # The estimate, in tokens, is about the text's own (four bytes a token in English).
    assert TEXT_BYTES // 8 <= tally.size // BYTES_PER_TOKEN <= TEXT_BYTES // 2


def test_an_anthropic_stream_cut_before_message_delta_counts_the_output_it_wrote() -> None:
    """``message_start`` counts the input and one output token; the output's count comes
    in ``message_delta``. Cut before it (the caller hung up, the upstream dropped), the
    input stays as reported and the output is estimated from the text: before, a cut
    answer of thousands of tokens was charged one."""
    start = {
        "type": "message_start",
        "message": {"usage": {"input_tokens": 1000, "output_tokens": 1,
                              "cache_read_input_tokens": 200}},
    }  # fmt: skip
    scanner = AnthropicScanner()
    scanner.feed(b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n")
    assert scanner.usage == Usage(prompt_tokens=1200, completion_tokens=1, cached_tokens=200)
    for chunk in CUT_STREAMS["anthropic"]:
        scanner.feed(chunk)
    written = TEXT_BYTES // BYTES_PER_TOKEN
    assert written > 1
    assert scanner.usage == Usage(
        prompt_tokens=1200, completion_tokens=written, cached_tokens=200, estimated=True
    )
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"output_tokens": 3}}  # fmt: skip
    scanner.feed(b"event: message_delta\ndata: " + orjson.dumps(delta) + b"\n\n")
    assert scanner.usage == Usage(prompt_tokens=1200, completion_tokens=3, cached_tokens=200)


@pytest.mark.parametrize("split", [1, 5, 64])
def test_the_openai_text_size_is_the_same_however_the_bytes_arrive(split: int) -> None:
    stream = b"".join(CUT_STREAMS["openai"])
    scanner = OpenAIScanner(caller_wants_usage=False)
    for start in range(0, len(stream), split):
        scanner.feed(stream[start : start + split])
    assert scanner.text_size == TEXT_BYTES


def test_openai_reasoning_refusals_and_tool_calls_count_but_roles_and_ids_do_not() -> None:
    scanner = OpenAIScanner(caller_wants_usage=False)
    call = {"index": 0, "id": "call_PieqNSej6kM9hgYbcQdbZSaC", "type": "function"}
    for delta in (
        {"role": "assistant", "content": "", "refusal": None},
        {"reasoning_content": "think"},
        {"tool_calls": [{**call, "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        {"refusal": "no"},
    ):
        scanner.feed(openai_chunk(delta))
    assert scanner.text_size == len("think" + "get_weather" + '{"city":"Paris"}' + "no")


def test_anthropic_thinking_and_tool_input_count_but_signatures_do_not() -> None:
    scanner = AnthropicScanner()
    for delta in (
        {"type": "thinking_delta", "thinking": "Let me see."},
        {"type": "signature_delta", "signature": "EqQBCkgIARABGAIiQL" * 10},
        {"type": "text_delta", "text": "Okay"},
        {"type": "input_json_delta", "partial_json": '{"location":'},
        {"type": "input_json_delta", "partial_json": ' "Paris"}'},
    ):
        scanner.feed(anthropic_event(delta))
    assert scanner.text_size == len("Let me see." + "Okay" + '{"location": "Paris"}')


def test_anthropic_fixture_text_size_is_its_text_and_tool_inputs() -> None:
    scanner = AnthropicScanner()
    relay(scanner, ANTHROPIC_TOOLS, 0)
    events = SSEDecoder().feed(ANTHROPIC_TOOLS)
    deltas = [orjson.loads(e.data)["delta"] for e in events if e.event == "content_block_delta"]
    text = "".join(d.get("text", "") + d.get("partial_json", "") for d in deltas)
    assert scanner.text_size == len(text.encode()) > 0


def test_responses_text_reasoning_and_arguments_count_but_audio_does_not() -> None:
    scanner = scanner_for("responses", {"stream": True})
    for kind, delta in (
        ("response.reasoning_summary_text.delta", "Plan."),
        ("response.output_text.delta", "Hi"),
        ("response.function_call_arguments.delta", '{"q":1}'),
        ("response.audio.delta", "UklGRiQAAABXQVZFZm10IBAAAAABAAEA" * 10),
    ):
        scanner.feed(responses_event(kind, delta))
    assert scanner.text_size == len("Plan." + "Hi" + '{"q":1}')


def test_ollama_thinking_and_tool_calls_count_but_the_role_does_not() -> None:
    scanner = OllamaScanner()
    scanner.feed(ollama_line({"content": "", "thinking": "hmm"}))
    for line in (FIXTURES / "ollama" / "chat_stream_tool_call.ndjson").read_bytes().splitlines():
        scanner.feed(line + b"\n")
    # The fixture: "Let me check.", two calls' names and their arguments' values.
    words = ["Let me check.", "get_current_weather", "celsius", "Toronto"]
    words += ["get_current_time", "America/Toronto"]
    assert scanner.text_size == len("hmm" + "".join(words))
