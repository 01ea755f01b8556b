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
from rich.text import Text

from modelway.chat.backend import (
    Accepted,
    Answered,
    ChatBackend,
    SessionInfo,
    TokensUsed,
    session_title,
)
from modelway.chat.render import (
    LiveReply,
    print_error,
    print_note,
    print_sessions,
    print_tokens,
    print_transcript,
    print_turns,
)
from modelway.errors import (
    ChatAnswering,
    ChatChanged,
    ModelwayError,
    NotFound,
    UpstreamError,
    UpstreamStatusError,
)
from modelway.types import TextDelta

try:  # line editing and history where the platform has it
    import readline

    HAS_READLINE = True
except ImportError:
    HAS_READLINE = False

#: An ANSI escape sequence, which readline must be told takes no room on screen.
_ESCAPE = re.compile(r"(\x1b\[[0-9;]*m)")

#: Opens and closes a message of several lines.
BLOCK = '"""'


class _Unknown:
    """The last message of the chat is not known: a send ended before the backend said
    whether it kept the message (stopped at once, the connection lost)."""


UNKNOWN = _Unknown()
HELP = """\
[bold]\"\"\"[/]           start a message of several lines; end it with \"\"\"
[bold]/model NAME[/]   switch model (alone: show the current one)
[bold]/new[/]          start a new session
[bold]/history[/]      list saved sessions; [bold]/history N[/] or [bold]/resume N[/] reopens one
[bold]/resume ID[/]    reopen a session by number, id or id prefix
[bold]/resend[/]       send again a message refused as the chat changed elsewhere
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
        #: The id of the chat's last message as this terminal shows it (None: an empty
        #: chat), sent with each message so one changed elsewhere is not garbled.
        self.last_shown: str | _Unknown | None = None
        #: A message refused because the chat changed elsewhere, kept for ``/resend``.
        self.unsent: str | None = None
        #: Text to put on the next prompt line, ready to send or edit.
        self._prefill: str | None = None
        self._commands: dict[str, Callable[[str], Coroutine[Any, Any, bool]]] = {
            "/model": self._switch_model,
            "/new": self._new,
            "/history": self._history,
            "/resume": self._resume,
            "/resend": self._resend,
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
        prefill, self._prefill = self._prefill, None
        if prefill is None:
            return input(text)
        readline.set_pre_input_hook(lambda: _insert(prefill))
        try:
            return input(text)
        finally:
            readline.set_pre_input_hook()

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
            self.last_shown = None
        if isinstance(self.last_shown, _Unknown):
            # The last send ended before its message was known to be kept: read the chat
            # again for its last message, as the web chat does after a Stop.
            _, turns = await self.backend.open_session(self.session.id)
            self.last_shown = turns[-1].id if turns else None
        after, self.last_shown = self.last_shown, UNKNOWN
        self.unsent = None
        answered: Answered | None = None
        tokens: TokensUsed | None = None
        try:
            with LiveReply(self.console) as live:
                events = self.backend.send(self.session, content, self.model, after=after)
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, TextDelta):
                            live.add(event.text)
                        elif isinstance(event, Accepted):
                            self.last_shown = event.reply_id
                        elif isinstance(event, Answered):
                            answered = event
                        else:
                            tokens = event
        except ChatChanged as refusal:
            self.last_shown = after
            await self._changed_elsewhere(self.session, refusal, content)
            return
        except NotFound:
            # Deleted in the web chat or another terminal: the next message starts a new
            # chat, and this one is kept for it rather than lost with a bare 404.
            self.session = None
            self._keep_unsent(
                content,
                "this chat was deleted elsewhere (in the web chat or "
                "another terminal); your next message starts a new chat.",
            )
            return
        except ModelwayError as error:
            # Refused before anything was kept (an answer with an error status, or an
            # error event before the message was taken): the chat is as it was.
            refused = not isinstance(error, UpstreamError) or isinstance(error, UpstreamStatusError)
            if refused and isinstance(self.last_shown, _Unknown):
                self.last_shown = after
            raise
        if tokens is not None:
            print_tokens(self.console, answered, tokens)

    async def _changed_elsewhere(
        self, session: SessionInfo, refusal: ChatChanged, content: str
    ) -> None:
        """The message was refused, the chat having changed elsewhere: say so, show what
        this terminal had not shown, and keep the message to send again."""
        self.unsent = content
        prefill = self._can_prefill(content)
        if prefill:
            self._prefill = content  # kept even if the chat cannot be read again now
        if isinstance(refusal, ChatAnswering):
            why = (
                "this chat is still answering a message sent from elsewhere (the web chat "
                "or another terminal). Wait for that reply, then send yours again."
            )
        else:
            why = "this chat changed elsewhere (in the web chat or another terminal)."
        fresh, turns = await self.backend.open_session(session.id)
        self.session = fresh
        ids = [turn.id for turn in turns]
        if self.last_shown is None or self.last_shown in ids:
            start = 0 if self.last_shown is None else ids.index(self.last_shown) + 1
            print_note(self.console, f"Not sent: {why}")
            if news := turns[start:]:
                self.console.rule(Text("new in this chat"), style="dim")
                print_turns(self.console, news)
                self.console.rule(style="dim")
        else:  # what this terminal showed was replaced or deleted: the chat from the top
            print_note(self.console, f"Not sent: {why} The chat now:")
            print_transcript(self.console, fresh, turns)
        self.last_shown = turns[-1].id if turns else None
        self._say_kept(prefill)

    def _keep_unsent(self, content: str, why: str) -> None:
        """A message refused with nothing to show of the chat: say why, keep the message."""
        self.unsent = content
        prefill = self._can_prefill(content)
        if prefill:
            self._prefill = content
        print_note(self.console, f"Not sent: {why}")
        self._say_kept(prefill)

    @staticmethod
    def _can_prefill(content: str) -> bool:
        """Whether a message can be put back at the prompt (one line, with readline)."""
        return "\n" not in content and HAS_READLINE and hasattr(readline, "set_pre_input_hook")

    def _say_kept(self, prefill: bool) -> None:
        if prefill:
            print_note(
                self.console,
                "Your message is back at the prompt: Enter sends it again, Ctrl-U clears it.",
            )
        else:
            print_note(self.console, "Your message is kept: /resend sends it again.")

    async def _resend(self, argument: str) -> bool:
        if self.unsent is None:
            print_error(self.console, "no message to send again: none was refused")
            return True
        await self._reply(self.unsent)
        return True

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
        self.unsent = None
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
        self.last_shown = turns[-1].id if turns else None
        self.unsent = None
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


def _insert(text: str) -> None:
    """Readline's hook before a line is read: ``text`` is typed in, ready to edit."""
    readline.insert_text(text)
    readline.redisplay()
