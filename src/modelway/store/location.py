"""Where the store lives: ``store.url`` in the config, else ``DATABASE_URL``, else a SQLite
file in the data directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import URL, make_url

DEFAULT_DATA_DIR = "./.modelway"
SQLITE_FILE = "modelway.db"

#: The databases the store's migrations and upserts are written for.
SUPPORTED_BACKENDS = ("postgresql", "sqlite")
#: Schemes people write, and the async driver each one means here.
_ASYNC_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def data_dir(environ: Mapping[str, str]) -> Path:
    """``MODELWAY_DATA_DIR`` (default ``./.modelway/``), created private to this user."""
    path = Path(environ.get("MODELWAY_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()
    if not path.exists():
        # It holds provider keys and chat history: other local users have no business there.
        path.mkdir(parents=True, mode=0o700)
    return path


def privacy_warning(url: str | URL) -> str | None:
    """What to tell the operator when other local users can read a SQLite store or its
    directory (a data directory created beforehand keeps the mode it was given)."""
    path = sqlite_path(url)
    if path is None:
        return None
    for place in (path.parent, path):
        try:
            mode = place.stat().st_mode
        except OSError:
            continue
        if mode & 0o007:
            return (
                f"{place} can be read by other users of this machine (mode {mode & 0o777:o}); "
                "it holds provider keys and chat history: chmod 700 the directory and 600 "
                "the database"
            )
    return None


def database_url(environ: Mapping[str, str], configured: str | None = None) -> str:
    """The async SQLAlchemy URL of the store: ``configured`` (the config's ``store.url``),
    else ``DATABASE_URL``, else a SQLite file in the data directory."""
    configured = configured or environ.get("DATABASE_URL", "").strip()
    if configured:
        return _async_url(configured)
    return f"sqlite+aiosqlite:///{(data_dir(environ) / SQLITE_FILE).resolve()}"


def _async_url(text: str) -> str:
    scheme, separator, rest = text.partition("://")
    if not separator:
        raise ValueError(
            "the store URL (store.url or DATABASE_URL) must look like "
            "postgresql://user:pass@host/db"
        )
    scheme = _ASYNC_SCHEMES.get(scheme, scheme)
    url = make_url(f"{scheme}://{rest}")
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ValueError(
            "the store URL (store.url or DATABASE_URL): the store runs on PostgreSQL or SQLite, "
            f"not {url.get_backend_name()!r}"
        )
    if url.drivername == "postgresql+asyncpg" and "sslmode" in url.query:
        # libpq spells it sslmode; asyncpg takes the same values as ``ssl``.
        query = {k: v for k, v in url.query.items() if k != "sslmode"}
        url = url.set(query={**query, "ssl": url.query["sslmode"]})
    return url.render_as_string(hide_password=False)


def display_url(url: str | URL) -> str:
    """The URL with any password masked, fit for logs and terminals."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory or non-SQLite database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(os.path.abspath(parsed.database))
