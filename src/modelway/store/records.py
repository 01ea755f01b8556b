"""What the store hands out: frozen msgspec structs, never ORM rows.

Ids are uuid4 hex strings and times are float epoch seconds throughout. No record
carries a password hash, a key hash or a provider key, so a repr or a log line of
one can never leak a secret.
"""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any, Literal

import msgspec

BudgetPeriod = Literal["day", "month", "total"]
ChatRole = Literal["user", "assistant"]


def new_id() -> str:
    """A fresh record id (uuid4 hex)."""
    return uuid.uuid4().hex


class _UsageIds:
    """Usage-record ids: a random 64-bit prefix per process and a counter.

    One per request, on the request path: ``uuid4`` costs a ``getrandom`` system call each
    (measured ~14 µs per call under load here); unique across replicas and workers all
    the same. A forked child draws a prefix of its own (``os.register_at_fork``), so a
    call is a counter step and a format, not a ``getpid`` as well.
    """

    def __init__(self) -> None:
        self._prefix = ""
        self._counter = itertools.count()
        self.restart()
        os.register_at_fork(after_in_child=self.restart)

    def restart(self) -> None:
        """A new prefix and counter (this process was forked from one that had them)."""
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_usage_id = _UsageIds()


class ChatSession(msgspec.Struct, frozen=True, kw_only=True):
    """One conversation of the web or terminal chat, with its per-session settings."""

    id: str
    owner: str | None
    title: str
    model: str | None
    system: str | None
    temperature: float | None
    max_tokens: int | None
    created_at: float
    updated_at: float


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One turn of a chat session; an assistant turn keeps who answered and its usage."""

    id: str
    session_id: str
    role: ChatRole
    content: str
    model: str | None
    provider: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    usage_accurate: bool | None
    error: str | None
    created_at: float
    #: The HTTP status a failed reply failed with (429: rate limited); None otherwise.
    error_status: int | None = None


class ProviderConnection(msgspec.Struct, frozen=True, kw_only=True):
    """A provider connected at run time, as shown to people: whether it has a key, never the key."""

    provider: str
    base_url: str | None
    has_key: bool
    created_at: float


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A virtual key's settings; the key itself is shown once and only its hash is stored."""

    id: str
    name: str
    prefix: str
    owner_user: str | None
    owner_team: str | None
    models: tuple[str, ...]
    rpm: int | None
    tpm: int | None
    budget_usd: float | None
    budget_tokens: int | None
    budget_period: BudgetPeriod
    expires_at: float | None
    metadata: dict[str, Any]
    created_at: float
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: float) -> bool:
        """Whether the key is past its expiry at ``now`` (epoch seconds)."""
        return self.expires_at is not None and now >= self.expires_at


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An account: self-service (sign-up is off unless enabled) or made by an admin."""

    id: str
    email: str
    created_at: float
    #: May sign in to the admin dashboard.
    is_admin: bool = False


class AdminSession(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in admin dashboard session; the cookie value itself is never kept."""

    #: Sent back in ``X-CSRF-Token`` with every state-changing request.
    csrf: str
    kind: Literal["master", "user"]
    user_id: str | None
    #: The account's email for a ``user`` session.
    email: str | None
    created_at: float
    expires_at: float

    def __repr__(self) -> str:  # the CSRF token is a credential of sorts: never in a log
        return f"AdminSession(kind={self.kind!r}, user_id={self.user_id!r})"


class TeamMember(msgspec.Struct, frozen=True, kw_only=True):
    """An account in a team."""

    id: str
    email: str


class TeamRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A team: its budget for all its keys together, and its members."""

    name: str
    budget_usd: float | None
    budget_period: BudgetPeriod
    metadata: dict[str, Any]
    created_at: float
    members: tuple[TeamMember, ...] = ()


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One request as the audit keeps it; ``id`` makes a replayed write idempotent.

    ``request_id`` comes from the caller's ``X-Request-ID`` when it sent one, so it need
    not be unique; ``id`` is generated per record and is.
    """

    request_id: str
    time: float
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    dialect: str | None = None
    alias: str | None = None
    provider: str | None = None
    model: str | None = None
    status: int = 200
    error_type: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    #: Prompt tokens written to the provider's prompt cache (part of ``prompt_tokens``).
    cache_write_tokens: int = 0
    #: Completion tokens spent thinking (part of ``completion_tokens``).
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    retries: int = 0
    fallback_used: str | None = None
    cache_hit: bool = False
    #: USD a cache hit saved: what its answer cost when asked upstream (``cost_usd`` is 0).
    cost_saved_usd: float = 0.0
    #: The cost is unknown: the model that answered has no price (``cost_usd`` is 0, and
    #: is not what the call cost). Records written before migration 0011 say False.
    unpriced: bool = False
    id: str = msgspec.field(default_factory=new_usage_id)


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """One group of a usage summary (a key, a model or a UTC day)."""

    group: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    #: Requests whose cost is unknown (their model has no price): not in ``cost_usd``.
    unpriced_requests: int = 0
    latency_p50_ms: float | None
    latency_p95_ms: float | None
