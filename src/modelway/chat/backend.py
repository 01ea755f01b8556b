"""What the terminal chat needs from wherever answers and history come from.

Two backends fulfil ``ChatBackend``: ``LocalBackend`` (the engine and store in this
process, configured as ``modelway serve`` is) and ``RemoteBackend`` (a running gateway
over HTTP). A reply is a stream of ``ReplyEvent``; failures are ``ModelwayError``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import NamedTuple, Protocol

from modelway.tokens import count_text_tokens, estimate_prompt_tokens
from modelway.types import (
    ChatRequest,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    UsageReport,
)

#: Longest session title, taken from the first user message.
TITLE_LENGTH = 60


class SessionInfo(NamedTuple):
    """A saved chat session as the terminal shows it."""

    id: str
    title: str
    model: str | None
    system: str | None
    updated_at: float


class Turn(NamedTuple):
    """One saved message; ``error`` is set on a reply that failed or was stopped."""

    role: str
    content: str
    model: str | None = None
    error: str | None = None
    id: str | None = None


class Answered(NamedTuple):
    """Who is answering: the provider (when known) and the model it runs."""

    provider: str | None
    model: str


class TokensUsed(NamedTuple):
    """Tokens a reply took; ``estimated`` when counted here rather than reported upstream."""

    prompt: int
    completion: int
    estimated: bool

    @property
    def total(self) -> int:
        return self.prompt + self.completion


class Accepted(NamedTuple):
    """The message is saved (``question_id``), and its reply will be, as ``reply_id``,
    however it ends: the chat's last message once the reply is over."""

    question_id: str
    reply_id: str


ReplyEvent = Accepted | Answered | TextDelta | TokensUsed


class ChatBackend(Protocol):
    """Answers and history for the terminal chat."""

    #: Where answers come from, for the banner (``in-process`` or the gateway URL).
    location: str

    async def check_model(self, model: str) -> None:
        """Raise ``UnknownModel`` when ``model`` can be known to have no provider."""
        ...

    def answer_once(
        self, content: str, model: str, system: str | None
    ) -> AsyncGenerator[ReplyEvent, None]:
        """One reply to one message, saved nowhere (for pipes and scripts)."""
        ...

    async def sessions(self) -> list[SessionInfo]:
        """Saved sessions, most recently used first."""
        ...

    async def create_session(self, title: str, model: str, system: str | None) -> SessionInfo:
        """A new, empty session."""
        ...

    async def open_session(self, session_id: str) -> tuple[SessionInfo, list[Turn]]:
        """A session and its messages, oldest first; ``NotFound`` if there is none."""
        ...

    async def set_model(self, session_id: str, model: str) -> None:
        """Remember ``model`` as the session's model."""
        ...

    def send(
        self, session: SessionInfo, content: str, model: str, *, after: str | None
    ) -> AsyncGenerator[ReplyEvent, None]:
        """Save ``content`` as the next user message and stream the reply, which is saved too.

        ``after`` is the id of the chat's last message as this terminal shows it (None: an
        empty chat). If the chat has changed since (the web chat or another terminal sent,
        regenerated or deleted there), nothing is saved: ``ChatChanged`` is raised, or
        ``ChatAnswering`` while a reply to another client's message is still streaming.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and the store."""
        ...


#: Markdown a line starts with that is no part of what it says: a heading's ``#``s, a
#: quote's ``>``, a list's marker, a task box.
_LINE_MARKUP = re.compile(r"^(?:#{1,6}\s+|>\s*|[-*+]\s+|\d{1,9}[.)]\s+|\[[ xX]\]\s+)+")


def session_title(content: str) -> str:
    """A session's title: the first line of its first message that says something, as
    read (a heading's ``#``, a quote's ``>`` and list markers left out; a code fence
    skipped), shortened."""
    line = next(
        (
            text
            for raw in content.splitlines()
            if not raw.strip().startswith(("```", "~~~"))
            and (text := _LINE_MARKUP.sub("", raw.strip()).strip())
        ),
        "New chat",
    )
    if len(line) <= TITLE_LENGTH:
        return line
    return line[: TITLE_LENGTH - 1].rstrip() + "…"


def chat_request(model: str, system: str | None, turns: list[Turn], content: str) -> ChatRequest:
    """The streamed request for ``content`` after ``turns``; failed replies are left out."""
    messages = [Message("system", [TextPart(system)])] if system else []
    messages += [
        Message("user" if turn.role == "user" else "assistant", [TextPart(turn.content)])
        for turn in turns
        if turn.content and turn.error is None
    ]
    messages.append(Message("user", [TextPart(content)]))
    return ChatRequest(model=model, messages=messages, stream=True, include_usage=True)


async def reply_events(
    request: ChatRequest, events: AsyncIterator[StreamEvent], reply: list[str]
) -> AsyncGenerator[ReplyEvent, None]:
    """Text deltas of a canonical stream (also appended to ``reply``), then the tokens used.

    When the provider reports no usage the tokens are estimated here.
    """
    usage = None
    async for event in events:
        if isinstance(event, TextDelta):
            if event.text:
                reply.append(event.text)
                yield event
        elif isinstance(event, UsageReport):
            usage = event.usage
    if usage is not None:
        yield TokensUsed(usage.prompt_tokens, usage.completion_tokens, usage.estimated)
    else:
        yield TokensUsed(
            estimate_prompt_tokens(request), count_text_tokens("".join(reply)), estimated=True
        )
