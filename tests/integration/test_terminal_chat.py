"""``modelway chat`` as people use it: in a pseudo-terminal, in a pipe, against a gateway."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pexpect
import pytest

from tests.integration.gateway import running_gateway
from tests.integration.mockserver import running_mock
from tests.polling import wait_until

#: Escape sequences (colours, cursor moves, bracketed paste) and carriage returns.
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|[\r\x01\x02]")
#: Seconds to wait for text before deciding it will never come (not a timing assertion).
PATIENCE = 20
MASTER_KEY = "mw-terminal-chat-master-key-0123456789"
WRONG_KEY = "mw-terminal-chat-wrong-key-9876543210"


def _environment(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith("MODELWAY_")
    }
    return {**clean, "MODELWAY_DATA_DIR": str(data_dir), "COLUMNS": "100", **(extra or {})}


def chat_in_pipe(
    *args: str, stdin: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``echo STDIN | modelway chat ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "modelway.cli", "chat", *args],
        input=stdin,
        cwd=cwd,
        env=_environment(cwd / "data", env),
        capture_output=True,
        text=True,
        timeout=60,
    )


class Terminal:
    """A ``modelway chat`` in a pseudo-terminal, read as a person reads the screen."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self._unread = ""

    def send(self, line: str) -> None:
        self.child.sendline(line)

    def expect(self, text: str) -> str:
        """Wait until ``text`` shows; return what showed up to it (codes removed)."""
        while text not in self._unread:
            try:
                chunk = self.child.read_nonblocking(4096, timeout=PATIENCE)
            except (pexpect.TIMEOUT, pexpect.EOF):
                raise AssertionError(
                    f"never saw {text!r}; the screen ended:\n{self._unread}\n"
                    f"the chat's signals: {_signal_state(self.child.pid)}"
                ) from None
            self._unread = _TERMINAL_CODES.sub("", self._unread + chunk)
        before, _, self._unread = self._unread.partition(text)
        return before

    def prompt(self, model: str) -> str:
        """Wait for the prompt naming ``model``; return what showed before it."""
        return self.expect(f"{model} > ")


def _signal_state(pid: int) -> str:
    """The process's blocked, ignored and caught signals, as ``/proc`` shows them."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "gone"
    return " ".join(line.replace("\t", "") for line in status.splitlines() if line[:6] in
                    ("SigBlk", "SigIgn", "SigCgt"))  # fmt: skip


def _as_a_shell_starts_it() -> None:
    """Ctrl-C as an interactive shell hands it to a command: SIGINT neither ignored nor
    blocked, whatever the test process that starts the chat has done with it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


class StartChat(Protocol):
    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Terminal: ...


@pytest.fixture
def terminal_factory(workdir: Path) -> Iterator[StartChat]:
    children: list[pexpect.spawn] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Terminal:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "modelway.cli", "chat", *args],
            cwd=str(workdir),
            env=_environment(workdir / "data", env),
            encoding="utf-8",
            dimensions=(50, 100),
            preexec_fn=_as_a_shell_starts_it,
        )
        children.append(child)
        return Terminal(child)

    yield start
    for child in children:
        child.close(force=True)


# --- pipe mode -------------------------------------------------------------------------


def test_piped_message_is_answered_once_in_plain_text(workdir: Path) -> None:
    result = chat_in_pipe("-m", "mock/echo", stdin="hi\n", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    assert "\x1b" not in result.stdout


def test_piped_chat_uses_mock_echo_when_no_model_is_named(workdir: Path) -> None:
    result = chat_in_pipe(stdin="no model named", cwd=workdir)
    assert (result.returncode, result.stdout) == (0, "no model named\n")


def test_piped_chat_sends_all_of_stdin_as_one_message(workdir: Path) -> None:
    text = "# Title\n\nfirst paragraph\n\n```python\nprint('x')\n```"
    result = chat_in_pipe("-m", "mock/echo", stdin=text + "\n", cwd=workdir)
    assert result.stdout == text + "\n"  # plain text: the Markdown is not rendered


def test_piped_chat_with_an_unknown_model_fails_with_one_line(workdir: Path) -> None:
    result = chat_in_pipe("-m", "nosuch/model", stdin="hi", cwd=workdir)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "nosuch/model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_piped_chat_with_empty_input_fails(workdir: Path) -> None:
    result = chat_in_pipe("-m", "mock/echo", stdin="", cwd=workdir)
    assert result.returncode == 1
    assert "stdin" in result.stderr or "standard input" in result.stderr


# --- interactive, in-process --------------------------------------------------------------


def test_interactive_chat_streams_switches_models_and_resumes_sessions(
    terminal_factory: StartChat,
) -> None:
    term = terminal_factory("-m", "mock/echo")
    term.prompt("mock/echo")

    term.send("hello **terminal** chat")
    reply = term.expect("tokens")
    assert "hello terminal chat" in reply  # Markdown rendered: the asterisks are gone
    term.prompt("mock/echo")

    term.send("/model mock/other")
    term.prompt("mock/other")
    term.send("and now?")
    assert "Hello from the other mock model" in term.expect("tokens")
    term.prompt("mock/other")

    term.send("/new")
    term.prompt("mock/other")
    term.send("/model mock/echo")
    term.prompt("mock/echo")
    term.send("a second session")
    assert "a second session" in term.expect("tokens")
    term.prompt("mock/echo")

    term.send("/history")
    listing = term.prompt("mock/echo")
    assert listing.index("a second session") < listing.index("hello **terminal** chat")
    assert "mock/other" in listing

    term.send("/history 2")
    transcript = term.prompt("mock/other")  # the session's own model comes back with it
    assert "you > hello **terminal** chat" in transcript
    assert "you > and now?" in transcript
    assert "Hello from the other mock model" in transcript

    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)
    term.child.close()
    assert term.child.exitstatus == 0


def test_errors_show_as_one_red_line_and_the_session_goes_on(terminal_factory: StartChat) -> None:
    term = terminal_factory("-m", "mock/echo")
    term.prompt("mock/echo")
    term.send("/model nosuch/model")
    assert "error: model 'nosuch/model'" in term.prompt("mock/echo")
    term.send("/frobnicate")
    assert "unknown command /frobnicate" in term.prompt("mock/echo")
    term.send("still here")
    assert "still here" in term.expect("tokens")
    term.prompt("mock/echo")
    term.child.sendeof()  # Ctrl-D quits
    term.child.expect(pexpect.EOF, timeout=PATIENCE)
    term.child.close()
    assert term.child.exitstatus == 0
    assert "Traceback" not in term._unread


def test_a_message_of_several_lines_goes_between_triple_quotes(terminal_factory: StartChat) -> None:
    term = terminal_factory("-m", "mock/echo")
    term.prompt("mock/echo")
    for line in ('"""', "first line", "second line", '"""'):
        term.send(line)
    term.expect("tokens")
    term.prompt("mock/echo")
    term.send("/history 1")
    assert "you > first line\nsecond line\n" in term.prompt("mock/echo")  # one message
    # Between quotes, a line that starts with "/" is text, and indentation stays.
    for line in ('"""', "/usr/bin/python crashed:", "    Segfault", '"""'):
        term.send(line)
    shown = term.expect("tokens")
    assert "unknown command" not in shown
    assert "/usr/bin/python crashed:" in shown and "    Segfault" in shown
    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)


def test_ctrl_d_inside_triple_quotes_sends_what_was_typed(terminal_factory: StartChat) -> None:
    term = terminal_factory("-m", "mock/echo")
    term.prompt("mock/echo")
    for line in ('"""', "typed before", "the end of input"):
        term.send(line)
    term.child.sendeof()
    assert "typed before the end of input" in term.expect("tokens")  # echoed, as Markdown
    term.prompt("mock/echo")
    term.send("/history 1")
    assert "you > typed before\nthe end of input\n" in term.prompt("mock/echo")
    # The chat went on; a Ctrl-D at the prompt quits it.
    term.child.sendeof()
    term.child.expect(pexpect.EOF, timeout=PATIENCE)


def test_piped_input_that_is_not_utf8_is_answered_not_a_traceback(workdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelway.cli", "chat", "-m", "mock/echo"],
        input=b"caf\xe9 ok\n",
        cwd=workdir,
        env=_environment(workdir / "data"),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "caf\ufffd ok\n"


def test_resume_flag_reopens_a_saved_session(terminal_factory: StartChat) -> None:
    first = terminal_factory("-m", "mock/echo", "--system", "be brief")
    first.prompt("mock/echo")
    first.send("remember this line")
    first.expect("tokens")
    first.prompt("mock/echo")
    first.send("/history")
    listing = first.prompt("mock/echo")
    row = re.search(r"remember this line\s+mock/echo\s.*?([0-9a-f]{8})\s*$", listing, re.M)
    assert row is not None, listing
    first.send("/exit")
    first.child.expect(pexpect.EOF, timeout=PATIENCE)

    second = terminal_factory("--resume", row.group(1))
    transcript = second.prompt("mock/echo")
    assert "system: be brief" in transcript
    assert "you > remember this line" in transcript
    second.send("/exit")
    second.child.expect(pexpect.EOF, timeout=PATIENCE)


def test_ctrl_c_stops_a_reply_without_leaving_the_chat(terminal_factory: StartChat) -> None:
    words = " ".join(f"word{n}" for n in range(40))
    with running_mock("--tokens-per-second", "2") as mock_url:  # a reply that takes a while
        term = terminal_factory(
            "-m",
            "openai/echo",
            env={"OPENAI_BASE_URL": f"{mock_url}/v1", "OPENAI_API_KEY": "sk-test"},
        )
        term.prompt("openai/echo")
        term.send(words)
        # The line typed is echoed (twice when it was typed before readline took the
        # terminal, as on a busy machine), so the reply is known by its placeholder: "…"
        # is drawn once the reply runs, then its first word.
        term.expect("\u2026")
        term.expect("word0")  # the reply has begun
        term.child.sendintr()
        term.expect("stopped")
        term.prompt("openai/echo")
        term.send("/model mock/echo")
        term.prompt("mock/echo")
        term.send("after the stop")
        assert "after the stop" in term.expect("tokens")
        term.prompt("mock/echo")
        term.send("/resume 1")
        assert "(stopped)" in term.prompt("mock/echo")
        term.send("/exit")
        term.child.expect(pexpect.EOF, timeout=PATIENCE)


# --- against a running gateway ------------------------------------------------------------


#: ``stalling``: a model (``modelway mock`` as an Ollama upstream, whose first chunk has
#: text) that sends its first word, "Hello", and then nothing for minutes: a reply still
#: streaming, for as long as a test needs one.
STALLING_ALIAS = """
models:
  - name: stalling
    retries: 0
    timeouts: {stall: 300, total: 600}
    deployments:
      - {provider: ollama, model: other, headers: {x-mock-fault: "stall:240000"}}
"""


@pytest.fixture(scope="module")
def chat_gateway() -> Iterator[str]:
    with running_mock() as mock_url:
        env = {
            "MODELWAY_MASTER_KEY": MASTER_KEY,
            "OLLAMA_BASE_URL": mock_url,
        }
        with running_gateway(env, STALLING_ALIAS) as url:
            yield url


def test_piped_chat_against_a_gateway(workdir: Path, chat_gateway: str) -> None:
    result = chat_in_pipe(
        "--url",
        chat_gateway,
        "--key",
        MASTER_KEY,
        "-m",
        "mock/echo",
        stdin="over http",
        cwd=workdir,
    )
    assert (result.returncode, result.stdout) == (0, "over http\n"), result.stderr


def test_piped_chat_with_a_wrong_key_is_refused_without_showing_it(
    workdir: Path, chat_gateway: str
) -> None:
    result = chat_in_pipe("--url", chat_gateway, "--key", WRONG_KEY, stdin="hi", cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("error: gateway answered 401")
    assert WRONG_KEY not in result.stdout + result.stderr


def test_a_wrong_key_in_the_terminal_is_one_red_line_and_the_chat_goes_on(
    terminal_factory: StartChat, chat_gateway: str
) -> None:
    term = terminal_factory("--url", chat_gateway, "--key", WRONG_KEY)
    term.prompt("mock/echo")
    term.send("hello?")
    shown = term.prompt("mock/echo")
    assert "error: gateway answered 401" in shown
    term.send("/history")
    assert "error: gateway answered 401" in term.prompt("mock/echo")
    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)
    assert WRONG_KEY not in shown + term._unread


def test_piped_chat_against_a_gateway_that_is_down(workdir: Path) -> None:
    result = chat_in_pipe("--url", "http://127.0.0.1:9", stdin="anyone?", cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: cannot reach the gateway at http://127.0.0.1:9"


def test_interactive_chat_against_a_gateway_keeps_history_there(
    terminal_factory: StartChat, chat_gateway: str
) -> None:
    term = terminal_factory(
        "--url", chat_gateway, "-m", "mock/echo", env={"MODELWAY_API_KEY": MASTER_KEY}
    )
    term.prompt("mock/echo")
    term.send("remote **hello**")
    assert "remote hello" in term.expect("tokens")
    term.prompt("mock/echo")
    term.send("/new")
    term.prompt("mock/echo")
    term.send("/model mock/other")
    term.prompt("mock/other")
    term.send("remote second")
    assert "Hello from the other mock model" in term.expect("tokens")
    term.prompt("mock/other")
    term.send("/history")
    listing = term.prompt("mock/other")
    assert "remote second" in listing and "remote **hello**" in listing
    term.send("/resume 2")
    transcript = term.prompt("mock/echo")
    assert "you > remote **hello**" in transcript
    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)


def test_resume_in_a_pipe_is_refused_not_ignored(workdir: Path) -> None:
    result = chat_in_pipe("--resume", "abc", stdin="hi\n", cwd=workdir)
    assert result.returncode == 2 and result.stdout == ""
    assert "--resume reopens a session in the interactive chat" in result.stderr


# --- the same chat changed elsewhere -------------------------------------------------------


class WebChat:
    """Another client of the gateway's chat API on the terminal's chat, as the web chat is."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=PATIENCE
        )

    def latest_chat(self) -> str:
        return str(self.client.get("/chat/api/sessions").json()["sessions"][0]["id"])

    def messages(self, chat: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.client.get(f"/chat/api/sessions/{chat}").json()[
            "messages"
        ]
        return messages

    def contents(self, chat: str) -> list[str]:
        return [message["content"] for message in self.messages(chat)]

    def body(self, chat: str, content: str, model: str) -> dict[str, Any]:
        """A message sent after the chat's last message, as the web chat sends one."""
        last = self.messages(chat)[-1]["id"]
        return {"content": content, "model": model, "after": last}

    def regenerate(self, chat: str) -> None:
        body = {**self.body(chat, "", "mock/echo"), "regenerate": True}
        answer = self.client.post(f"/chat/api/sessions/{chat}/messages", json=body)
        assert answer.status_code == 200 and '"type":"done"' in answer.text

    def send(self, chat: str, content: str) -> None:
        answer = self.client.post(
            f"/chat/api/sessions/{chat}/messages", json=self.body(chat, content, "mock/echo")
        )
        assert answer.status_code == 200 and '"type":"done"' in answer.text


@pytest.fixture
def web_chat(chat_gateway: str) -> Iterator[WebChat]:
    web = WebChat(chat_gateway)
    yield web
    web.client.close()


def test_a_message_sent_after_the_chat_changed_elsewhere_is_kept_to_send_again(
    terminal_factory: StartChat, chat_gateway: str, web_chat: WebChat
) -> None:
    term = terminal_factory(
        "--url", chat_gateway, "-m", "mock/echo", env={"MODELWAY_API_KEY": MASTER_KEY}
    )
    term.prompt("mock/echo")
    term.send("first here")
    term.prompt("mock/echo")
    chat = web_chat.latest_chat()
    web_chat.send(chat, "from the web")
    # The terminal shows "first here" only: its message would follow messages it never
    # showed. The gateway refuses it, and the terminal shows what changed.
    term.send("second here")
    shown = term.prompt("mock/echo")
    assert "Not sent: this chat changed elsewhere" in shown
    assert "you > from the web" in shown
    assert "Your message is back at the prompt: Enter sends it" in shown
    assert web_chat.contents(chat) == ["first here", "first here", "from the web", "from the web"]
    term.send("")  # Enter sends the message put back at the prompt
    assert "second here" in term.expect("tokens")
    term.prompt("mock/echo")
    assert web_chat.contents(chat)[4:] == ["second here", "second here"]
    term.send("/resend")
    assert "no message to send again" in term.prompt("mock/echo")
    # The reply the terminal shows last is regenerated elsewhere: the chat is shown again
    # from the top. A message of several lines cannot go back on the prompt line: it is
    # kept for /resend.
    web_chat.regenerate(chat)
    term.send('"""')
    term.send("line one")
    term.send('line two"""')
    shown = term.prompt("mock/echo")
    assert "Not sent: this chat changed elsewhere" in shown
    assert "you > first here" in shown and "you > second here" in shown
    assert "Your message is kept: /resend sends it again" in shown
    term.send("/resend")
    assert "line two" in term.expect("tokens")
    term.prompt("mock/echo")
    assert web_chat.contents(chat)[-2:] == ["line one\nline two", "line one\nline two"]
    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)


def test_a_message_sent_to_a_chat_deleted_elsewhere_is_kept_for_a_new_chat(
    terminal_factory: StartChat, chat_gateway: str, web_chat: WebChat
) -> None:
    # It was a red "gateway answered 404" and the message was lost.
    term = terminal_factory(
        "--url", chat_gateway, "-m", "mock/echo", env={"MODELWAY_API_KEY": MASTER_KEY}
    )
    term.prompt("mock/echo")
    term.send("before the delete")
    term.prompt("mock/echo")
    chat = web_chat.latest_chat()
    assert web_chat.client.delete(f"/chat/api/sessions/{chat}").status_code in (200, 204)
    term.send("after the delete")
    shown = term.prompt("mock/echo")
    assert "Not sent: this chat was deleted elsewhere" in shown and "404" not in shown
    assert "Your message is back at the prompt" in shown
    term.send("")  # Enter sends it again: a new chat begins with it
    assert "after the delete" in term.expect("tokens")
    term.prompt("mock/echo")
    fresh = web_chat.latest_chat()
    assert fresh != chat
    assert web_chat.contents(fresh) == ["after the delete", "after the delete"]
    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)


def test_a_message_sent_while_another_client_is_answered_waits_for_that_reply(
    terminal_factory: StartChat, chat_gateway: str, web_chat: WebChat
) -> None:
    term = terminal_factory(
        "--url", chat_gateway, "-m", "mock/echo", env={"MODELWAY_API_KEY": MASTER_KEY}
    )
    term.prompt("mock/echo")
    term.send("first here")
    term.prompt("mock/echo")
    chat = web_chat.latest_chat()
    body = web_chat.body(chat, "a question from the web", "stalling")
    with web_chat.client.stream("POST", f"/chat/api/sessions/{chat}/messages", json=body) as reply:
        lines = reply.iter_lines()  # held: a generator dropped closes the stream
        next(line for line in lines if '"delta"' in line)  # the reply is streaming
        # A message now would land between that question and its reply: refused, and
        # the terminal shows the question.
        term.send("in between")
        shown = term.prompt("mock/echo")
        assert "Not sent: this chat is still answering a message sent from" in shown
        assert "you > a question from the web" in shown
        term.send("")  # sent again too soon: the same
        shown = term.prompt("mock/echo")
        assert "Not sent: this chat is still answering a message sent from" in shown
    # The other client stopped its reply; once it is saved, the terminal shows it before
    # the message goes after it (the message was typed before it was seen).
    wait_until(lambda: len(web_chat.messages(chat)) == 4)
    term.send("")
    shown = term.prompt("mock/echo")
    assert "Not sent: this chat changed elsewhere" in shown
    assert "Hello" in shown and "(stopped)" in shown
    term.send("")
    assert "in between" in term.expect("tokens")
    term.prompt("mock/echo")
    history = web_chat.messages(chat)
    assert [message["role"] for message in history] == ["user", "assistant"] * 3
    assert [message["content"] for message in history][4:] == ["in between", "in between"]
    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)


def test_a_message_sent_at_once_after_a_stopped_reply_follows_it(
    terminal_factory: StartChat, chat_gateway: str, web_chat: WebChat
) -> None:
    # The reply stopped is saved by the gateway once it sees the terminal hang up; the
    # message after it names it, so the gateway waits for it rather than refuse it.
    term = terminal_factory(
        "--url", chat_gateway, "-m", "stalling", env={"MODELWAY_API_KEY": MASTER_KEY}
    )
    term.prompt("stalling")
    term.send("tell me something")
    term.expect("Hello")  # the reply has begun (and stalls)
    term.child.sendintr()
    term.expect("stopped")
    term.prompt("stalling")
    term.send("/model mock/echo")
    term.prompt("mock/echo")
    term.send("after the stop")
    shown = term.expect("tokens")
    assert "after the stop" in shown and "Not sent" not in shown
    term.prompt("mock/echo")
    chat = web_chat.latest_chat()
    said = ["tell me something", "Hello ", "after the stop", "after the stop"]
    assert web_chat.contents(chat) == said
    term.send("/exit")
    term.child.expect(pexpect.EOF, timeout=PATIENCE)
