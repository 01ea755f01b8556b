"""OpenAI on Azure: deployment paths, ``api-version`` and the ``api-key`` header."""

from __future__ import annotations

from pathlib import Path

from modelway.config import parse_config
from modelway.engine import Engine
from modelway.providers.openai import AzureAdapter
from modelway.providers.registry import adapter_for, build_backend, provider_settings
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from modelway.types import ChatRequest, EmbeddingRequest, Message, TextPart

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"
ENV = {
    "AZURE_API_KEY": "azure-secret-key-123456",
    "AZURE_BASE_URL": "https://contoso.openai.azure.com",
    "AZURE_API_VERSION": "2025-01-01-preview",
}


def test_azure_paths_name_the_deployment_and_carry_the_api_version() -> None:
    adapter = AzureAdapter("2024-10-21")
    request = ChatRequest(model="x", messages=[Message("user", [TextPart("hi")])])
    chat = adapter.chat_request(request, "my-gpt4o")
    assert chat.path == "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    embed = adapter.embeddings_request(EmbeddingRequest(model="x", input=["a"]), "emb")
    assert embed.path == "/openai/deployments/emb/embeddings?api-version=2024-10-21"
    assert adapter.auth_headers("k") == {"api-key": "k"}


def test_azure_is_enabled_from_the_environment_with_its_api_version() -> None:
    settings = provider_settings(parse_config("", ENV), ENV)["azure"]
    adapter = adapter_for("azure", settings)
    assert isinstance(adapter, AzureAdapter)
    assert adapter.api_version == "2025-01-01-preview"
    backend = build_backend("azure", settings)
    assert isinstance(backend, HttpProvider)
    assert backend.base_url == "https://contoso.openai.azure.com"


async def test_a_chat_call_reaches_the_deployment_url_with_the_key_header() -> None:
    seen: list[UpstreamRequest] = []

    def upstream(request: UpstreamRequest) -> MockReply:
        seen.append(request)
        return MockReply(200, (FIXTURES / "chat_text.json").read_bytes())

    azure = HttpProvider(
        "azure",
        AzureAdapter("2024-10-21"),
        "https://contoso.openai.azure.com/",
        Secret("azure-secret-key-123456"),
        transport=MockTransport(upstream),
    )
    engine = Engine(parse_config("", {}), {}, {"azure": azure})
    request = ChatRequest(model="azure/prod-gpt4o", messages=[Message("user", [TextPart("hi")])])
    answer, _ = await engine.complete(request, request_id="r1")
    assert answer.message.text()
    assert seen[0].url == (
        "https://contoso.openai.azure.com/openai/deployments/prod-gpt4o/chat/completions"
        "?api-version=2024-10-21"
    )
    assert seen[0].headers["api-key"] == "azure-secret-key-123456"
    assert "authorization" not in seen[0].headers
    assert "azure-secret-key-123456" not in repr(azure)
