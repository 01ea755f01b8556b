"""modelway as a Python library: ``Client`` / ``AsyncClient`` run the engine in-process.

``AsyncClient`` holds the logic; ``Client`` runs it on a private event loop thread.
``client.usage`` adds up tokens and cost (``modelway.pricing``) of every call.
"""

from modelway.client.asynchronous import AsyncChatStream, AsyncClient
from modelway.client.synchronous import ChatStream, Client
from modelway.client.usage import ModelUsage, UsageSummary, UsageTracker

__all__ = [
    "AsyncChatStream",
    "AsyncClient",
    "ChatStream",
    "Client",
    "ModelUsage",
    "UsageSummary",
    "UsageTracker",
]
