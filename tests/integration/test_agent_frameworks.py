"""Agent frameworks as clients of the gateway: the OpenAI Agents SDK and pydantic-ai.

Each runs against ``modelway serve`` with ``modelway mock`` as the upstream in several
provider formats. A prompt ``call <tool>`` makes the mock ask for the framework's tool;
the framework runs it and sends the result back, and the mock's answer quotes it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import NativeOutput
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.profiles.anthropic import anthropic_model_profile
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from tests.integration.gateway import running_gateway
from tests.integration.mockserver import providers_at, running_mock

SECRET = "the secret word is kumquat"
KEY = "mw-any-key-in-open-mode"
FORMATS = ["openai/gpt-5", "anthropic/claude-sonnet-4-6", "ollama/llama3"]


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mock() as mock_url:
        env = {
            "MODELWAY_DATA_DIR": str(tmp_path_factory.mktemp("gateway")),
            **providers_at(mock_url),
        }
        with running_gateway(env) as url:
            yield url


def read_notes() -> str:
    """Read the user's notes."""
    return SECRET


# --- the OpenAI Agents SDK: the Responses API, function tools, streaming ----------------------


@pytest.mark.parametrize("model", FORMATS)
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_the_openai_agents_sdk_runs_a_tool_through_the_gateway(
    gateway_url: str, model: str, streamed: bool
) -> None:
    set_tracing_disabled(True)  # traces would go to OpenAI
    async with AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=KEY) as client:
        output = await _run_agent(client, model, streamed)
    assert isinstance(output, str) and SECRET in output


async def _run_agent(client: AsyncOpenAI, model: str, streamed: bool) -> object:
    agent = Agent(
        name="notes",
        instructions="Answer from the notes.",
        tools=[function_tool(read_notes)],
        model=OpenAIResponsesModel(model=model, openai_client=client),
    )
    if streamed:
        run = Runner.run_streamed(agent, "call read_notes")
        async for _ in run.stream_events():
            pass
        return run.final_output
    return (await Runner.run(agent, "call read_notes")).final_output


# --- pydantic-ai through the OpenAI and the Anthropic endpoints ------------------------------


@pytest.mark.parametrize("model", FORMATS)
async def test_pydantic_ai_runs_a_tool_through_the_openai_endpoint(
    gateway_url: str, model: str
) -> None:
    async with AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=KEY) as client:
        provider = OpenAIProvider(openai_client=client)
        agent = PydanticAgent(OpenAIChatModel(model, provider=provider), tools=[read_notes])
        result = await agent.run("call read_notes")
    assert SECRET in result.output


@pytest.mark.parametrize("model", FORMATS)
async def test_pydantic_ai_runs_a_tool_through_the_anthropic_endpoint(
    gateway_url: str, model: str
) -> None:
    async with AsyncAnthropic(base_url=gateway_url, api_key=KEY) as client:
        provider = AnthropicProvider(anthropic_client=client)
        agent = PydanticAgent(AnthropicModel(model, provider=provider), tools=[read_notes])
        result = await agent.run("call read_notes")
    assert SECRET in result.output


# --- structured output: each framework's own way of asking for it ----------------------------


class City(BaseModel):
    name: str
    population: int
    landmarks: list[str]


def _valid_city(output: object) -> None:
    assert isinstance(output, City), output
    assert isinstance(output.population, int) and all(isinstance(x, str) for x in output.landmarks)


@pytest.mark.parametrize("model", [*FORMATS, "gemini/gemini-2.5-flash"])
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_the_openai_agents_sdk_gets_its_output_type(
    gateway_url: str, model: str, streamed: bool
) -> None:
    """``output_type`` is the Responses API's ``text.format: json_schema``."""
    set_tracing_disabled(True)
    async with AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=KEY) as client:
        agent = Agent(
            name="cities",
            instructions="Describe the city.",
            output_type=City,
            model=OpenAIResponsesModel(model=model, openai_client=client),
        )
        if streamed:
            run = Runner.run_streamed(agent, "Paris")
            async for _ in run.stream_events():
                pass
            output = run.final_output
        else:
            output = (await Runner.run(agent, "Paris")).final_output
    _valid_city(output)


@pytest.mark.parametrize("model", [*FORMATS, "gemini/gemini-2.5-flash"])
async def test_the_openai_agents_sdk_gets_its_output_type_after_a_tool(
    gateway_url: str, model: str
) -> None:
    """Tools and an output type together: the tool runs, then the answer is a City."""
    set_tracing_disabled(True)
    used: list[str] = []

    def look_up_city() -> str:
        """Look the city up."""
        used.append("look_up_city")
        return "Paris, 2,100,000 people, the Eiffel Tower"

    async with AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=KEY) as client:
        agent = Agent(
            name="cities",
            instructions="Look the city up, then describe it.",
            tools=[function_tool(look_up_city)],
            output_type=City,
            model=OpenAIResponsesModel(model=model, openai_client=client),
        )
        output = (await Runner.run(agent, "call look_up_city")).final_output
    assert used == ["look_up_city"]
    _valid_city(output)


@pytest.mark.parametrize("model", [*FORMATS, "gemini/gemini-2.5-flash"])
async def test_pydantic_ai_native_output_through_the_openai_endpoint(
    gateway_url: str, model: str
) -> None:
    """``NativeOutput`` is Chat Completions' ``response_format: json_schema``."""
    async with AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=KEY) as client:
        provider = OpenAIProvider(openai_client=client)
        agent = PydanticAgent(
            OpenAIChatModel(model, provider=provider), output_type=NativeOutput(City)
        )
        result = await agent.run("Paris")
    _valid_city(result.output)


@pytest.mark.parametrize("model", [*FORMATS, "gemini/gemini-2.5-flash"])
async def test_pydantic_ai_native_output_through_the_anthropic_endpoint(
    gateway_url: str, model: str
) -> None:
    """``NativeOutput`` is Anthropic's structured output (``output_format``, beta header).

    pydantic-ai decides by the model's name whether Anthropic's native structured output
    is there; a gateway's ``provider/model`` names need the profile named for it.
    """
    async with AsyncAnthropic(base_url=gateway_url, api_key=KEY) as client:
        provider = AnthropicProvider(anthropic_client=client)
        profile = anthropic_model_profile("claude-sonnet-4-6")
        agent = PydanticAgent(
            AnthropicModel(model, provider=provider, profile=profile),
            output_type=NativeOutput(City),
        )
        result = await agent.run("Paris")
    _valid_city(result.output)
