"""Calling a model, metered: the one layer every face goes through (no HTTP here).

``Calls.open(caller, model, ...)`` gives a ``MeteredCall``: admitted against the
caller's key (models, budgets, RPM/TPM), routed once, run by the engine (relayed in the
caller's own format or translated), and recorded with one usage record, its limits
settled and budgets charged. ``CallHook`` is the seam for what every call shares
(cache, metrics, guardrails).
"""

from modelway.calls.accounts import Accounts, UsageRecorder, seed_budgets, seed_key_budget
from modelway.calls.caller import ANONYMOUS, MASTER, UNAUTHENTICATED, Caller
from modelway.calls.hooks import CallEnd, CallHook, Chunk
from modelway.calls.metered import CLIENT_CLOSED, MeteredCall
from modelway.calls.opening import Calls
from modelway.calls.relay import Relayed
from modelway.calls.stored import stored_calls
from modelway.calls.team_budgets import TeamBudgets

__all__ = [
    "ANONYMOUS",
    "CLIENT_CLOSED",
    "MASTER",
    "UNAUTHENTICATED",
    "Accounts",
    "CallEnd",
    "CallHook",
    "Caller",
    "Calls",
    "Chunk",
    "MeteredCall",
    "Relayed",
    "TeamBudgets",
    "UsageRecorder",
    "seed_budgets",
    "seed_key_budget",
    "stored_calls",
]
