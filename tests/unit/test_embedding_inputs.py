"""What ``input`` an embeddings request takes: text, or OpenAI's token arrays, which are
decoded as ``cl100k_base`` (LangChain's ``OpenAIEmbeddings`` sends them by default; they
were refused with a 400)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelway.calls.embeddings import MAX_TOKENS, embedding_request
from modelway.errors import BadRequest
from modelway.tokens import _encoding, decode_tokens

HELLO = [15339, 1917]  # "hello world" in cl100k_base


@pytest.mark.parametrize(
    ("given_input", "texts"),
    [
        ("hello world", ["hello world"]),
        (["a", "b"], ["a", "b"]),
        (HELLO, ["hello world"]),  # one token array: one text
        ([HELLO, [15339]], ["hello world", "hello"]),  # a list of them
    ],
)
def test_text_and_token_arrays_become_texts(given_input: Any, texts: list[str]) -> None:
    assert embedding_request("m", given_input, None).input == texts


@pytest.mark.parametrize(
    "bad",
    [
        [],
        [[]],
        [1, "a"],
        [[1], "a"],
        [True, False],
        [[-1]],
        [[10**30]],
        [[100_000_000]],
        [1.5],
        [[HELLO]],
    ],
)
def test_anything_else_is_a_400_naming_input(bad: Any) -> None:
    with pytest.raises(BadRequest, match=r"^input"):
        embedding_request("m", bad, None)


def test_token_ids_are_bounded_by_the_request() -> None:
    with pytest.raises(BadRequest, match="token ids a request"):
        embedding_request("m", [[15339] * 1000] * (MAX_TOKENS // 1000 + 1), None)


@settings(deadline=None)  # the first example loads the encoder's tables (~0.5 s)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200))
def test_decoding_gives_back_the_text_the_tokens_were_made_of(text: str) -> None:
    ids = _encoding().encode_ordinary(text)
    assert decode_tokens(ids) == text
