"""``previous_response_id`` and ``store`` on every provider, through a real ``modelway serve``.

The ``openai`` SDK and the OpenAI Agents SDK call the gateway's Responses API; the
upstream is ``modelway mock`` speaking Anthropic's, Ollama's and Gemini's formats, so each
call is translated and its state kept by the gateway, and OpenAI's, to which each call is
relayed and which keeps the state itself, as OpenAI does. The mock counts every word it was
sent as an input token, and answers a tool result by naming the tool the earlier turn
called: a second turn shows that the first reached it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from tests.integration.gateway import running_gateway
from tests.integration.test_keys_pipeline import MASTER, create_key

#: Translated (the gateway keeps the state), and relayed to OpenAI (the upstream keeps it:
#: ``modelway mock`` keeps it as OpenAI does).
PROVIDERS = ["anthropic", "ollama", "gemini", "openai"]
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_two_turn_chain_whole(client: openai.OpenAI, provider: str) -> None:
    first = client.responses.create(model=f"{provider}/echo", input="one two three")
    assert first.output_text == "one two three"
    second = client.responses.create(
        model=f"{provider}/echo", input="four", previous_response_id=first.id
    )
    assert second.output_text == "four"
    assert second.usage is not None and second.usage.input_tokens == 7  # 3 + 3 + 1
    assert second.previous_response_id == first.id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_two_turn_chain_streamed(client: openai.OpenAI, provider: str) -> None:
    with client.responses.stream(model=f"{provider}/echo", input="one two three") as stream:
        first = stream.get_final_response()
    with client.responses.stream(
        model=f"{provider}/echo", input="four", previous_response_id=first.id
    ) as stream:
        second = stream.get_final_response()
    assert second.output_text == "four"
    assert second.usage is not None and second.usage.input_tokens == 7
    assert (first.store, second.previous_response_id) == (True, first.id)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tool_result_continues_the_turn_that_called_the_tool(
    client: openai.OpenAI, provider: str
) -> None:
    model = f"{provider}/assistant"
    first = client.responses.create(model=model, input="Weather in Rome?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        model=model,
        tools=[WEATHER],
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "hot"}],
    )
    assert second.output_text == "The get_weather tool returned: hot"


def test_store_false_then_previous_response_id_is_a_404(client: openai.OpenAI) -> None:
    first = client.responses.create(model="anthropic/echo", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError, match=f"previous_response_id: response '{first.id}'"):
        client.responses.create(model="anthropic/echo", input="x", previous_response_id=first.id)


def test_get_and_delete(client: openai.OpenAI) -> None:
    first = client.responses.create(model="ollama/echo", input="keep me")
    read = client.responses.retrieve(first.id)
    assert read.id == first.id and read.output_text == "keep me"
    # Answered at once, never in the background: no events were kept to stream again.
    with pytest.raises(openai.BadRequestError, match="stream: the gateway keeps no events"):
        client.responses.retrieve(first.id, stream=True)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)


def test_input_items_list_what_a_response_was_made_from_a_page_at_a_time(
    client: openai.OpenAI,
) -> None:
    first = client.responses.create(
        model="anthropic/echo",
        instructions="be brief",  # not an input item, as OpenAI lists them
        input=[
            {"role": "system", "content": "you echo"},
            {"role": "user", "content": [{"type": "input_text", "text": "one two"}]},
        ],
    )
    second = client.responses.create(
        model="anthropic/echo", input="three", previous_response_id=first.id
    )
    newest_first = client.responses.input_items.list(second.id)
    texts = [
        (item.type, getattr(item, "role", None), [part.text for part in item.content])
        for item in newest_first.data
    ]
    assert texts == [
        ("message", "user", ["three"]),
        ("message", "assistant", ["one two"]),  # the first response's answer
        ("message", "user", ["one two"]),
        ("message", "system", ["you echo"]),
    ]
    assert newest_first.has_more is False
    # One at a time, oldest first: the SDK follows ``after`` until ``has_more`` is false.
    pages = client.responses.input_items.list(second.id, limit=1, order="asc")
    assert [item.id for item in pages] == [item.id for item in reversed(newest_first.data)]
    # The first response was made from the first two (ids are each response's own).
    earlier = client.responses.input_items.list(first.id).data
    assert [(item.role, item.content[0].text) for item in earlier] == [
        ("user", "one two"),
        ("system", "you echo"),
    ]


def test_input_items_keep_tool_calls_and_their_results(client: openai.OpenAI) -> None:
    model = "ollama/assistant"
    first = client.responses.create(model=model, input="Weather in Rome?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        model=model,
        tools=[WEATHER],
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "hot"}],
    )
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [item.type for item in items] == ["message", "function_call", "function_call_output"]
    assert (items[1].call_id, items[1].name) == (call.call_id, "get_weather")
    assert (items[2].call_id, items[2].output) == (call.call_id, "hot")


def test_input_items_refuse_a_bad_page_and_an_unknown_response(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gemini/echo", input="page me")
    for bad in ({"limit": 0}, {"limit": 101}, {"order": "up"}, {"after": "msg_nope"}):
        with pytest.raises(openai.BadRequestError):
            client.responses.input_items.list(first.id, **bad)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_mw_unknown")


def test_openai_ids_still_go_to_openai(client: openai.OpenAI) -> None:
    # A relayed route passes an id it does not know on: the upstream judges it.
    with pytest.raises(openai.NotFoundError, match="resp_0123abcd") as refused:
        client.responses.create(
            model="openai/echo", input="relayed", previous_response_id="resp_0123abcd"
        )
    assert refused.value.code == "previous_response_not_found"


def test_an_unknown_id_on_a_translated_route_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="previous_response_id"):
        client.responses.create(model="gemini/echo", input="x", previous_response_id="resp_1")


# --- keys: a stored response belongs to its key (or its key's team) --------------------------


def test_another_keys_response_is_not_found(
    gateway_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = str(tmp_path_factory.mktemp("keys"))
    env = {**gateway_env, "MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}
    store_env = {"MODELWAY_DATA_DIR": data}
    _, alice = create_key(store_env)
    _, bob = create_key(store_env)
    _, red_one = create_key(store_env, owner_team="red")
    _, red_two = create_key(store_env, owner_team="red")
    with running_gateway(env) as url:

        def sdk(key: str) -> openai.OpenAI:
            return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)

        first = sdk(alice).responses.create(model="anthropic/echo", input="mine")
        for other in (bob, MASTER):
            with pytest.raises(openai.NotFoundError):
                sdk(other).responses.create(
                    model="anthropic/echo", input="x", previous_response_id=first.id
                )
            with pytest.raises(openai.NotFoundError):
                sdk(other).responses.retrieve(first.id)
        chained = sdk(alice).responses.create(
            model="anthropic/echo", input="again", previous_response_id=first.id
        )
        assert chained.output_text == "again"
        # A team's keys share their team's responses.
        team = sdk(red_one).responses.create(model="ollama/echo", input="ours")
        assert sdk(red_two).responses.retrieve(team.id).output_text == "ours"
        # Unauthenticated reads are refused before any lookup.
        refused = httpx.get(f"{url}/v1/responses/{team.id}")
        assert refused.status_code == 401 and "error" in refused.json()


# --- the OpenAI Agents SDK chaining runs with previous_response_id ---------------------------


def check_weather(city: str) -> str:
    """The weather in a city."""
    return f"hot in {city}"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_agents_sdk_chains_runs_by_previous_response_id(
    gateway_url: str, provider: str
) -> None:
    set_tracing_disabled(True)  # traces would go to OpenAI
    async with openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="x") as client:
        agent = Agent(
            name="weather",
            instructions="Answer from the tool.",
            tools=[function_tool(check_weather)],
            model=OpenAIResponsesModel(model=f"{provider}/echo", openai_client=client),
        )
        # Within the run, the tool's result goes back by previous_response_id alone.
        first = await Runner.run(
            agent, 'call check_weather {"city": "Rome"}', auto_previous_response_id=True
        )
        assert first.final_output == "The check_weather tool returned: hot in Rome"
        assert first.last_response_id is not None
        second = await Runner.run(
            agent, "and tomorrow?", previous_response_id=first.last_response_id
        )
        # The mock calls the offered tool again (arguments from its schema) and quotes it.
        assert second.final_output == "The check_weather tool returned: hot in mock"
        # The second run's first request carried the first run's conversation: without
        # it the mock would have counted the instructions and "and tomorrow?" (6 words).
        opening = second.raw_responses[0].usage
        assert opening.input_tokens > 20


@pytest.fixture(scope="module")
def gateway_env(mock_url: str) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": mock_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        "OLLAMA_BASE_URL": mock_url,
        "GEMINI_BASE_URL": mock_url,
        "GEMINI_API_KEY": "gemini-test-key",
    }
