"""The interactive terminal chat: read a line, stream the reply, obey slash commands.

Lines are read outside the event loop; each reply or command runs to completion in
one ``asyncio.Runner``, whose Ctrl-C handling cancels just that task: the reply stops
(its stream closed) and the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Coroutine
from typing import Any

from rich.console import Console
from rich.markup import escape

from modelway.chat.backend import Answered, ChatBackend, SessionInfo, TokensUsed, session_title
from modelway.chat.render import (
    LiveReply,
    print_error,
    print_sessions,
    print_tokens,
    print_transcript,
)
from modelway.errors import ModelwayError, NotFound
from modelway.types import TextDelta

try:  # line editing and history where the platform has it
    import readline  # noqa: F401

    HAS_READLINE = True
except ImportError:
    HAS_READLINE = False

#: An ANSI escape sequence, which readline must be told takes no room on screen.
_ESCAPE = re.compile(r"(\x1b\[[0-9;]*m)")

#: Opens and closes a message of several lines.
BLOCK = '"""'
HELP = """\
[bold]\"\"\"[/]           start a message of several lines; end it with \"\"\"
[bold]/model NAME[/]   switch model (alone: show the current one)
[bold]/new[/]          start a new session
[bold]/history[/]      list saved sessions; [bold]/history N[/] or [bold]/resume N[/] reopens one
[bold]/resume ID[/]    reopen a session by number, id or id prefix
[bold]/help[/]         this list
[bold]/exit[/]         quit (also /quit, Ctrl-D); Ctrl-C stops a reply
A message that starts with "/" goes between \"\"\" quotes."""


class ChatRepl:
    """One terminal conversation at a time, over ``backend``."""

    def __init__(
        self,
        backend: ChatBackend,
        console: Console,
        runner: asyncio.Runner,
        *,
        model: str,
        system: str | None,
    ) -> None:
        self.backend = backend
        self.console = console
        self.runner = runner
        self.model = model
        self.system = system
        self.session: SessionInfo | None = None
        self._commands: dict[str, Callable[[str], Coroutine[Any, Any, bool]]] = {
            "/model": self._switch_model,
            "/new": self._new,
            "/history": self._history,
            "/resume": self._resume,
            "/help": self._help,
            "/exit": self._exit,
            "/quit": self._exit,
        }

    def run(self, resume: str | None = None) -> int:
        """Converse until ``/exit`` or end of input; returns the exit code (0)."""
        self.console.print(
            f"[bold]modelway chat[/] [dim]· {escape(self.backend.location)} · "
            "/help for commands · Ctrl-D quits[/]"
        )
        if resume is not None:
            self._perform(self._resume(resume))
        while True:
            block = False
            try:
                line = self._ask(f"[bold cyan]{escape(self.model)}[/] [dim]>[/] ")
                if line.lstrip().startswith(BLOCK):
                    line, block = self._read_block(line.lstrip()[len(BLOCK) :]), True
            except EOFError:
                self.console.print()
                return 0
            except KeyboardInterrupt:
                self.console.print("\n[dim](/exit or Ctrl-D quits)[/]")
                continue
            if block:
                # A message between quotes is sent as typed: a first line that starts with
                # "/" is text, and indentation (pasted code) is kept.
                line = line.strip("\n")
                if line.strip():
                    self._perform(self._reply(line))
                continue
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                name, _, argument = line.partition(" ")
                command = self._commands.get(name.lower())
                if command is None:
                    print_error(self.console, f"unknown command {name}; /help lists them")
                elif self._perform(command(argument.strip())) is False:
                    return 0
            else:
                self._perform(self._reply(line))

    def _read_block(self, first: str) -> str:
        """The lines of a multi-line message, up to the line that ends with the closing
        quotes, or up to the end of input (Ctrl-D), which sends what was typed rather
        than lose it."""
        lines: list[str] = []
        line = first
        while not line.rstrip().endswith(BLOCK):
            lines.append(line)
            try:
                line = self._ask("[dim]...[/] ")
            except EOFError:
                self.console.print()
                return "\n".join(lines)
        lines.append(line.rstrip().removesuffix(BLOCK))
        return "\n".join(lines)

    def _ask(self, prompt: str) -> str:
        """A line typed after ``prompt`` (Rich markup), with readline's editing and history."""
        with self.console.capture() as captured:
            self.console.print(prompt, end="")
        text = captured.get()
        if HAS_READLINE:
            # Readline redraws the line when editing; it must know the prompt's real width.
            text = _ESCAPE.sub("\x01\\1\x02", text)
        return input(text)

    def _perform(self, step: Coroutine[Any, Any, bool | None]) -> bool | None:
        """Run one step; its failure is one red line and the session goes on."""
        try:
            return self.runner.run(step)
        except KeyboardInterrupt:
            self.console.print("[dim]stopped[/]")
        except ModelwayError as error:
            print_error(self.console, error.message)
        except Exception as error:  # a bug must not end the conversation with a traceback
            print_error(self.console, f"unexpected {type(error).__name__}: {error}")
        return None

    async def _reply(self, content: str) -> None:
        if self.session is None:
            self.session = await self.backend.create_session(
                session_title(content), self.model, self.system
            )
        answered: Answered | None = None
        tokens: TokensUsed | None = None
        with LiveReply(self.console) as live:
            events = self.backend.send(self.session, content, self.model)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, TextDelta):
                        live.add(event.text)
                    elif isinstance(event, Answered):
                        answered = event
                    else:
                        tokens = event
        if tokens is not None:
            print_tokens(self.console, answered, tokens)

    async def _switch_model(self, name: str) -> bool:
        if not name:
            self.console.print(f"model: [bold]{escape(self.model)}[/]")
            return True
        await self.backend.check_model(name)
        self.model = name
        if self.session is not None:
            await self.backend.set_model(self.session.id, name)
        self.console.print(f"[dim]model is now[/] [bold]{escape(name)}[/]")
        return True

    async def _new(self, argument: str) -> bool:
        self.session = None
        self.console.print("[dim]new session: your next message starts it[/]")
        return True

    async def _history(self, argument: str) -> bool:
        if argument:
            return await self._resume(argument)
        sessions = await self.backend.sessions()
        print_sessions(self.console, sessions, self.session.id if self.session else None)
        return True

    async def _resume(self, reference: str) -> bool:
        if not reference:
            print_error(self.console, "/resume needs a session number or id (see /history)")
            return True
        session, turns = await self.backend.open_session(await self._session_id(reference))
        self.session = session
        if session.model:
            self.model = session.model
        print_transcript(self.console, session, turns)
        return True

    async def _session_id(self, reference: str) -> str:
        """The id a ``/resume`` argument means: a number from /history, an id or its prefix."""
        sessions = await self.backend.sessions()
        if reference.isdigit() and len(reference) < 6:
            number = int(reference)
            if not 1 <= number <= len(sessions):
                raise NotFound(f"no session number {number}: /history lists {len(sessions)}")
            return sessions[number - 1].id
        matches = [s.id for s in sessions if s.id.startswith(reference)]
        if len(matches) > 1 and reference not in matches:
            raise NotFound(f"{reference!r} matches {len(matches)} sessions; give more of the id")
        return reference if reference in matches or not matches else matches[0]

    async def _help(self, argument: str) -> bool:
        self.console.print(HELP)
        return True

    async def _exit(self, argument: str) -> bool:
        return False
