"""Which providers exist, how each is reached by default, and which are enabled.

Adding an OpenAI-compatible provider is one ``ProviderSpec`` line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from modelway.config import Config, ConfigError, ProviderSettings, shown_url
from modelway.providers.anthropic import AnthropicAdapter
from modelway.providers.base import Adapter
from modelway.providers.gemini import GeminiAdapter
from modelway.providers.lean_transport import LeanAiohttpTransport
from modelway.providers.mock import MockProvider
from modelway.providers.ollama import OllamaAdapter
from modelway.providers.openai import AzureAdapter, OpenAIAdapter
from modelway.providers.transport import AiohttpTransport, Transport
from modelway.providers.upstream import Backend, HttpProvider
from modelway.secrets import Secret


class ProviderSpec(NamedTuple):
    """A provider's wire format and default base URL; ``keyless`` ones need no API key;
    ``replays_reasoning`` ones want thinking sent back (``OpenAIAdapter``)."""

    wire: str
    base_url: str
    keyless: bool = False
    replays_reasoning: bool = False


SPECS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec("openai", "https://api.openai.com/v1"),
    "anthropic": ProviderSpec("anthropic", "https://api.anthropic.com"),
    "gemini": ProviderSpec("gemini", "https://generativelanguage.googleapis.com"),
    # Azure's base URL is the customer's resource root: it has no default.
    "azure": ProviderSpec("azure", ""),
    "ollama": ProviderSpec("ollama", "http://localhost:11434", keyless=True),
    "openrouter": ProviderSpec("openai", "https://openrouter.ai/api/v1"),
    "groq": ProviderSpec("openai", "https://api.groq.com/openai/v1"),
    "mistral": ProviderSpec("openai", "https://api.mistral.ai/v1"),
    "deepseek": ProviderSpec("openai", "https://api.deepseek.com/v1", replays_reasoning=True),
    "together": ProviderSpec("openai", "https://api.together.xyz/v1"),
    "fireworks": ProviderSpec("openai", "https://api.fireworks.ai/inference/v1"),
    "vllm": ProviderSpec("openai", "http://localhost:8000/v1", keyless=True),
    "lmstudio": ProviderSpec("openai", "http://localhost:1234/v1", keyless=True),
}

_ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "ollama": OllamaAdapter,
    "gemini": GeminiAdapter,
}


def adapter_for(
    wire: str, settings: ProviderSettings | None = None, *, replays_reasoning: bool = False
) -> Adapter:
    """A fresh adapter for a wire format (Azure's takes its ``api_version``, OpenAI's
    whether to send thinking back)."""
    if wire == "azure":
        return AzureAdapter(settings.api_version if settings else None)
    if wire == "openai":
        return OpenAIAdapter(replays_reasoning=replays_reasoning)
    return _ADAPTERS[wire]()


def env_settings(name: str, environ: Mapping[str, str]) -> ProviderSettings | None:
    """Settings from ``<NAME>_API_KEY`` / ``<NAME>_BASE_URL``, or None when neither is set."""
    prefix = name.upper()
    key = environ.get(f"{prefix}_API_KEY") or None
    base_url = environ.get(f"{prefix}_BASE_URL") or None
    if key is None and base_url is None:
        return None
    try:
        return ProviderSettings(
            api_key=key,
            base_url=base_url,
            api_version=environ.get(f"{prefix}_API_VERSION") or None,
        )
    except ValueError as error:
        raise ConfigError(f"{prefix}_BASE_URL: {str(error).removeprefix('base_url: ')}") from None


def provider_settings(config: Config, environ: Mapping[str, str]) -> dict[str, ProviderSettings]:
    """Every enabled provider's settings: config entries, filled in from the environment.

    A provider the config switches off (``enabled: false``) is left out, keys or not.
    """
    off = config.switched_off()
    enabled: dict[str, ProviderSettings] = {}
    for name in SPECS:
        from_env = env_settings(name, environ)
        if from_env is not None and name not in off:
            enabled[name] = from_env
    for name, settings in config.providers.items():
        if name in off:
            continue
        from_env = enabled.get(name) or env_settings(name, environ)
        if from_env is not None:
            settings = ProviderSettings(
                api_key=settings.api_key or from_env.api_key,
                base_url=settings.base_url or from_env.base_url,
                headers=settings.headers,
                wire=settings.wire,
                api_version=settings.api_version or from_env.api_version,
            )
        enabled[name] = settings
    return enabled


def transport_for(upstream_client: str, *, refuse_link_local: bool) -> Transport:
    """The transport ``server.upstream_client`` names (``aiohttp`` or ``aiohttp-lean``)."""
    if upstream_client == "aiohttp":
        return AiohttpTransport(refuse_link_local=refuse_link_local)
    return LeanAiohttpTransport(refuse_link_local=refuse_link_local)


def build_backend(
    name: str,
    settings: ProviderSettings,
    *,
    model_base_url: str | None = None,
    model_api_key: str | None = None,
    model_headers: Mapping[str, str] | None = None,
    connected: bool = False,
    allow_link_local: bool = False,
    upstream_client: str = "aiohttp-lean",
) -> Backend:
    """The run-time provider for a name and its settings (deployment overrides win).

    ``connected``: connected at run time (the web chat's connect dialog), so its URL came
    from a caller: its errors are told by status alone, and it reaches no link-local or
    metadata address unless ``allow_link_local`` (``providers.destinations``).
    ``upstream_client``: ``server.upstream_client``, the transport it calls with.
    """
    if name == "mock":
        return MockProvider()
    spec = SPECS.get(name)
    wire = settings.wire or (spec.wire if spec else None)
    if wire is None or (wire not in _ADAPTERS and wire != "azure"):
        raise ConfigError(
            f"provider {name!r} is not available: give it `wire: openai|anthropic|ollama|gemini` "
            "in the providers section"
        )
    base_url = model_base_url or settings.base_url or (spec.base_url if spec else None)
    if not base_url:
        raise ConfigError(f"provider {name!r} needs a base_url")
    address = urlsplit(base_url)
    if address.scheme not in ("http", "https") or not address.hostname:
        raise ConfigError(
            f"provider {name!r}: base_url must be an http(s) URL with a host, "
            f"not {shown_url(base_url)!r}"
        )
    key = model_api_key or settings.api_key
    return HttpProvider(
        name,
        adapter_for(wire, settings, replays_reasoning=spec is not None and spec.replays_reasoning),
        base_url,
        Secret(key) if key else None,
        headers={**settings.headers, **(model_headers or {})},
        transport=transport_for(
            upstream_client, refuse_link_local=connected and not allow_link_local
        ),
        quote_errors=not connected,
    )
