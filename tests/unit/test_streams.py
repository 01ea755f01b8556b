"""SSE (WHATWG event-stream) and NDJSON decoding of bytes split wherever the network likes."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from modelway.streams import NDJSONDecoder, ServerSentEvent, SSEDecoder

FIXTURES = Path(__file__).parent.parent / "fixtures"
OPENAI_TEXT_STREAM = (FIXTURES / "openai" / "stream_text.sse").read_bytes()
OPENAI_TOOL_STREAM = (FIXTURES / "openai" / "stream_parallel_tool_calls.sse").read_bytes()
OLLAMA_STREAM = (FIXTURES / "ollama" / "chat_stream.ndjson").read_bytes()

#: Every SSE feature at once: CRLF and CR line ends, comments, event names, ids,
#: multi-line data, non-ASCII text, and a last event with no blank line after it.
MIXED_SSE = (
    b": ping\r\n"
    b"event: message_start\r\n"
    b'data: {"a": 1}\r\n'
    b"\r\n"
    b"id: 7\rretry: 1000\rdata: first line\rdata: second \xc3\xa9 line\r\r"
    b": keep-alive\n"
    b"data:no-space\n"
    b"\n"
    b"event: tail\n"
    b"data: unterminated"
)
MIXED_EVENTS = [
    ServerSentEvent("message_start", '{"a": 1}'),
    ServerSentEvent("message", "first line\nsecond \u00e9 line"),
    ServerSentEvent("message", "no-space"),
    ServerSentEvent("tail", "unterminated"),
]


def sse_in_pieces(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.close()


def ndjson_in_pieces(pieces: list[bytes]) -> list[bytes]:
    decoder = NDJSONDecoder()
    lines: list[bytes] = []
    for piece in pieces:
        lines += decoder.feed(piece)
    return lines + decoder.close()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


# --- SSE --------------------------------------------------------------------------------


def test_sse_many_events_in_one_read_are_all_dispatched() -> None:
    events = SSEDecoder().feed(b"data: one\n\ndata: two\n\nevent: named\ndata: three\n\n")

    assert events == [
        ServerSentEvent("message", "one"),
        ServerSentEvent("message", "two"),
        ServerSentEvent("named", "three"),
    ]


def test_sse_line_split_across_reads_waits_for_its_end() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b'data: {"hel') == []
    assert decoder.feed(b'lo": 1}\n') == []
    assert decoder.feed(b"\n") == [ServerSentEvent("message", '{"hello": 1}')]


def test_sse_crlf_and_cr_line_ends_are_line_ends() -> None:
    assert SSEDecoder().feed(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        ServerSentEvent("message", "a"),
        ServerSentEvent("message", "b"),
        ServerSentEvent("message", "c"),
    ]


def test_sse_crlf_split_between_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    # Had the LF been a second line end, the event would have been dispatched as "a".
    assert decoder.feed(b"\n\r") == [ServerSentEvent("message", "a\nb")]
    assert decoder.feed(b"\n") == []
    assert decoder.close() == []


def test_sse_empty_read_between_cr_and_lf_does_not_add_a_line_end() -> None:
    assert sse_in_pieces([b"data: a\r", b"", b"\ndata: b\r\n\r\n"]) == [
        ServerSentEvent("message", "a\nb")
    ]


def test_sse_comments_and_keep_alive_pings_are_skipped() -> None:
    assert sse_in_pieces([b": ping\n\n: ping\n\n:\n\ndata: real\n\n: ping\n\n"]) == [
        ServerSentEvent("message", "real")
    ]


def test_sse_event_name_is_kept_and_reset_after_dispatch() -> None:
    assert SSEDecoder().feed(b"event: content_block_delta\ndata: x\n\ndata: y\n\n") == [
        ServerSentEvent("content_block_delta", "x"),
        ServerSentEvent("message", "y"),
    ]


def test_sse_multi_line_data_joins_with_newline() -> None:
    assert SSEDecoder().feed(b'data: {\ndata:  "a": 1\ndata: }\n\n') == [
        ServerSentEvent("message", '{\n "a": 1\n}')
    ]


def test_sse_only_one_space_after_the_colon_is_removed() -> None:
    assert SSEDecoder().feed(b"data:x\n\ndata:  y\n\n") == [
        ServerSentEvent("message", "x"),
        ServerSentEvent("message", " y"),
    ]


def test_sse_field_without_colon_is_a_field_with_empty_value() -> None:
    assert SSEDecoder().feed(b"data\n\n") == [ServerSentEvent("message", "")]


def test_sse_id_retry_and_unknown_fields_are_ignored() -> None:
    assert SSEDecoder().feed(b"id: 1\nretry: 3000\nfoo: bar\ndata: x\n\n") == [
        ServerSentEvent("message", "x")
    ]


def test_sse_event_without_data_is_not_dispatched() -> None:
    # WHATWG: "If the data buffer is an empty string, set the data buffer and the event
    # type buffer to the empty string and return." Dispatching it would hand an empty
    # string to a JSON parser.
    assert sse_in_pieces([b"event: ping\n\nid: 4\n\ndata: after\n\n"]) == [
        ServerSentEvent("message", "after")
    ]


def test_sse_leading_byte_order_mark_is_stripped() -> None:
    assert sse_in_pieces([b"\xef\xbb", b"\xbfdata: x\n\n"]) == [ServerSentEvent("message", "x")]


def test_sse_final_event_without_trailing_blank_line_is_dispatched_at_close() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: one\n\nevent: last\ndata: two") == [
        ServerSentEvent("message", "one")
    ]
    assert decoder.close() == [ServerSentEvent("last", "two")]


def test_sse_final_event_ending_in_one_newline_is_dispatched_at_close() -> None:
    assert sse_in_pieces([b"data: [DONE]\n"]) == [ServerSentEvent("message", "[DONE]")]


def test_sse_multibyte_character_split_across_reads_survives() -> None:
    encoded = "data: caf\u00e9 \u2014 \U0001f600\n\n".encode()
    pieces = [encoded[:10], encoded[10:14], encoded[14:]]

    assert sse_in_pieces(pieces) == [ServerSentEvent("message", "caf\u00e9 \u2014 \U0001f600")]


def test_sse_mixed_features_decode_as_expected_in_one_read() -> None:
    assert sse_in_pieces([MIXED_SSE]) == MIXED_EVENTS


def test_sse_every_single_split_point_gives_the_one_shot_events() -> None:
    for data in (MIXED_SSE, OPENAI_TEXT_STREAM, OPENAI_TOOL_STREAM):
        whole = sse_in_pieces([data])
        for cut in range(len(data) + 1):
            assert sse_in_pieces([data[:cut], data[cut:]]) == whole, cut


def test_sse_byte_by_byte_feeding_gives_the_one_shot_events() -> None:
    data = MIXED_SSE
    assert sse_in_pieces([data[i : i + 1] for i in range(len(data))]) == MIXED_EVENTS


@settings(max_examples=75, deadline=None)
@given(st.data())
def test_sse_random_splits_give_the_one_shot_events(data: st.DataObject) -> None:
    stream = data.draw(st.sampled_from([MIXED_SSE, OPENAI_TEXT_STREAM, OPENAI_TOOL_STREAM]))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))

    assert sse_in_pieces(split_at(stream, cuts)) == sse_in_pieces([stream])


@settings(max_examples=75, deadline=None)
@given(
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20),
        min_size=1,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(0, 400), max_size=8),
)
def test_sse_any_data_lines_with_any_line_end_round_trip(
    lines: list[str], newline: bytes, cuts: list[int]
) -> None:
    stream = b"".join(b"data: " + line.encode() + newline for line in lines) + newline
    cuts = [cut for cut in cuts if cut <= len(stream)]

    assert sse_in_pieces(split_at(stream, cuts)) == [ServerSentEvent("message", "\n".join(lines))]


# --- NDJSON -----------------------------------------------------------------------------


def test_ndjson_line_split_across_reads_waits_for_its_end() -> None:
    decoder = NDJSONDecoder()

    assert decoder.feed(b'{"a":') == []
    assert decoder.feed(b' 1}\n{"b"') == [b'{"a": 1}']
    assert decoder.feed(b": 2}\n") == [b'{"b": 2}']
    assert decoder.close() == []


def test_ndjson_blank_and_whitespace_lines_are_skipped() -> None:
    assert ndjson_in_pieces([b'\n\n{"a":1}\r\n  \n\t\n{"b":2}\n\n']) == [b'{"a":1}', b'{"b":2}']


def test_ndjson_last_line_without_newline_comes_out_at_close() -> None:
    decoder = NDJSONDecoder()

    assert decoder.feed(b'{"a":1}\n{"done":true}') == [b'{"a":1}']
    assert decoder.close() == [b'{"done":true}']
    assert decoder.close() == []


def test_ndjson_every_single_split_point_gives_the_one_shot_lines() -> None:
    whole = ndjson_in_pieces([OLLAMA_STREAM])
    assert len(whole) > 1
    for cut in range(len(OLLAMA_STREAM) + 1):
        assert ndjson_in_pieces([OLLAMA_STREAM[:cut], OLLAMA_STREAM[cut:]]) == whole, cut


@settings(max_examples=75, deadline=None)
@given(st.lists(st.integers(0, len(OLLAMA_STREAM)), max_size=12))
def test_ndjson_random_splits_give_the_one_shot_lines(cuts: list[int]) -> None:
    assert ndjson_in_pieces(split_at(OLLAMA_STREAM, cuts)) == ndjson_in_pieces([OLLAMA_STREAM])
