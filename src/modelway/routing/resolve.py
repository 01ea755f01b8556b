"""From the ``model`` a caller sends to the provider calls that can answer it.

Order of rules: an alias from the config; ``provider/model``; a prefix rule
(``gpt-*`` → openai, ``claude-*`` → anthropic, ...); the default provider.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from modelway.config import Config, ConfigError, ModelAlias, ProviderSettings
from modelway.errors import BadRequest, UnknownModel
from modelway.providers.registry import SPECS, build_backend, provider_settings
from modelway.providers.upstream import Backend
from modelway.routing.deployments import DeploymentState
from modelway.routing.strategies import order_targets
from modelway.routing.targets import Route, Target

PREFIX_RULES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt-", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "gemini"),
)
#: Providers whose keyless preference makes them the default for bare model names.
_DEFAULT_PREFERENCE = ("ollama", "openai")


def enabling_variables(name: str) -> str:
    """The environment variables that enable provider ``name``, as a user would set them."""
    prefix = name.upper()
    spec = SPECS.get(name)
    if spec is not None and spec.keyless:  # a local server: its address, no key
        return f"{prefix}_BASE_URL"
    if spec is not None and not spec.base_url:  # Azure: a key and the customer's endpoint
        return f"{prefix}_API_KEY and {prefix}_BASE_URL"
    return f"{prefix}_API_KEY"


def check_deployments_enabled(config: Config, environ: Mapping[str, str]) -> None:
    """``ConfigError`` for an alias deployment whose provider is not enabled: with neither
    its own endpoint, key or headers nor the provider's, every call to it would go to the
    vendor's default address with no key (``modelway serve`` and ``config check`` ask)."""
    enabled = provider_settings(config, environ)
    for index, alias in enumerate(config.models):
        for number, deployment in enumerate(alias.deployments):
            own = deployment.base_url or deployment.api_key or deployment.headers
            if deployment.provider in enabled or deployment.provider == "mock" or own:
                continue
            raise ConfigError(
                f"models[{index}].deployments[{number}]: alias {alias.name!r} uses provider "
                f"{deployment.provider!r}, which is not enabled (set "
                f"{enabling_variables(deployment.provider)} or add it to the providers "
                "section)"
            )


class Router:
    """Resolves model names; owns every backend and closes them."""

    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        backends: Mapping[str, Backend] | None = None,
    ) -> None:
        self._config = config
        #: Providers the config switches off: their models are unknown.
        self.switched_off = config.switched_off()
        self.settings: dict[str, ProviderSettings] = provider_settings(config, environ)
        self.backends: dict[str, Backend] = {}
        if "mock" not in self.switched_off:
            self.backends["mock"] = build_backend("mock", ProviderSettings())
        if backends is not None:
            # Injected backends (tests, embedding apps) replace the configured ones.
            self.backends.update(backends)
            self.settings.update({name: ProviderSettings() for name in backends})
        else:
            for name, settings in self.settings.items():
                if name != "mock":
                    self.backends[name] = build_backend(
                        name, settings, upstream_client=config.server.upstream_client
                    )
        self.aliases: dict[str, ModelAlias] = {alias.name: alias for alias in config.models}
        self._alias_targets = {
            name: self._deployments(alias) for name, alias in self.aliases.items()
        }
        self._turns = dict.fromkeys(self.aliases, 0)
        self._rng = random.Random()
        self._retired: list[Backend] = []
        #: A provider the config or the environment set up, replaced by one connected at
        #: run time: back in service when that one is disconnected.
        self._replaced: dict[str, tuple[Backend, ProviderSettings]] = {}
        self._connected: set[str] = set()
        self.default_provider = config.server.default_provider or next(
            (name for name in _DEFAULT_PREFERENCE if name in self.backends), None
        )

    def _deployments(self, alias: ModelAlias) -> list[Target]:
        targets = []
        cooldown = alias.cooldown or self._config.server.cooldown
        for index, deployment in enumerate(alias.deployments):
            overrides = deployment.base_url or deployment.api_key or deployment.headers
            if overrides or deployment.provider not in self.backends:
                settings = self.settings.get(deployment.provider, ProviderSettings())
                backend = build_backend(
                    deployment.provider,
                    settings,
                    model_base_url=deployment.base_url,
                    model_api_key=deployment.api_key,
                    model_headers=deployment.headers,
                    upstream_client=self._config.server.upstream_client,
                )
                # Owned here so ``aclose`` reaches it too.
                self.backends[f"{alias.name}#{len(self.backends)}"] = backend
            else:
                backend = self.backends[deployment.provider]
            name = f"{alias.name}#{index} ({deployment.provider}/{deployment.model})"
            state = DeploymentState(name, cooldown, deployment.rpm, deployment.tpm)
            targets.append(Target(backend, deployment.model, state, max(1, deployment.weight)))
        return targets

    def deployment_states(self) -> dict[str, list[DeploymentState]]:
        """Every alias's deployment states, for ``/health``."""
        return {
            name: [t.deployment for t in targets if t.deployment is not None]
            for name, targets in self._alias_targets.items()
        }

    def connect(self, name: str, settings: ProviderSettings) -> None:
        """Add or replace provider ``name`` at run time (the web chat's connect dialog)."""
        if name == "mock":
            raise BadRequest("the mock provider is built in and cannot be replaced")
        if name in self.switched_off:
            raise BadRequest(f"provider {name!r} is switched off in the config (enabled: false)")
        if name not in SPECS and settings.wire is None:
            raise BadRequest(f"unknown provider {name!r}")
        allow_link_local = self._config.server.allow_link_local_provider_urls
        try:
            backend = build_backend(
                name,
                settings,
                connected=True,
                allow_link_local=allow_link_local,
                upstream_client=self._config.server.upstream_client,
            )
        except ConfigError as error:
            raise BadRequest(str(error)) from None
        previous = self.backends.get(name)
        if previous is not None:
            if name not in self._connected:
                # The configured one: kept aside, not closed, to come back on disconnect.
                self._replaced[name] = (previous, self.settings[name])
            else:
                # Calls in flight may still hold it: closed with the router, not now.
                self._retired.append(previous)
        self.backends[name] = backend
        self.settings[name] = settings
        self._connected.add(name)
        if self.default_provider is None and name in _DEFAULT_PREFERENCE:
            self.default_provider = name

    def disconnect(self, name: str) -> bool:
        """Remove a provider added at run time; ``False`` if there was none."""
        backend = self.backends.get(name)
        if name == "mock" or backend is None:
            return False
        self._retired.append(self.backends.pop(name))
        self.settings.pop(name, None)
        self._connected.discard(name)
        replaced = self._replaced.pop(name, None)
        if replaced is not None:  # the configured one serves again
            self.backends[name], self.settings[name] = replaced
        if self.default_provider == name and self._config.server.default_provider is None:
            self.default_provider = next(
                (other for other in _DEFAULT_PREFERENCE if other in self.backends), None
            )
        return True

    def route(self, model: str, *, take_turn: bool = True) -> Route:
        """The route for a model name; ``UnknownModel`` if nothing serves it.

        Each call that will be made takes the next turn of its alias's strategy; a lookup
        that makes no call (``take_turn=False``: showing or counting) leaves the turns be.
        """
        server = self._config.server
        if model in self.aliases:
            return self._alias_route(model, take_turn)
        return Route([self.direct_target(model)], server.retries, server.timeouts, None)

    def _alias_route(self, name: str, take_turn: bool) -> Route:
        alias = self.aliases[name]
        targets = self._ordered(name, take_turn)
        if alias.fallbacks:
            # A fallback's own fallbacks follow it, breadth first (the config refuses cycles;
            # an alias reached twice is tried once). Before, a chain stopped after one level.
            pending = list(alias.fallbacks)
            reached = {name}
            while pending:
                fallback = pending.pop(0)
                if fallback in reached:
                    continue
                reached.add(fallback)
                targets.extend(
                    t._replace(fallback=fallback)
                    for t in self._ordered(fallback, take_turn)
                    if t not in targets
                )
                pending.extend(self.aliases[fallback].fallbacks)
        server = self._config.server
        retries = server.retries if alias.retries is None else alias.retries
        return Route(targets, retries, alias.timeouts or server.timeouts, name)

    def _ordered(self, name: str, take_turn: bool) -> list[Target]:
        """An alias's deployments in the order its strategy tries them this time."""
        alias = self.aliases[name]
        turn = self._turns[name]
        if take_turn:
            self._turns[name] = turn + 1
        return order_targets(alias.strategy, self._alias_targets[name], turn, self._rng)

    def direct_target(self, model: str) -> Target:
        """The target for ``provider/model``, a prefix rule or the default provider."""
        provider, slash, rest = model.partition("/")
        known = provider in self.backends or provider in SPECS or provider in self.switched_off
        if slash and known:
            return Target(self._backend(provider, model), rest)
        for prefix, name in PREFIX_RULES:
            if model.startswith(prefix):
                return Target(self._backend(name, model), model)
        if self.default_provider is None:
            if slash:
                raise UnknownModel(
                    f"model {model!r}: {provider!r} is not a provider name, and no default "
                    "provider is configured to take the whole name"
                )
            raise UnknownModel(
                f"model {model!r} is not an alias, has no provider prefix"
                f"{self._prefix_examples()} and no default provider is configured"
            )
        return Target(self._backend(self.default_provider, model), model)

    def _prefix_examples(self) -> str:
        """`` (such as 'openai/' or 'mock/')`` from the providers this gateway has."""
        names = [f"'{name}/'" for name in self.backends if "#" not in name][:2]
        return f" (such as {' or '.join(names)})" if names else ""

    def _backend(self, name: str, model: str) -> Backend:
        backend = self.backends.get(name)
        if name in self.switched_off:
            raise UnknownModel(f"model {model!r} needs provider {name!r}, which is switched off")
        if backend is None:
            raise UnknownModel(
                f"model {model!r} needs provider {name!r}, which is not configured "
                f"(set {enabling_variables(name)} or add it to the providers section)"
            )
        return backend

    async def aclose(self) -> None:
        kept_aside = [backend for backend, _ in self._replaced.values()]
        for backend in [*self.backends.values(), *self._retired, *kept_aside]:
            await backend.aclose()
