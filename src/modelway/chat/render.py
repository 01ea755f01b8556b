"""How the terminal chat looks: replies as live Markdown, sessions, transcripts, notes.

Rich renders the Markdown (Pygments highlights code blocks); nothing here parses it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelway.chat.backend import Answered, SessionInfo, TokensUsed, Turn

CODE_THEME = "monokai"
#: Characters of a session id shown: enough to tell sessions apart for ``--resume``.
SHORT_ID = 8


class _GrowingMarkdown:
    """Markdown of text that keeps arriving, parsed only when Rich draws it."""

    def __init__(self) -> None:
        self.text = ""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.text:
            yield Text("…", style="dim")  # waiting for the first token
            return
        yield Markdown(self.text, code_theme=CODE_THEME)


class LiveReply:
    """A reply drawn as Markdown while it streams; the final text stays on screen."""

    def __init__(self, console: Console) -> None:
        self._markdown = _GrowingMarkdown()
        self._live = Live(
            self._markdown, console=console, refresh_per_second=12, vertical_overflow="ellipsis"
        )

    @property
    def text(self) -> str:
        return self._markdown.text

    def add(self, text: str) -> None:
        self._markdown.text += text

    def __enter__(self) -> LiveReply:
        self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.text:
            self._live.transient = True  # nothing came: leave no placeholder behind
        self._live.stop()  # draws the whole reply once more, overflow included


def when(timestamp: float, now: float | None = None) -> str:
    """A short, human time: ``just now``, ``5 min ago``, ``3 h ago``, else the date."""
    elapsed = (time.time() if now is None else now) - timestamp
    if elapsed < 60:
        return "just now"
    if elapsed < 3600:
        return f"{int(elapsed // 60)} min ago"
    if elapsed < 86400:
        return f"{int(elapsed // 3600)} h ago"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def print_sessions(console: Console, sessions: Iterable[SessionInfo], current: str | None) -> None:
    """Numbered sessions, newest first; the current one is marked."""
    table = Table("#", "title", "model", "when", "id", box=None, header_style="bold")
    for number, session in enumerate(sessions, start=1):
        mark = " *" if session.id == current else ""
        table.add_row(
            f"{number}{mark}",
            Text(session.title),
            Text(session.model or "-"),
            when(session.updated_at),
            Text(session.id[:SHORT_ID], style="dim"),
        )
    if table.row_count == 0:
        console.print("[dim]no saved sessions yet[/]")
        return
    console.print(table)
    console.print("[dim]/resume N reopens one (or modelway chat --resume ID)[/]")


def print_transcript(console: Console, session: SessionInfo, turns: Iterable[Turn]) -> None:
    """A reopened session: its title, then every message."""
    console.rule(Text(session.title), style="dim")
    if session.system:
        console.print(Text(f"system: {session.system}", style="dim"))
    print_turns(console, turns)
    console.rule(style="dim")


def print_turns(console: Console, turns: Iterable[Turn]) -> None:
    """Saved messages: the user's after ``you >``, replies as Markdown."""
    for turn in turns:
        if turn.role == "user":
            console.print(Text("you > ", style="bold green") + Text(turn.content))
            continue
        if turn.content:
            console.print(Markdown(turn.content, code_theme=CODE_THEME))
        if turn.error:
            console.print(Text(f"({turn.error})", style="red dim"))


def print_tokens(console: Console, answered: Answered | None, tokens: TokensUsed) -> None:
    """The tokens a reply used, dimly, with who answered."""
    source = "estimated" if tokens.estimated else "reported"
    note = (
        f"{tokens.total} tokens ({tokens.prompt} prompt + {tokens.completion} completion, {source})"
    )
    if answered is not None:
        note += f" · {answered.provider}/{answered.model}" if answered.provider else ""
    console.print(Text(note, style="dim"))


def print_error(console: Console, message: str) -> None:
    """One red line."""
    console.print(f"[red]error: {escape(message)}[/]", highlight=False)


def print_note(console: Console, message: str) -> None:
    """What happened that is no failure (a message refused because the chat changed
    elsewhere), in yellow: nothing is lost."""
    console.print(Text(message, style="yellow"))
