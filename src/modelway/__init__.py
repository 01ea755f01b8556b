"""modelway: one endpoint in front of every LLM provider.

``Client`` and ``AsyncClient`` are imported on first use so that ``import modelway``
stays light for the gateway's worker processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from modelway.client import AsyncClient, Client


def __getattr__(name: str) -> Any:
    if name in ("Client", "AsyncClient"):
        from modelway import client

        return getattr(client, name)
    raise AttributeError(f"module 'modelway' has no attribute {name!r}")
