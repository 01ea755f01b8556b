"""When an answer may come from the response cache, and whose entries it may see.

``CachePolicy`` is one alias's settings: the ``cache:`` section of ``modelway.yaml`` with
the alias's own ``cache:`` over it (``policy_for``). ``CacheControl`` is what one request's
``Cache-Control`` header asks (RFC 9111 request directives; unknown ones are ignored, as
the RFC says). ``deterministic`` is the default test of whether an answer is worth
keeping: a request that may be answered differently each time is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from modelway.config import AliasCache, CacheNamespace, CacheSettings
from modelway.types import ChatRequest

if TYPE_CHECKING:
    from modelway.calls.caller import Caller  # the call layer imports this package

#: The settings of an alias that turns the cache on without a ``cache:`` section.
DEFAULT_SETTINGS = CacheSettings()


class CachePolicy(NamedTuple):
    """How one alias's answers are cached."""

    ttl: float
    namespace: CacheNamespace
    deterministic_only: bool


def policy_for(
    settings: CacheSettings | None, alias: bool | AliasCache | None
) -> CachePolicy | None:
    """The policy of an alias with ``alias`` as its own ``cache:``; None when off for it."""
    if alias is None:
        if settings is None:
            return None
        alias = AliasCache()
    elif alias is False:
        return None
    elif alias is True:
        alias = AliasCache()
    if not alias.enabled:
        return None
    base = settings or DEFAULT_SETTINGS
    return CachePolicy(
        ttl=alias.ttl if alias.ttl is not None else base.ttl,
        namespace=alias.namespace if alias.namespace is not None else base.namespace,
        deterministic_only=(
            alias.deterministic_only
            if alias.deterministic_only is not None
            else base.deterministic_only
        ),
    )


class CacheControl(NamedTuple):
    """A request's ``Cache-Control``: skip the lookup, do not store, or a freshness bound."""

    no_cache: bool = False
    no_store: bool = False
    #: The oldest entry (seconds) the caller accepts; None: any within the TTL.
    max_age: int | None = None

    @property
    def moot(self) -> bool:
        """Neither looked up nor stored: the cache has nothing to do for this request."""
        return self.no_cache and self.no_store

    @property
    def shares(self) -> bool:
        """Whether the request may wait for an identical one in flight, or be waited for: it
        takes a stored answer and stores its own (no ``no-cache``, ``no-store``, ``max-age=0``)."""
        return not (self.no_cache or self.no_store) and self.max_age != 0


#: A request without the header (or with nothing in it the cache reads).
NO_DIRECTIVES = CacheControl()


def parse_cache_control(header: str | None) -> CacheControl:
    """The directives of a ``Cache-Control`` request header; malformed parts are ignored."""
    if not header:
        return NO_DIRECTIVES
    no_cache = no_store = False
    max_age: int | None = None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "max-age":
            value = value.strip().strip('"')
            # RFC 9111 5.2.1.1: delta-seconds, digits only; a second max-age is ignored.
            if value.isdigit() and value.isascii() and max_age is None:
                max_age = int(value)
    if not (no_cache or no_store or max_age is not None):
        return NO_DIRECTIVES
    return CacheControl(no_cache, no_store, max_age)


def deterministic(request: ChatRequest) -> bool:
    """Whether the caller asked for a repeatable answer: temperature 0, or a seed."""
    return request.temperature == 0 or request.extra.get("seed") is not None


def namespace_of(caller: Caller, mode: CacheNamespace) -> str:
    """The namespace a caller's entries live in: one tenant never reads another's.

    ``team`` falls back to the key when the key has no team; a call without a key (an open
    gateway, the master key) has a namespace of its own.
    """
    if mode == "shared":
        return "shared"
    if mode == "team" and caller.team is not None:
        return f"team:{caller.team}"
    if caller.key_id is not None:
        return f"key:{caller.key_id}"
    return "master" if caller.is_master else "open"


#: The namespaces that name no team or key: a ``shared`` alias's, the master key's, an open
#: gateway's.
FIXED_NAMESPACES = frozenset({"shared", "master", "open"})
NamespaceKind = Literal["team", "key", "fixed"]


def parse_namespace(namespace: str) -> tuple[NamespaceKind, str] | None:
    """What ``namespace`` names, as ``namespace_of`` builds it: ``("team", name)``,
    ``("key", id)`` or ``("fixed", namespace)``; None when ``namespace_of`` never gives it."""
    if namespace in FIXED_NAMESPACES:
        return "fixed", namespace
    kind, colon, name = namespace.partition(":")
    if colon and kind == "team":
        return "team", name
    if colon and kind == "key" and name:
        return "key", name
    return None
