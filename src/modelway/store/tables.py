"""The schema as SQLAlchemy Core tables; migrations must produce exactly this (a test checks)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = String(32)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False),
    Column("prefix", String(16), nullable=False, index=True),
    Column("key_hash", Text, nullable=False),
    Column("owner_user", Text),
    Column("owner_team", Text),
    Column("models", JSON, nullable=False),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("budget_usd", Double),
    Column("budget_tokens", BigInteger),
    Column("budget_period", String(8), nullable=False),
    Column("expires_at", Double),
    Column("metadata", JSON, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double),
    # Added by migration 0006: the admin dashboard's key list filters by team.
    Index(None, "owner_team"),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    # Added by migration 0006: may sign in to the admin dashboard.
    Column("is_admin", Boolean, nullable=False, server_default=text("false")),
)

#: Signed-in admin dashboard sessions; only the SHA-256 of the cookie value is kept.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("csrf", String(64), nullable=False),
    # ``master``, or ``user`` with ``user_id`` (the session ends with the account).
    Column("kind", String(8), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE")),
    # A master session's HMAC of the master key under the cookie value (it ends with the key).
    Column("binding", String(64)),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
)

#: How many times each response-cache namespace was cleared (``*``: the whole cache), so
#: every worker's in-memory cache drops what a clear on another worker dropped.
cache_clears = Table(
    "cache_clears",
    metadata,
    Column("namespace", String(300), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

teams = Table(
    "teams",
    metadata,
    # The name keys' ``owner_team`` and usage records' ``team`` hold.
    Column("name", String(200), primary_key=True),
    Column("budget_usd", Double),
    Column("budget_period", String(8), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("created_at", Double, nullable=False),
)

team_members = Table(
    "team_members",
    metadata,
    Column(
        "team",
        String(200),
        ForeignKey("teams.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "user_id"),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Id, primary_key=True),
    # Not indexed (migration 0008): nothing looks a record up by it, and each index costs
    # every insert on the request path its share (docs/store.md, "Request-log indexes").
    Column("request_id", Text, nullable=False),
    Column("time", Double, nullable=False),
    # The UTC date of ``time`` (YYYY-MM-DD), so grouping by day is the same SQL everywhere.
    Column("day", String(10), nullable=False),
    Column("key_id", Id),
    Column("user", Text),
    Column("team", Text),
    Column("dialect", Text),
    Column("alias", Text),
    Column("provider", Text),
    Column("model", Text),
    Column("status", Integer, nullable=False),
    Column("error_type", Text),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    # Added by migration 0002: the default fills the rows written before it.
    Column("cache_write_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("reasoning_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("usage_estimated", Boolean, nullable=False),
    Column("cost_usd", Double, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("ttft_ms", Double),
    Column("stream", Boolean, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("fallback_used", Text),
    Column("cache_hit", Boolean, nullable=False),
    # Added by migration 0007: a cache hit's saved cost.
    Column("cost_saved_usd", Double, nullable=False, server_default=text("0")),
    # Added by migration 0011: the cost is unknown (no price; cost_usd holds 0). A flag
    # beside cost_usd, not a nullable cost_usd: SQLite adds a column in place, but would
    # copy the whole table to let cost_usd hold NULL.
    Column("unpriced", Boolean, nullable=False, server_default=text("false")),
    # The request log pages newest first on (time, id), alone or with one filter: each
    # filter's index ends in (time, id), so any page is one index range scan.
    Index(None, "time", "id"),
    Index(None, "key_id", "time", "id"),
    Index(None, "team", "time"),
    Index(None, "model", "time", "id"),
    Index(None, "provider", "time", "id"),
    Index(None, "status", "time", "id"),
    Index(None, "error_type", "time", "id"),
)

#: Bounds (ms) of the latency and time-to-first-token histograms of ``usage_hourly``:
#: three per doubling from 1 ms to 2**18 ms (262 s). Bucket 0 holds values under 1 ms,
#: bucket i (1..54) values in [bound i-1, bound i), bucket 55 values from 262 s up.
HISTOGRAM_BOUNDS_MS = tuple(2 ** (i / 3) for i in range(55))
HISTOGRAM_BUCKETS = len(HISTOGRAM_BOUNDS_MS) + 1
LATENCY_BUCKET_COLUMNS = tuple(f"latency_{i:02d}" for i in range(HISTOGRAM_BUCKETS))
TTFT_BUCKET_COLUMNS = tuple(f"ttft_{i:02d}" for i in range(HISTOGRAM_BUCKETS))

usage_hourly = Table(
    "usage_hourly",
    metadata,
    # Which of key_id, team, model, provider, alias this row is grouped by (a bit each,
    # ``store.rollups.DIMENSIONS``); the others hold '' . Every record counts in the
    # all-traffic row (0), in one row per dimension and in the row of all five (31).
    Column("dims", SmallInteger, primary_key=True),
    # The hour's start, epoch seconds (UTC).
    Column("hour", BigInteger, primary_key=True),
    # '' where the record had none (or the row is not grouped by it).
    Column("key_id", Text, primary_key=True),
    Column("team", Text, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("provider", Text, primary_key=True),
    Column("alias", Text, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_usd", Double, nullable=False),
    Column("latency_ms_sum", Double, nullable=False),
    Column("ttft_count", BigInteger, nullable=False),
    Column("ttft_ms_sum", Double, nullable=False),
    # Added by migration 0011: records whose cost is unknown (``unpriced``).
    Column("unpriced", BigInteger, nullable=False, server_default=text("0")),
    *(Column(name, Integer, nullable=False) for name in LATENCY_BUCKET_COLUMNS),
    *(Column(name, Integer, nullable=False) for name in TTFT_BUCKET_COLUMNS),
    # With several filters the full level (31) is read: through one key's, one team's or
    # one model's rows rather than every group's of the range.
    Index(None, "dims", "key_id", "hour"),
    Index(None, "dims", "team", "hour"),
    Index(None, "dims", "model", "hour"),
)

chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("owner", Text),
    Column("title", Text, nullable=False),
    Column("model", Text),
    Column("system", Text),
    Column("temperature", Double),
    Column("max_tokens", Integer),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index(None, "owner", "updated_at"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("session_id", Id, ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("model", Text),
    Column("provider", Text),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("usage_accurate", Boolean),
    Column("error", Text),
    # The HTTP status a failed reply failed with (migration 0009): 429 is a rate limit.
    Column("error_status", Integer),
    Column("created_at", Double, nullable=False),
    Index(None, "session_id", "created_at"),
)

provider_connections = Table(
    "provider_connections",
    metadata,
    Column("provider", String(64), primary_key=True),
    # Kept server side only: needed to call the provider, never returned by any API.
    Column("api_key", Text),
    Column("base_url", Text),
    Column("created_at", Double, nullable=False),
)

stored_responses = Table(
    "stored_responses",
    metadata,
    # The ``id`` of the Responses API answer as its caller got it (``resp_mw...``).
    Column("id", String(64), primary_key=True),
    # Whose it is: ``team:<name>``, ``key:<id>``, ``master`` or ``open`` (``response_state``).
    Column("owner", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
    # The canonical messages a later turn continues (msgspec JSON); NULL when larger than
    # the bound on a stored conversation (the response can be read, not continued).
    Column("conversation", Text),
    # The ``response`` object as returned, for ``GET /v1/responses/{id}``.
    Column("response", Text, nullable=False),
)

relayed_responses = Table(
    "relayed_responses",
    metadata,
    # The ``id`` of a Responses API answer relayed to a provider that keeps it (OpenAI's
    # ``resp_...``); the provider holds the answer, the gateway only whose it is.
    Column("id", String(128), primary_key=True),
    # Whose it is, as in ``stored_responses``.
    Column("owner", Text, nullable=False),
    # The provider (its name in the config) that answered and keeps it,
    Column("provider", Text, nullable=False),
    # and which of its upstreams: its name and base URL, hashed (``relayed_responses``).
    Column("upstream", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
)
