"""Alembic migrations of the store, applied by ``modelway.store.migrate``."""
