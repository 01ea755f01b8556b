"""The Anthropic and Ollama relay scanners: byte-faithful, usage-reading, truncation-aware."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from modelway.calls.scanners import (
    AnthropicScanner,
    OllamaScanner,
    StreamScanner,
    answer_finish_reason,
    answer_usage,
    scanner_for,
)
from modelway.errors import StreamTruncated, UndecodableResponse
from modelway.streams import NDJSONDecoder, SSEDecoder
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
