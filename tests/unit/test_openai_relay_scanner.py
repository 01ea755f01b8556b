"""The same-dialect relay's stream scanner: events pass through, usage is read on the way."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelway.calls.scanners import OpenAIScanner
from modelway.errors import StreamTruncated, UndecodableResponse
from modelway.streams import SSEDecoder
from modelway.types import Usage

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"
TEXT_STREAM = (FIXTURES / "stream_text.sse").read_bytes()
TOOL_STREAM = (FIXTURES / "stream_parallel_tool_calls.sse").read_bytes()
TEXT_USAGE = Usage(prompt_tokens=19, completion_tokens=8)
TOOL_USAGE = Usage(prompt_tokens=82, completion_tokens=51, cached_tokens=64)


def frames(stream: bytes) -> list[bytes]:
    """The stream's events, each with its ``\\n\\n``."""
    return [frame + b"\n\n" for frame in stream.split(b"\n\n") if frame]


def is_usage_only(frame: bytes) -> bool:
    if frame == b"data: [DONE]\n\n":
        return False
    chunk = orjson.loads(frame.removeprefix(b"data: "))
    return bool(chunk.get("usage")) and not chunk["choices"]


def without_usage_chunk(stream: bytes) -> bytes:
    return b"".join(frame for frame in frames(stream) if not is_usage_only(frame))


def relay(pieces: list[bytes], wants_usage: bool) -> tuple[bytes, OpenAIScanner]:
    scanner = OpenAIScanner(caller_wants_usage=wants_usage)
    out = b"".join(scanner.feed(piece) for piece in pieces)
    return out + scanner.close(), scanner


def data_of(stream: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for event in decoder.feed(stream) + decoder.close()]


@pytest.mark.parametrize(
    ("stream", "usage"), [(TEXT_STREAM, TEXT_USAGE), (TOOL_STREAM, TOOL_USAGE)]
)
def test_caller_who_asked_for_usage_gets_the_upstream_bytes_unchanged(
    stream: bytes, usage: Usage
) -> None:
    out, scanner = relay([stream], wants_usage=True)

    assert out == stream
    assert scanner.usage == usage
    assert scanner.done


@pytest.mark.parametrize(
    ("stream", "usage"), [(TEXT_STREAM, TEXT_USAGE), (TOOL_STREAM, TOOL_USAGE)]
)
def test_caller_who_did_not_ask_for_usage_loses_only_the_usage_only_chunk(
    stream: bytes, usage: Usage
) -> None:
    out, scanner = relay([stream], wants_usage=False)

    assert out == without_usage_chunk(stream)
    assert len(frames(out)) == len(frames(stream)) - 1
    assert out.endswith(b"data: [DONE]\n\n")
    assert scanner.usage == usage


def test_usage_on_a_chunk_that_also_has_choices_is_read_and_the_chunk_kept() -> None:
    chunk = {
        "id": "c",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    stream = b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n"

    out, scanner = relay([stream], wants_usage=False)

    assert out == stream
    assert scanner.usage == Usage(prompt_tokens=3, completion_tokens=2)


def test_chunks_with_null_usage_are_passed_and_leave_usage_unset() -> None:
    stream = b'data: {"id":"c","choices":[],"usage":null}\n\ndata: [DONE]\n\n'

    out, scanner = relay([stream], wants_usage=False)

    assert out == stream
    assert scanner.usage is None


def test_done_is_relayed_and_marks_the_stream_done() -> None:
    scanner = OpenAIScanner(caller_wants_usage=False)

    assert scanner.feed(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"
    assert scanner.done
    assert scanner.close() == b""


def test_done_without_trailing_blank_line_is_relayed_at_close() -> None:
    scanner = OpenAIScanner(caller_wants_usage=True)

    assert scanner.feed(b'data: {"id":"c","choices":[]}\n\ndata: [DONE]') == (
        b'data: {"id":"c","choices":[]}\n\n'
    )
    assert scanner.close() == b"data: [DONE]\n\n"


def test_stream_without_done_is_truncated_after_relaying_what_came() -> None:
    scanner = OpenAIScanner(caller_wants_usage=True)
    stream = TEXT_STREAM.removesuffix(b"data: [DONE]\n\n")

    assert scanner.feed(stream) == stream
    with pytest.raises(StreamTruncated):
        scanner.close()


def test_chunk_that_is_not_json_is_undecodable_and_carries_the_raw_text() -> None:
    scanner = OpenAIScanner(caller_wants_usage=True)

    with pytest.raises(UndecodableResponse) as raised:
        scanner.feed(b'data: {"id": "c", "choi\n\n')

    assert raised.value.raw == '{"id": "c", "choi'
    assert raised.value.status == 502


def test_error_chunk_is_relayed_for_the_caller_to_read() -> None:
    error = b'data: {"error":{"message":"overloaded","type":"server_error","code":null}}\n\n'

    assert OpenAIScanner(caller_wants_usage=False).feed(error) == error


def test_comments_and_crlf_line_ends_are_normalised_without_touching_data() -> None:
    stream = b": ping\r\n\r\n" + TEXT_STREAM.replace(b"\n", b"\r\n")

    out, _ = relay([stream], wants_usage=True)

    assert out == TEXT_STREAM


def test_multi_line_data_is_relayed_as_the_same_data() -> None:
    # JSON may be split over several ``data:`` lines; the caller must get the same data.
    stream = b'data: {"id": "c",\ndata:  "choices": []}\n\ndata: [DONE]\n\n'

    out, _ = relay([stream], wants_usage=True)

    assert data_of(out) == data_of(stream) == ['{"id": "c",\n "choices": []}', "[DONE]"]


def test_every_single_split_point_relays_the_same_bytes() -> None:
    for wants_usage in (True, False):
        whole, _ = relay([TOOL_STREAM], wants_usage)
        for cut in range(len(TOOL_STREAM) + 1):
            out, scanner = relay([TOOL_STREAM[:cut], TOOL_STREAM[cut:]], wants_usage)
            assert out == whole, (wants_usage, cut)
            assert scanner.usage == TOOL_USAGE


@settings(max_examples=75, deadline=None)
@given(
    st.sampled_from([TEXT_STREAM, TOOL_STREAM]),
    st.booleans(),
    st.lists(st.integers(0, len(TOOL_STREAM)), max_size=15),
)
def test_random_splits_relay_the_same_bytes(
    stream: bytes, wants_usage: bool, cuts: list[int]
) -> None:
    bounds = [0, *sorted(cut for cut in cuts if cut <= len(stream)), len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(bounds)]

    assert relay(pieces, wants_usage)[0] == relay([stream], wants_usage)[0]


@pytest.mark.parametrize("wants_usage", [True, False])
def test_one_event_per_read_relays_the_same_bytes_as_one_read(wants_usage: bool) -> None:
    # How providers send: each read a whole event (the path that skips decoding).
    whole, _ = relay([TOOL_STREAM], wants_usage)

    out, scanner = relay(frames(TOOL_STREAM), wants_usage)

    assert out == whole
    assert scanner.usage == TOOL_USAGE
    assert scanner.done


def test_a_byte_order_mark_before_the_first_event_is_dropped_whatever_the_reads() -> None:
    stream = b"\xef\xbb\xbf" + TEXT_STREAM

    assert relay(frames(stream), wants_usage=True)[0] == TEXT_STREAM
