"""Start the terminal chat: pick the backend, then converse or answer a pipe once."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, TextIO

from rich.console import Console

from modelway.calls import stored_calls
from modelway.chat.backend import ChatBackend
from modelway.chat.local import LocalBackend
from modelway.chat.remote import RemoteBackend
from modelway.chat.repl import ChatRepl
from modelway.config import ConfigError, load_config
from modelway.errors import ModelwayError
from modelway.store import Store, database_url
from modelway.types import TextDelta

#: The model when neither ``-m`` nor ``MODELWAY_CHAT_MODEL`` names one: works offline.
DEFAULT_MODEL = "mock/echo"


class ChatOptions(NamedTuple):
    """What ``modelway chat`` was asked for."""

    model: str | None = None
    system: str | None = None
    url: str | None = None
    key: str | None = None
    resume: str | None = None
    config: Path | None = None


def run_chat(
    options: ChatOptions,
    environ: Mapping[str, str],
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
) -> int:
    """Chat in the terminal, or answer standard input once when it is not a terminal.

    Returns the exit code: 0, 1 when the answer failed, 2 for a bad config.
    """
    model = options.model or environ.get("MODELWAY_CHAT_MODEL") or DEFAULT_MODEL
    interactive = stdin.isatty()
    if options.resume is not None and not interactive:
        print(
            "error: --resume reopens a session in the interactive chat; "
            "a piped message is answered on its own",
            file=stderr,
        )
        return 2
    with asyncio.Runner() as runner:
        try:
            backend = runner.run(_open_backend(options, environ))
        except ConfigError as error:
            print(f"config error: {error}", file=stderr)
            return 2
        except ModelwayError as error:
            print(f"error: {error.message}", file=stderr)
            return 1
        try:
            if not interactive:
                return runner.run(
                    _answer_piped(backend, _piped_text(stdin), model, options, stdout, stderr)
                )
            repl = ChatRepl(
                backend, Console(highlight=False), runner, model=model, system=options.system
            )
            return repl.run(options.resume)
        except KeyboardInterrupt:
            return 130
        finally:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                runner.run(backend.aclose())


async def _open_backend(options: ChatOptions, environ: Mapping[str, str]) -> ChatBackend:
    """A gateway client for ``--url``, else metered calls and the store as ``serve`` has them."""
    if options.url is not None:
        return RemoteBackend(options.url, options.key)
    config = load_config(options.config, environ)
    try:
        store = await Store.open(database_url(environ, config.store.url))
    except Exception as error:
        # The first line names the problem; SQLAlchemy masks any password in a URL.
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelwayError(f"cannot open the chat history store: {first_line}") from None
    try:
        calls = stored_calls(config, environ, store)
    except BaseException:
        await store.aclose()
        raise
    backend = LocalBackend(calls, store)
    try:
        await backend.reconnect_saved_providers()
    except BaseException:
        await backend.aclose()
        raise
    return backend


async def _answer_piped(
    backend: ChatBackend,
    content: str,
    model: str,
    options: ChatOptions,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Send all of ``content`` as one message; the reply goes to ``stdout`` as plain text."""
    content = content.strip()
    if not content:
        print("error: nothing to send: standard input was empty", file=stderr)
        return 1
    ended_with_newline = True
    try:
        events = backend.answer_once(content, model, options.system)
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, TextDelta):
                    stdout.write(event.text)
                    stdout.flush()
                    ended_with_newline = event.text.endswith("\n")
    except ModelwayError as error:
        if not ended_with_newline:
            stdout.write("\n")
        print(f"error: {error.message}", file=stderr)
        return 1
    if not ended_with_newline:
        stdout.write("\n")
    stdout.flush()
    return 0


def _piped_text(stdin: TextIO) -> str:
    """Standard input as text; bytes that are not UTF-8 (a Latin-1 file, a binary diff)
    become U+FFFD rather than stopping the answer."""
    raw = getattr(stdin, "buffer", None)
    if raw is not None:
        return str(raw.read().decode("utf-8", "replace"))
    return stdin.read().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
