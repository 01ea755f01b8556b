"""Rules a config must follow beyond each value's own type: references that resolve."""

from __future__ import annotations

from modelway.config.schema import KNOWN_PROVIDERS, Config
from modelway.config.source_map import SourceMap

_WIRES = "openai, anthropic or ollama"


def check_config(config: Config, source: SourceMap) -> list[str]:
    """Return every problem found, each naming file and line; empty when the config is sound."""
    return [
        *_check_providers(config, source),
        *_check_deployments(config, source),
        *_check_alias_names(config, source),
        *_check_fallbacks(config, source),
        *_check_switched_off(config, source),
    ]


def _check_providers(config: Config, source: SourceMap) -> list[str]:
    problems = []
    for name, settings in config.providers.items():
        if name in KNOWN_PROVIDERS:
            continue
        if settings.wire is None:
            problems.append(
                source.problem(
                    ("providers", name),
                    f"unknown provider {name!r}: a custom provider needs wire: {_WIRES} "
                    f"(known providers: {', '.join(KNOWN_PROVIDERS)})",
                )
            )
        elif settings.base_url is None:
            problems.append(
                source.problem(("providers", name), "a custom provider needs a base_url")
            )
    default = config.server.default_provider
    if default is not None and not _is_provider(config, default):
        path = ("server", "default_provider")
        problems.append(source.problem(path, f"unknown provider {default!r}"))
    return problems


def _check_deployments(config: Config, source: SourceMap) -> list[str]:
    problems = []
    for alias_index, alias in enumerate(config.models):
        for index, deployment in enumerate(alias.deployments):
            if not _is_provider(config, deployment.provider):
                path = ("models", alias_index, "deployments", index, "provider")
                message = (
                    f"unknown provider {deployment.provider!r}: "
                    "declare it under providers or use a known one"
                )
                problems.append(source.problem(path, message))
    return problems


def _check_alias_names(config: Config, source: SourceMap) -> list[str]:
    problems = []
    first_index: dict[str, int] = {}
    for index, alias in enumerate(config.models):
        if alias.name in first_index:
            first_line = source.line(("models", first_index[alias.name], "name"))
            message = f"duplicate alias {alias.name!r} (first defined at line {first_line})"
            problems.append(source.problem(("models", index, "name"), message))
        else:
            first_index[alias.name] = index
    return problems


def _check_fallbacks(config: Config, source: SourceMap) -> list[str]:
    problems = []
    index_of: dict[str, int] = {}
    for index, alias in enumerate(config.models):
        index_of.setdefault(alias.name, index)
    for alias_index, alias in enumerate(config.models):
        for index, fallback in enumerate(alias.fallbacks):
            if fallback not in index_of:
                path = ("models", alias_index, "fallbacks", index)
                problems.append(source.problem(path, f"fallback {fallback!r} is not an alias"))
    problems.extend(_fallback_cycles(config, source, index_of))
    return problems


def _fallback_cycles(config: Config, source: SourceMap, index_of: dict[str, int]) -> list[str]:
    # Depth-first search; an edge back into the current trail closes a cycle, reported once.
    problems: list[str] = []
    finished: set[str] = set()
    trail: list[str] = []

    def visit(name: str) -> None:
        trail.append(name)
        alias = config.models[index_of[name]]
        for index, fallback in enumerate(alias.fallbacks):
            if fallback in trail:
                cycle = " -> ".join([*trail[trail.index(fallback) :], fallback])
                path = ("models", index_of[name], "fallbacks", index)
                problems.append(source.problem(path, f"fallback cycle: {cycle}"))
            elif fallback in index_of and fallback not in finished:
                visit(fallback)
        trail.pop()
        finished.add(name)

    for name in index_of:
        if name not in finished:
            visit(name)
    return problems


def _check_switched_off(config: Config, source: SourceMap) -> list[str]:
    """A provider switched off (``enabled: false``) may not serve an alias or be the default."""
    off = config.switched_off()
    problems = []
    default = config.server.default_provider
    if default in off:
        message = f"provider {default!r} is switched off (enabled: false)"
        problems.append(source.problem(("server", "default_provider"), message))
    for alias_index, alias in enumerate(config.models):
        for index, deployment in enumerate(alias.deployments):
            if deployment.provider in off:
                path = ("models", alias_index, "deployments", index, "provider")
                message = f"provider {deployment.provider!r} is switched off (enabled: false)"
                problems.append(source.problem(path, message))
    return problems


def _is_provider(config: Config, name: str) -> bool:
    return name in KNOWN_PROVIDERS or name in config.providers
