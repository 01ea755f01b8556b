"""Thinking settings in every provider's terms: one table, read by every adapter.

Callers ask for thinking by a named level (OpenAI's ``reasoning_effort``, Anthropic's
``output_config.effort``, Ollama's ``think``) or by a token budget (Anthropic's
``thinking.budget_tokens``, Gemini's ``thinkingBudget``); ``Reasoning`` keeps what was
asked and these functions give each provider the form it takes.

Which models think is each vendor's to say and changes often; the rule here is by
model family, and a model outside it is sent no thinking setting at all (a model that
cannot think refuses the field with a 400, which would end an agent's session).
"""

from __future__ import annotations

import re
from typing import get_args

from modelway.types import Effort, Reasoning

EFFORTS: tuple[Effort, ...] = get_args(Effort)

#: Token budget for each named level (Anthropic's minimum budget is 1,024).
BUDGETS: dict[Effort, int] = {
    "none": 0,
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}

#: Anthropic rejects budgets under this.
ANTHROPIC_MIN_BUDGET = 1024

_OPENAI_THINKERS = re.compile(r"(^|/)(o\d|gpt-5|gpt-oss|codex)", re.IGNORECASE)
_ANTHROPIC_NON_THINKERS = re.compile(r"claude-(3-(?!7)|instant|2)", re.IGNORECASE)
#: Claude models that think adaptively (``thinking: {"type": "adaptive"}`` with
#: ``output_config.effort``): Opus and Sonnet 4.6 and later. From 4.7 on a budget
#: (``"enabled"``) is refused: "thinking.type.enabled is not supported for this model".
_ANTHROPIC_ADAPTIVE = re.compile(r"claude-(opus|sonnet)-(4-[6-9]|[5-9])(\b|-|$)", re.IGNORECASE)
_ANTHROPIC_ADAPTIVE_ONLY = re.compile(
    r"claude-(opus|sonnet|haiku)-(4-[7-9]|[5-9])(\b|-|$)", re.IGNORECASE
)
_GEMINI_THINKERS = re.compile(r"gemini-(2\.5|[3-9])", re.IGNORECASE)
#: Ollama answers 400 to ``think`` for a model that does not think.
_OLLAMA_THINKERS = re.compile(
    r"(^|/)(qwen3|qwq|deepseek-r1|deepseek-v3\.[1-9]|gpt-oss|magistral|phi4-reasoning|cogito"
    r"|exaone-deep|granite3\.[2-9])",
    re.IGNORECASE,
)


def budget(reasoning: Reasoning) -> int:
    """The thinking token budget asked for, from the level when no budget was given."""
    if reasoning.budget_tokens is not None:
        return reasoning.budget_tokens
    return BUDGETS[reasoning.effort or "medium"]


def effort(reasoning: Reasoning) -> Effort:
    """The named level asked for, from the budget when no level was given."""
    if reasoning.effort is not None:
        return reasoning.effort
    wanted = reasoning.budget_tokens or 0
    if wanted <= 0:
        return "none"
    # The smallest level whose budget covers the one asked for.
    for level in EFFORTS[1:]:
        if wanted <= BUDGETS[level]:
            return level
    return "max"


def openai_effort(reasoning: Reasoning, model: str) -> str | None:
    """``reasoning_effort`` for an OpenAI-format model; ``None`` sends none (the model's
    default): for a model that does not reason, and for ``none``, which only the newest
    models take.

    A level the caller named passes as named (``max`` is OpenAI's ``xhigh``); one derived
    from a budget stays within ``low``..``high``, the levels every reasoning model takes.
    """
    if not _OPENAI_THINKERS.search(model) or reasoning.effort == "none":
        return None
    if reasoning.effort is not None:
        return "xhigh" if reasoning.effort == "max" else reasoning.effort
    level = effort(reasoning)
    return {"none": None, "minimal": "low", "xhigh": "high", "max": "high"}.get(level, level)


def anthropic_thinks(model: str) -> bool:
    """Whether an Anthropic model takes a ``thinking`` setting (Claude 3.7 and later)."""
    return not _ANTHROPIC_NON_THINKERS.search(model)


def anthropic_adaptive_effort(reasoning: Reasoning, model: str) -> str | None:
    """``output_config.effort`` for adaptive thinking, or None to send a budget instead.

    Adaptive for the models that take it, unless the caller gave a budget and the model
    still takes one (4.6). Anthropic's levels are low, medium, high and, on Opus, max.
    """
    if not _ANTHROPIC_ADAPTIVE.search(model) and not _ANTHROPIC_ADAPTIVE_ONLY.search(model):
        return None
    if reasoning.budget_tokens is not None and not _ANTHROPIC_ADAPTIVE_ONLY.search(model):
        return None
    level = effort(reasoning)
    if level == "max" and "opus" in model.lower():
        return "max"
    return {"minimal": "low", "low": "low", "medium": "medium"}.get(level, "high")


def gemini_thinks(model: str) -> bool:
    """Whether a Gemini model takes ``thinkingConfig`` (2.5 and later)."""
    return bool(_GEMINI_THINKERS.search(model))


def ollama_thinks(model: str) -> bool:
    """Whether an Ollama model takes ``think`` (the thinking families Ollama lists)."""
    return bool(_OLLAMA_THINKERS.search(model))


def signature_for(wire: str, signature: str | None) -> str | None:
    """A canonical ``reasoning_signature`` as ``wire``'s provider wrote it, else ``None``."""
    if signature is None:
        return None
    owner, _, value = signature.partition(":")
    return value if owner == wire and value else None


def tagged(wire: str, signature: str) -> str:
    """A provider's signature in canonical form (``Message.reasoning_signature``)."""
    return f"{wire}:{signature}"


#: The tags ``tagged`` puts on signatures (``anthropic-redacted`` is Anthropic's
#: redacted thinking); no provider's own signature starts with one and a colon.
SIGNATURE_TAGS = frozenset({"anthropic", "anthropic-redacted", "gemini", "openai", "ollama"})


def gateway_tagged(signature: object) -> bool:
    """Whether a signature a caller sent back is in the gateway's tagged form: it reached
    them through a translated answer, so it is not the raw value any upstream wrote."""
    if not isinstance(signature, str):
        return False
    owner, colon, _ = signature.partition(":")
    return bool(colon) and owner in SIGNATURE_TAGS
