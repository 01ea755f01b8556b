"""The Anthropic and Ollama relay scanners: byte-faithful, usage-reading, truncation-aware."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelway.calls.scanners import AnthropicScanner, OllamaScanner, StreamScanner
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
