"""The shape of ``modelway.yaml`` as msgspec structs: what a valid config can say."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec

from modelway.config.masking import mask_secret, shown_url

#: Provider names usable without declaring them under ``providers``.
KNOWN_PROVIDERS: tuple[str, ...] = (
    "openai",
    "azure",
    "anthropic",
    "gemini",
    "ollama",
    "openrouter",
    "groq",
    "mistral",
    "deepseek",
    "together",
    "fireworks",
    "vllm",
    "lmstudio",
    "mock",
)

Wire = Literal["openai", "anthropic", "ollama", "gemini"]
Strategy = Literal["round-robin", "weighted", "least-busy", "lowest-latency"]
LogLevel = Literal["debug", "info", "warning", "error"]
#: How upstreams are called: aiohttp's ``ClientSession``, or its connector and parser alone
#: (``providers/lean_transport.py``; docs/benchmarks.md, "Upstream clients").
UpstreamClient = Literal["aiohttp", "aiohttp-lean"]

#: Up to a year: long enough for any TTL, and finite (``.inf`` reached aiohttp's timers as
#: an ``OverflowError`` on every upstream call).
Seconds = Annotated[float, msgspec.Meta(gt=0, le=365 * 86400)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Name = Annotated[str, msgspec.Meta(min_length=1)]
#: What a Redis URL starts with (redis-py's ``from_url`` takes no other).
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: A price or budget in USD: finite (YAML's ``.inf`` priced every call at infinity).
Dollars = Annotated[float, msgspec.Meta(ge=0, le=1e12)]


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A config section whose repr never shows a secret."""

    #: Fields shown masked: keys, and header values (they often carry ``Authorization``).
    _secret_fields: ClassVar[frozenset[str]] = frozenset()
    #: URL fields shown with a password and query values masked (``shown_url``).
    _url_fields: ClassVar[frozenset[str]] = frozenset({"base_url"})

    def _safe_items(self) -> Iterator[tuple[str, Any]]:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in self._url_fields and isinstance(value, str):
                value = shown_url(value)
            elif name in self._secret_fields:
                if isinstance(value, dict):
                    value = {key: mask_secret(item) for key, item in value.items()}
                elif isinstance(value, str):
                    value = mask_secret(value)
            yield name, value

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._safe_items())
        return f"{type(self).__name__}({fields})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # msgspec's own rich repr would print the secrets this class hides.
        return list(self._safe_items())


#: An HTTP header name (RFC 9110 ``token``).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")


def check_endpoint(base_url: str | None, headers: Mapping[str, str]) -> None:
    """``ValueError`` naming the field for a base URL no request can go to (not http(s),
    no host, a port that is no number) or a header no request can carry; neither is shown,
    as either may hold a secret."""
    if base_url is not None:
        if any(c < " " or c == "\x7f" for c in base_url):
            # urlsplit drops tabs and line breaks unseen; the URL said is not the URL used.
            raise ValueError("base_url: no control characters (a line break, a tab)")
        try:
            address = urlsplit(base_url)
            port = address.port  # raises for a port that is no number or out of range
        except ValueError as error:
            raise ValueError(f"base_url: not a URL ({error})") from None
        if address.scheme not in ("http", "https") or not address.hostname:
            raise ValueError("base_url: an http:// or https:// URL with a host")
        if port == 0:
            raise ValueError("base_url: not a URL (port 0)")
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"headers: {name[:40]!r} is not an HTTP header name")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"headers.{name}: a value on one line (no line break)")


class ProviderSettings(_Section, frozen=True, kw_only=True):
    """Credentials and endpoint for one provider; any name with a ``wire`` is a custom one."""

    _secret_fields = frozenset({"api_key", "headers"})

    api_key: str | None = None
    base_url: str | None = None
    headers: dict[str, str] = {}
    wire: Wire | None = None
    api_version: str | None = None
    #: ``false`` switches the provider off, its key in the environment notwithstanding
    #: (the built-in ``mock``, which is otherwise always on, included).
    enabled: bool = True

    def __post_init__(self) -> None:
        check_endpoint(self.base_url, self.headers)


class Timeouts(_Section, frozen=True, kw_only=True):
    """Seconds allowed to connect, for the first token, between chunks, and in all."""

    connect: Seconds = 10.0
    first_token: Seconds = 60.0
    stall: Seconds = 60.0
    total: Seconds = 600.0


class Cooldown(_Section, frozen=True, kw_only=True):
    """A deployment failing ``failures`` times within ``window`` seconds rests ``seconds``."""

    failures: Positive = 3
    window: Seconds = 60.0
    seconds: Seconds = 30.0


class Deployment(_Section, frozen=True, kw_only=True):
    """One upstream model behind an alias, with its own endpoint, weight and caps."""

    _secret_fields = frozenset({"api_key", "headers"})

    provider: Name
    model: Name
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = {}
    weight: Positive = 1
    rpm: Positive | None = None
    tpm: Positive | None = None

    def __post_init__(self) -> None:
        check_endpoint(self.base_url, self.headers)


CacheNamespace = Literal["team", "key", "shared"]


class AliasCache(_Section, frozen=True, kw_only=True):
    """One alias's response cache settings: each field unset takes the ``cache:`` section's."""

    enabled: bool = True
    ttl: Seconds | None = None
    namespace: CacheNamespace | None = None
    deterministic_only: bool | None = None


class ModelAlias(_Section, frozen=True, kw_only=True):
    """A model name clients send, served by one or more deployments."""

    name: Name
    strategy: Strategy = "round-robin"
    deployments: Annotated[list[Deployment], msgspec.Meta(min_length=1)]
    fallbacks: list[Name] = []
    timeouts: Timeouts | None = None
    retries: Count | None = None
    cooldown: Cooldown | None = None
    #: The response cache for this alias: ``true``/``false`` turns it on or off, a mapping
    #: overrides the ``cache:`` section's fields; unset follows the section (docs/cache.md).
    cache: bool | AliasCache | None = None


class KeyChecks(_Section, frozen=True, kw_only=True):
    """Bounds on checking keys a worker has not verified yet (one Argon2 run, 64 MiB, each).

    Keys already verified are served from memory and never limited. Failures count per
    client address (its /64 for IPv6) and per key prefix from that address, over a
    sliding ``window`` of seconds; past either limit the address's unverified keys get a
    429 until failures leave the window.
    """

    #: Failed checks of unverified keys one client address may cause per ``window``.
    failures_per_address: Positive = 30
    #: Failed checks of keys with one lookup prefix, from one address, per ``window``.
    failures_per_prefix: Positive = 10
    window: Seconds = 60.0
    #: Argon2 checks running at once in one worker process.
    concurrent: Positive = 1
    #: Checks waiting for one of those; a check beyond them is answered 503.
    waiting: Count = 32


class ServerSettings(_Section, frozen=True, kw_only=True):
    """Where the gateway listens and the defaults for direct ``provider/model`` calls."""

    host: Name = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    #: Worker processes (``modelway serve --workers``); one per core is usual.
    workers: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    default_provider: Name | None = None
    max_body_bytes: Positive = 10 * 1024 * 1024
    #: Seconds a caller has to send a whole request body (408 after).
    body_timeout: Seconds = 60.0
    #: Slow request bodies (arriving for a second or more) a worker receives at once;
    #: past them a new request is answered 503 at once.
    max_bodies_arriving: Positive = 512
    timeouts: Timeouts = msgspec.field(default_factory=Timeouts)
    retries: Count = 2
    cooldown: Cooldown = msgspec.field(default_factory=Cooldown)
    #: Seconds open streams may take to finish after SIGTERM before they are cut.
    shutdown_grace: Seconds = 30.0
    #: Self-service sign-up (``POST /auth/register``, ``POST /auth/keys``).
    signup: bool = False
    #: Host names an open gateway (no key) answers to besides loopback ones; ``*``: any.
    allowed_hosts: list[Name] = []
    #: Whether providers connected at run time (the web chat's connect dialog) may reach
    #: link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, ...).
    allow_link_local_provider_urls: bool = False
    #: The HTTP client every provider is called with (``UpstreamClient``).
    upstream_client: UpstreamClient = "aiohttp-lean"
    #: Limits on checking keys not yet verified (against guessing and CPU exhaustion).
    key_checks: KeyChecks = msgspec.field(default_factory=KeyChecks)
    #: Whether ``/health/ready`` needs the store (and Redis, when configured) to answer.
    #: false: only this replica's own state counts, so a restart of the database every
    #: replica shares does not take them all out of the load balancer at once.
    ready_needs_dependencies: bool = True
    #: Addresses and CIDR blocks of reverse proxies whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` are believed (``gateway.proxies``); none by default.
    trusted_proxies: Annotated[list[Name], msgspec.Meta(max_length=256)] = []

    def __post_init__(self) -> None:
        for value in self.trusted_proxies:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {value!r} is not an IP address or CIDR block"
                ) from None


class LongPromptPrice(_Section, frozen=True, kw_only=True):
    """The rates of a call whose prompt is longer than ``above_tokens``, for all its tokens.

    Vendors bill a long prompt's whole call higher, the answer too: Gemini 2.5 Pro above
    200k prompt tokens, Claude Sonnet 4 and 4.5 with the 1M context above 200k, Gemini
    1.5 above 128k. The prompt counts cache reads and writes (``Usage.prompt_tokens``).
    """

    #: The longest prompt still billed at the base price (Gemini: "prompts <= 200k").
    above_tokens: Annotated[int, msgspec.Meta(ge=1)]
    input_per_million: Dollars
    output_per_million: Dollars
    #: Unset: the base price's rate scaled as input is (``input_per_million`` here over
    #: the base's); the same for the cache writes below.
    cached_input_per_million: Dollars | None = None
    cache_write_per_million: Dollars | None = None
    cache_write_1h_per_million: Dollars | None = None


class Price(_Section, frozen=True, kw_only=True):
    """USD per million tokens for one model, overriding the shipped price table."""

    input_per_million: Dollars
    output_per_million: Dollars
    #: Prompt tokens read from the provider's prompt cache; the input price when unset.
    cached_input_per_million: Dollars | None = None
    #: Prompt tokens written to the prompt cache (Anthropic: 1.25 times input for 5-minute
    #: writes); the input price when unset.
    cache_write_per_million: Dollars | None = None
    #: Prompt tokens written to the cache for an hour (Anthropic's ``ttl: "1h"``); twice
    #: the input price when unset, Anthropic's rate.
    cache_write_1h_per_million: Dollars | None = None
    #: Higher rates for a call whose prompt passes a length; none: one price at any length.
    long_prompt: LongPromptPrice | None = None


class TeamBudget(_Section, frozen=True, kw_only=True):
    """Spend allowed to every key of one team together, per period."""

    team: Name
    usd: Dollars | None = None
    tokens: Annotated[int, msgspec.Meta(ge=0)] | None = None
    period: Literal["day", "month", "total"] = "month"


class LoggingSettings(_Section, frozen=True, kw_only=True):
    """How much the gateway logs, in which format; bodies only when asked."""

    level: LogLevel = "info"
    #: ``auto``: text when stderr is a terminal, JSON lines otherwise (``--log-format``).
    format: Literal["auto", "json", "text"] = "auto"
    #: One line per request under ``modelway.requests`` (at info level).
    requests: bool = True
    log_bodies: bool = False


class MetricsSettings(_Section, frozen=True, kw_only=True):
    """``GET /metrics`` (docs/observability.md)."""

    _secret_fields = frozenset({"token"})

    enabled: bool = True
    #: A bearer token that may read ``/metrics`` besides the master key (for Prometheus,
    #: which then needs no key that can do anything else). Open mode serves loopback only.
    token: str | None = None
    #: Each metric keeps at most this many label sets; new ones past it count as ``other``.
    max_series: Annotated[int, msgspec.Meta(ge=10, le=100_000)] = 1000
    #: Per-key families (``modelway_key_*``, labelled by key id), off: one series per key.
    per_key: bool = False


class ResponsesSettings(_Section, frozen=True, kw_only=True):
    """What the gateway keeps of translated Responses API answers (``previous_response_id``);
    a relayed answer's owner is kept 30 days, or this long if longer."""

    #: Days a stored response can be continued or read; 0 stores nothing (``store`` is
    #: then ignored and ``previous_response_id`` on a translated call is a 400).
    store_days: Annotated[float, msgspec.Meta(ge=0, le=3650)] = 30.0


class CacheSettings(_Section, frozen=True, kw_only=True):
    """The response cache and idempotency keys (docs/cache.md); on for every alias when set."""

    #: Seconds an answer is served from the cache.
    ttl: Seconds = 300.0
    #: Whose answers an entry is shared by: the key's ``team`` (the key when it has none),
    #: the ``key``, or everyone (``shared``).
    namespace: CacheNamespace = "team"
    #: Bytes of answers one worker keeps in memory (without ``REDIS_URL``), least recently used
    #: dropped first.
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024 * 1024
    #: Cache only requests that ask for the same answer again (temperature 0 or a seed).
    deterministic_only: bool = True
    #: Seconds an ``Idempotency-Key`` and its answer are kept.
    idempotency_ttl: Seconds = 86400.0
    #: Seconds a repeat waits for the first request with its ``Idempotency-Key`` (then 409).
    idempotency_wait: Seconds = 120.0


class StoreSettings(_Section, frozen=True, kw_only=True):
    """Where keys, usage records and chat history are kept (docs/store.md)."""

    _secret_fields = frozenset({"url"})

    #: ``postgresql://user:pass@host/db`` or ``sqlite:///path``; absent or empty:
    #: ``DATABASE_URL``, else a SQLite file in ``MODELWAY_DATA_DIR``.
    url: str | None = None

    def __post_init__(self) -> None:
        scheme = (self.url or "postgresql://").partition("://")[0].partition("+")[0]
        if scheme not in ("postgres", "postgresql", "sqlite"):
            raise ValueError("url: a postgresql:// or sqlite:/// URL")


class LimitSettings(_Section, frozen=True, kw_only=True):
    """Limits of every virtual key that sets none of its own (docs/limits.md)."""

    #: Requests per minute.
    rpm: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None
    #: Tokens per minute.
    tpm: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None


class RedisSettings(_Section, frozen=True, kw_only=True):
    """How replicas share limits through Redis (``REDIS_URL``; docs/limits.md)."""

    _secret_fields = frozenset({"url"})

    #: ``redis://[:password@]host:port/db``; absent or empty: ``REDIS_URL`` (neither: in
    #: memory).
    url: str | None = None

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(REDIS_SCHEMES):
            raise ValueError("url: a redis://, rediss:// or unix:// URL")

    #: Gateway replicas sharing the Redis. While Redis is unreachable each replica limits
    #: in memory to a key's limit divided by this (set it to the most replicas you run:
    #: then the replicas together never pass the limit).
    replicas: Positive = 1


class AdminSettings(_Section, frozen=True, kw_only=True):
    """The admin dashboard at ``/admin`` (docs/admin.md)."""

    #: Hours a sign-in lasts; the dashboard asks to sign in again after.
    session_hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 366)] = 12.0


class Config(_Section, frozen=True, kw_only=True):
    """The whole validated ``modelway.yaml``; an absent file means all defaults."""

    providers: dict[str, ProviderSettings] = {}
    models: list[ModelAlias] = []
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    prices: dict[str, Price] = {}
    #: Team budgets (a key's own budget is set on the key).
    budgets: list[TeamBudget] = []
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    responses: ResponsesSettings = msgspec.field(default_factory=ResponsesSettings)
    admin: AdminSettings = msgspec.field(default_factory=AdminSettings)
    #: The response cache; absent: off, but for aliases that turn it on themselves.
    cache: CacheSettings | None = None
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    limits: LimitSettings = msgspec.field(default_factory=LimitSettings)

    def redis_url(self, environ: Mapping[str, str]) -> str | None:
        """Redis's URL: ``redis.url``, else ``REDIS_URL``; None: neither (limits in memory).
        ``ValueError`` for a ``REDIS_URL`` of the wrong kind (``redis.url``'s is refused as
        the config is read)."""
        url = self.redis.url or environ.get("REDIS_URL", "").strip() or None
        if url is not None and not url.startswith(REDIS_SCHEMES):
            raise ValueError("REDIS_URL: a redis://, rediss:// or unix:// URL")
        return url

    def switched_off(self) -> frozenset[str]:
        """The providers this config switches off (``enabled: false``)."""
        return frozenset(name for name, settings in self.providers.items() if not settings.enabled)
