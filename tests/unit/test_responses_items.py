"""A kept conversation as Responses API input items: sent back as ``input``, the items
decode to the same conversation, and pages of them cover every item once, in order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.dialects.responses import decode_responses_request
from modelway.dialects.responses_items import input_items, items_page
from modelway.store.responses import decode_kept, encode_conversation
from modelway.types import ImagePart, Message, TextPart, ToolCall
from tests.unit.gateways import Setup, in_process_gateway
from tests.unit.test_hostile_http_bodies import _PROPERTY, _QUERY_TEXT, check

_TEXT = st.text(min_size=1, max_size=12)
_CALL_ID = st.from_regex(r"call_[a-z0-9]{1,8}", fullmatch=True)
_CALL = st.builds(ToolCall, id=_CALL_ID, name=st.sampled_from(["f", "g"]))
_MESSAGE = st.one_of(
    st.builds(lambda t: Message(role="user", content=[TextPart(t)]), _TEXT),
    st.builds(lambda t: Message(role="system", content=[TextPart(t)]), _TEXT),
    st.builds(
        lambda t, calls, thought: Message(
            role="assistant", content=[TextPart(t)], tool_calls=calls, reasoning=thought
        ),
        _TEXT,
        st.lists(_CALL, max_size=2),
        st.none() | _TEXT,
    ),
    st.builds(
        lambda t, call_id: Message(role="tool", content=[TextPart(t)], tool_call_id=call_id),
        _TEXT,
        _CALL_ID,
    ),
)


@given(st.lists(_MESSAGE, min_size=1, max_size=8))
def test_the_items_sent_back_as_input_are_the_same_conversation(messages: list[Message]) -> None:
    items = input_items(messages, "resp_mw0123")
    decoded = decode_responses_request({"model": "m", "input": items}).messages
    assert decoded == messages
    # Each id names one item, even where call ids repeat (Ollama's are call_0 each turn).
    assert len({item["id"] for item in items}) == len(items)


def test_an_image_goes_back_as_the_url_it_came_as() -> None:
    message = Message(
        role="user", content=[TextPart("see"), ImagePart(data="AAAA", media_type="image/png")]
    )
    [item] = input_items([message], "resp_mw1")
    assert item["content"][1] == {
        "type": "input_image",
        "image_url": "data:image/png;base64,AAAA",
        "detail": "auto",
    }


@given(st.integers(0, 30), st.integers(1, 100), st.booleans())
def test_following_after_gives_every_item_once_in_order(
    count: int, limit: int, descending: bool
) -> None:
    items = [{"id": f"msg_{n}"} for n in range(count)]
    seen: list[str] = []
    after = None
    while True:
        page = items_page(items, limit=limit, descending=descending, after=after)
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    expected = [item["id"] for item in items]
    assert seen == (expected[::-1] if descending else expected)


# --- over HTTP: whatever the page asks, a page or a 400 -------------------------------------


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        yield setup


@_PROPERTY
@given(data=st.data())
async def test_any_page_parameters_are_a_page_or_a_400_never_a_5xx(
    gateway: Setup, data: st.DataObject
) -> None:
    made = await gateway.http.post("/v1/responses", json={"model": "mock/echo", "input": "one two"})
    path = f"/v1/responses/{made.json()['id']}/input_items"
    chosen = data.draw(st.lists(st.sampled_from(["limit", "order", "after"]), unique=True))
    params = {name: data.draw(_QUERY_TEXT, label=name) for name in chosen}
    answer = await gateway.http.get(path, params=params)
    check(path, answer)
    assert answer.status_code in (200, 400)
    if answer.status_code == 200:
        assert answer.json()["object"] == "list"


@pytest.mark.parametrize("stream", [False, True])
async def test_an_empty_answer_leaves_every_input_listed(gateway: Setup, stream: bool) -> None:
    # The echo mock answers nothing to a system message alone, or to an image: no answer
    # joined the conversation, so none may be cut from its end.
    for given_input in (
        [{"role": "system", "content": "sys only"}],
        [
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]},
        ],
    ):
        body = {"model": "mock/echo", "input": given_input, "stream": stream}
        made = await gateway.http.post("/v1/responses", json=body)
        assert made.status_code == 200
        response_id = (
            made.json()["id"]
            if not stream
            else json.loads(made.text.strip().rsplit("data: ", 1)[1])["response"]["id"]
        )
        listed = await gateway.http.get(
            f"/v1/responses/{response_id}/input_items", params={"order": "asc"}
        )
        assert len(listed.json()["data"]) == len(given_input)


def test_a_conversation_kept_before_inputs_were_counted_still_reads() -> None:
    messages = [Message(role="user", content=[TextPart("hi")])]
    assert decode_kept(encode_conversation(messages)) == (messages, None)
    assert decode_kept(encode_conversation(messages, 1)) == (messages, 1)
