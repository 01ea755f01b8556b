"""The SQLite store holds provider keys and chat history: only its owner may read it."""

from __future__ import annotations

import stat
from pathlib import Path

from modelway.store import Store
from modelway.store.location import privacy_warning


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _store_files(directory: Path) -> dict[str, int]:
    return {p.name: _mode(p) for p in directory.iterdir() if not p.name.endswith(".lock")}


async def test_the_sqlite_store_and_its_journals_are_created_private(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'modelway.db'}")
    try:
        await store.keys.create("k")  # a write: the WAL journal exists now
        files = _store_files(tmp_path)
    finally:
        await store.aclose()
    assert {"modelway.db", "modelway.db-wal"} <= set(files)
    assert set(files.values()) == {0o600}, files


def test_a_data_directory_others_can_read_is_warned_about(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'modelway.db'}"
    tmp_path.chmod(0o755)
    warning = privacy_warning(url)
    assert warning is not None and "755" in warning and "chmod 700" in warning
    tmp_path.chmod(0o700)
    assert privacy_warning(url) is None
    (tmp_path / "modelway.db").touch(mode=0o644)
    assert "644" in (privacy_warning(url) or "")
    assert privacy_warning("postgresql+asyncpg://u:p@db/modelway") is None
