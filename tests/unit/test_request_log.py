"""One log line per request (``RequestLog``), the log formats, and the other log events."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelway.calls import ANONYMOUS, CallEnd, Caller
from modelway.config import Cooldown, LoggingSettings, parse_config
from modelway.errors import UpstreamStatusError
from modelway.gateway.state import GatewayState
from modelway.logs import (
    FORMAT_VARIABLE,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    direct_handler,
    flush_logs,
    log_format,
)
from modelway.observability.context import current_trace_id
from modelway.observability.request_log import FIELDS, LOGGER, RequestLog, RequestRecord
from modelway.routing.deployments import DeploymentState
from modelway.store.records import UsageRecord
from modelway.store.writer import UsageWriter
from tests.polling import eventually
from tests.unit.gateways import in_process_gateway


class Captured:
    """What a handler on ``modelway.requests`` wrote, line by line."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def request_lines() -> Iterator[Captured]:
    """JSON request lines of the ``modelway.requests`` logger, at info level."""
    yield from _capture(JsonFormatter())


@pytest.fixture
def request_text() -> Iterator[Captured]:
    yield from _capture(TextFormatter())


def _capture(formatter: logging.Formatter) -> Iterator[Captured]:
    logger = logging.getLogger(LOGGER)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield Captured(stream)
    finally:
        logger.removeHandler(handler)
        logger.level, logger.propagate = saved


def call_end(
    usage: UsageRecord, trace_id: str | None = None, caller: Caller = ANONYMOUS
) -> CallEnd:
    """A call's end as the ``later`` hooks see it (the response cache took no part)."""
    return CallEnd(usage, caller.name, None, True, usage.stream, 0.001, None, 0, trace_id)


def record(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": "rid-1",
        "time": 0.0,
        "dialect": "openai",
        "alias": "smart",
        "provider": "openai",
        "model": "gpt-4o",
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "cost_usd": 0.000042,
        "latency_ms": 12.3456,
        "ttft_ms": 4.5678,
        "stream": True,
        "retries": 1,
        "fallback_used": "cheap",
    }
    return UsageRecord(**{**base, **fields})


# --- the request line ------------------------------------------------------------------


async def test_a_virtual_key_request_logs_its_key_id_and_name_never_the_key(
    tmp_path: Path, request_lines: Captured
) -> None:
    async with in_process_gateway(tmp_path) as gateway:
        key, plaintext = await gateway.state.store.keys.create(
            "billing-bot", owner_user="ann", owner_team="red"
        )
        answer = await gateway.http.post(
            "/v1/chat/completions",
            json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {plaintext}", "x-request-id": "req-key-1"},
        )
        assert answer.status_code == 200
    said = request_lines.stream.getvalue()
    assert plaintext not in said
    assert plaintext[8:24] not in said  # nor any part of its secret
    [line] = [x for x in request_lines.json() if x["request_id"] == "req-key-1"]
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert set(FIELDS) <= set(line)
    assert line["message"] == "request" and line["logger"] == LOGGER and line["level"] == "info"
    assert line["time"].endswith("Z") and line["time"][10] == "T"
    assert line["key_id"] == key.id and line["key_name"] == "billing-bot"
    assert (line["user"], line["team"]) == ("ann", "red")
    assert (line["dialect"], line["alias"], line["provider"], line["model"]) == (
        "openai",
        "openai/gpt-4o",
        "openai",
        "gpt-4o",
    )
    assert (line["status"], line["error_type"], line["stream"]) == (200, None, False)
    assert (line["prompt_tokens"], line["completion_tokens"], line["cached_tokens"]) == (5, 1, 0)
    assert line["attempts"] == 1 and line["fallback"] is None and line["cache"] == "miss"
    assert line["latency_ms"] > 0 and line["ttft_ms"] is not None
    assert line["trace_id"] is None
    assert isinstance(line["cost_usd"], float)


async def test_a_refused_call_is_logged_too(tmp_path: Path, request_lines: Captured) -> None:
    async with in_process_gateway(tmp_path) as gateway:
        answer = await gateway.http.post(
            "/v1/chat/completions",
            json={"model": "nobody/serves-this", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-request-id": "req-unknown"},
        )
        assert answer.status_code == 404
    [line] = [x for x in request_lines.json() if x["request_id"] == "req-unknown"]
    assert line["status"] == 404 and line["error_type"] == "UnknownModel"
    assert line["provider"] is None and line["attempts"] == 0 and line["cache"] is None
    assert line["key_name"] == "master" and line["key_id"] is None


async def stored_records(state: GatewayState) -> list[UsageRecord]:
    """The gateway's usage records, once any has reached the store."""

    async def stored() -> list[UsageRecord] | None:
        return await state.store.usage.recent(limit=10) or None

    return await eventually(stored)


REFUSED_BEFORE_THE_CALL = [
    # (path, body, headers, status, error type, who the record is for)
    ("/v1/chat/completions", b'{"model": "mock/echo",', {}, 400, "BadRequest", "master"),
    ("/v1/chat/completions", b'{"messages": []}', {}, 400, "BadRequest", "master"),
    ("/v1/messages", b"[1, 2]", {}, 400, "BadRequest", "master"),
    ("/api/chat", b'{"model": "mock/echo"}', {"idempotency-key": ""}, 400, "BadRequest", "master"),
    (
        "/v1/chat/completions",
        b'{"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}',
        {"authorization": "Bearer mw-wrong-key-000000000000000000000000"},
        401,
        "AuthenticationError",
        "unauthenticated",
    ),
    (
        "/v1/chat/completions",
        b'{"model": "mock/echo", "messages": [{"role": "user", "content": "'
        + b"x" * 2048
        + b'"}]}',
        {},
        413,
        "PayloadTooLarge",
        "master",
    ),
    ("/v1/embeddings", b'{"model": "mock/echo", "input": []}', {}, 400, "BadRequest", "master"),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error_type", "key_name"), REFUSED_BEFORE_THE_CALL
)
async def test_a_request_refused_before_its_call_begins_is_recorded_and_logged(
    tmp_path: Path,
    request_lines: Captured,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    error_type: str,
    key_name: str,
) -> None:
    """A wrong key, a body too large, not JSON or naming no model: refused before a call
    could begin, and still one usage record and one request line, in the caller's dialect."""
    config = "server:\n  max_body_bytes: 1024\n"
    async with in_process_gateway(tmp_path, config) as gateway:
        answer = await gateway.http.post(
            path,
            content=body,
            headers={"content-type": "application/json", "x-request-id": "req-refused", **headers},
        )
        assert answer.status_code == status

        [record] = await stored_records(gateway.state)
    assert (record.request_id, record.status, record.error_type) == (
        "req-refused",
        status,
        error_type,
    )
    assert (record.key_id, record.alias, record.provider, record.model) == (None, None, None, None)
    assert (record.prompt_tokens, record.completion_tokens, record.cost_usd) == (0, 0, 0.0)
    [line] = [x for x in request_lines.json() if x["request_id"] == "req-refused"]
    assert (line["status"], line["error_type"], line["key_name"]) == (status, error_type, key_name)
    assert line["attempts"] == 0 and line["provider"] is None and line["alias"] is None


@pytest.mark.parametrize(
    ("path", "dialect"), [("/v1/embeddings", "openai"), ("/api/embed", "ollama")]
)
async def test_an_embeddings_request_refused_for_its_key_is_recorded_and_logged(
    tmp_path: Path, request_lines: Captured, path: str, dialect: str
) -> None:
    async with in_process_gateway(tmp_path) as gateway:
        answer = await gateway.http.post(
            path,
            json={"model": "mock/echo", "input": "hi"},
            headers={"authorization": "Bearer mw-wrong-0000000000", "x-request-id": "req-embed"},
        )
        assert answer.status_code == 401

        [record] = await stored_records(gateway.state)
    assert (record.request_id, record.dialect, record.status) == ("req-embed", dialect, 401)
    assert record.error_type == "AuthenticationError" and record.key_id is None
    [line] = [x for x in request_lines.json() if x["request_id"] == "req-embed"]
    assert (line["status"], line["key_name"]) == (401, "unauthenticated")


async def test_a_keyed_request_refused_for_its_body_is_recorded_against_its_key(
    tmp_path: Path,
) -> None:
    async with in_process_gateway(tmp_path) as gateway:
        key, plaintext = await gateway.state.store.keys.create("bot")
        answer = await gateway.http.post(
            "/v1/chat/completions",
            content=b"not json",
            headers={"authorization": f"Bearer {plaintext}", "content-type": "application/json"},
        )
        assert answer.status_code == 400

        [record] = await stored_records(gateway.state)
    assert (record.key_id, record.status, record.error_type) == (key.id, 400, "BadRequest")


async def test_logging_requests_false_registers_no_request_log(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path, "logging: {requests: false}\n") as gateway:
        assert not any(isinstance(h, RequestLog) for h in gateway.state.calls.hooks)
    async with in_process_gateway(tmp_path) as gateway:
        assert sum(isinstance(h, RequestLog) for h in gateway.state.calls.hooks) == 1


async def test_the_trace_id_of_the_calls_context_as_it_ends_is_its_lines(
    tmp_path: Path, request_lines: Captured
) -> None:
    """The tracing hook sets ``current_trace_id`` in the call's context as its span starts;
    the line, written later in a batch, carries the id the call ended with."""
    async with in_process_gateway(tmp_path) as gateway:
        for number in range(2):
            token = current_trace_id.set(f"{number:032x}")
            try:
                answer = await gateway.http.post(
                    "/v1/chat/completions",
                    json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"x-request-id": f"req-trace-{number}"},
                )
            finally:
                current_trace_id.reset(token)
            assert answer.status_code == 200
    traced = {x["request_id"]: x["trace_id"] for x in request_lines.json()}
    assert traced["req-trace-0"] == f"{0:032x}" and traced["req-trace-1"] == f"{1:032x}"


def test_the_line_carries_the_record_and_the_trace_id(request_lines: Captured) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    RequestLog().after_batch([call_end(record(error_type=None), trace)])
    [line] = request_lines.json()
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert (line["attempts"], line["fallback"], line["cache"]) == (2, "cheap", "miss")
    assert (line["latency_ms"], line["ttft_ms"]) == (12.35, 4.57)
    assert line["key_name"] == "anonymous" and line["stream"] is True


def test_a_call_answered_from_the_cache_made_no_attempts(request_lines: Captured) -> None:
    hit = record(cache_hit=True, retries=0, fallback_used=None, cost_usd=0.0)
    RequestLog().after_batch([call_end(hit)])
    [line] = request_lines.json()
    assert (line["attempts"], line["cache"], line["provider"]) == (0, "hit", "openai")


@pytest.mark.parametrize("headers", [{}, {"idempotency-key": "same-call-1"}])
async def test_cache_hits_log_no_attempts_as_their_headers_say(
    tmp_path: Path, request_lines: Captured, headers: dict[str, str]
) -> None:
    """The line's ``attempts`` is what ``x-modelway-attempts`` said (no header: none)."""
    body = {
        "model": "openai/gpt-4o",
        "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}],
    }
    said: dict[str, str] = {}
    async with in_process_gateway(tmp_path, "cache: {ttl: 60}\n") as gateway:
        for number in range(3):
            answer = await gateway.http.post(
                "/v1/chat/completions",
                json=body,
                headers={**headers, "x-request-id": f"req-cached-{number}"},
            )
            assert answer.status_code == 200
            said[f"req-cached-{number}"] = answer.headers.get("x-modelway-attempts", "0")
    lines = {x["request_id"]: x for x in request_lines.json()}
    logged = [(lines[rid]["cache"], lines[rid]["attempts"]) for rid in sorted(said)]
    assert logged == [("miss", 1), ("hit", 0), ("hit", 0)]
    assert [int(said[rid]) for rid in sorted(said)] == [1, 0, 0]


def test_a_request_line_is_encoded_as_the_librarys_path_would_encode_it() -> None:
    """The formatter's shortcut for request records writes the very line the library's
    generic path (``add_fields`` over the record) writes, key order included."""
    formatter = JsonFormatter()
    fields = {name: None for name in FIELDS} | {"status": 200, "latency_ms": 1.5, "stream": False}
    line = RequestRecord(LOGGER, fields)
    shortcut = formatter.format(line)
    generic = super(JsonFormatter, formatter).format(line)
    assert shortcut == generic
    assert list(json.loads(shortcut))[:5] == ["time", "level", "logger", "message", FIELDS[0]]


def test_request_lines_in_bytes_are_the_librarys_lines() -> None:
    """``format_bytes`` (what the batching handler writes): the library's line, UTF-8,
    for lines sharing a millisecond, the next millisecond, and odd fields."""
    formatter = JsonFormatter()
    first = RequestRecord(LOGGER, {name: None for name in FIELDS} | {"status": 200})
    same_moment = RequestRecord(LOGGER, {"status": 429, "key_name": "ünïcode ✓"})
    same_moment.created = first.created
    later = RequestRecord(LOGGER, {"cost_usd": 1e-7, "stream": True})
    later.created = first.created + 0.001
    empty = RequestRecord(LOGGER, {})
    for line in (first, same_moment, later, empty, first):
        generic = super(JsonFormatter, formatter).format(line)
        assert formatter.format_bytes(line) == generic.encode()
        assert formatter.format(line) == generic


def test_a_field_named_like_a_first_field_takes_the_librarys_path() -> None:
    formatter = JsonFormatter()
    line = RequestRecord(LOGGER, {"message": "mine", "status": 200})
    assert formatter.format_bytes(line) == super(JsonFormatter, formatter).format(line).encode()
    assert json.loads(formatter.format(line))["message"] == "mine"


def test_a_record_with_fields_and_an_exception_keeps_the_exception() -> None:
    formatter = JsonFormatter()
    line = RequestRecord(LOGGER, {"status": 500})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        line.exc_info = sys.exc_info()
    written = json.loads(formatter.format(line))
    assert written["status"] == 500 and "RuntimeError: boom" in written["exc_info"]


def test_nothing_is_built_while_the_level_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("test.request_log.off")
    logger.setLevel(logging.WARNING)

    def no(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a record was made")

    monkeypatch.setattr(logger, "makeRecord", no)
    RequestLog(logger).after_batch([call_end(record())])


def test_text_lines_are_short_and_human(request_text: Captured) -> None:
    RequestLog().after_batch([call_end(record(status=502, error_type="UpstreamError"))])
    [line] = request_text.lines()
    assert " INFO modelway.requests: request 502 openai smart -> openai/gpt-4o UpstreamError " in (
        line
    )
    assert "12.35 ms" in line and "stream ttft 4.57 ms" in line and "tokens 12+3" in line
    assert "attempts 2" in line and "fallback cheap" in line and "id rid-1" in line
    assert not line.lstrip().startswith("{")


def test_an_unpriced_calls_line_says_its_cost_is_unknown_not_zero(
    request_lines: Captured, request_text: Captured
) -> None:
    RequestLog().after_batch([call_end(record(cost_usd=0.0, unpriced=True))])
    [line] = request_lines.json()
    assert "cost_usd" in line and line["cost_usd"] is None
    [text] = request_text.lines()
    assert "tokens 12+3 unpriced" in text and "$" not in text


def test_a_text_line_cannot_be_forged_by_what_a_caller_named(request_text: Captured) -> None:
    forged = "x\n2099-01-01 00:00:00,000 INFO modelway.requests: request 200 key admin"
    RequestLog().after_batch([call_end(record(alias=forged, model="m\x1b[2J\r\x85"))])
    [line] = request_text.lines()  # one line, whatever the names held
    assert "smart" not in line and "x\\n2099-01-01" in line
    assert "m\\x1b[2J\\r\\x85" in line and "\x1b" not in line and "\r" not in line


def test_a_text_line_shows_a_dash_for_what_a_refused_call_never_had(
    request_text: Captured,
) -> None:
    refused = record(
        status=400,
        error_type="BadRequest",
        alias=None,
        provider=None,
        model=None,
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=0.0,
        ttft_ms=None,
        stream=False,
        retries=0,
        fallback_used=None,
    )
    RequestLog().after_batch([call_end(refused)])
    [line] = request_text.lines()
    assert " request 400 openai - BadRequest " in line
    assert "None" not in line


# --- formats -----------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("setting", "environ", "terminal", "chosen"),
    [
        ("auto", {}, False, "json"),
        ("auto", {}, True, "text"),
        ("json", {}, True, "json"),
        ("text", {}, False, "text"),
        ("text", {FORMAT_VARIABLE: "json"}, True, "json"),  # --log-format json
        ("json", {FORMAT_VARIABLE: "text"}, False, "text"),  # --log-format text
        ("json", {FORMAT_VARIABLE: "auto"}, True, "text"),  # --log-format auto
        ("text", {FORMAT_VARIABLE: ""}, False, "text"),
    ],
)
def test_the_log_format(setting: str, environ: dict[str, str], terminal: bool, chosen: str) -> None:
    stream = Terminal() if terminal else io.StringIO()
    assert log_format(setting, environ, stream) == chosen


def test_logging_format_is_a_setting() -> None:
    assert parse_config("logging: {format: json}\n", {}).logging.format == "json"
    assert parse_config("", {}).logging.format == "auto"
    assert parse_config("", {}).logging.requests is True
    with pytest.raises(Exception, match="format"):
        parse_config("logging: {format: yaml}\n", {})


@pytest.fixture
def modelway_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("modelway")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    root = logging.getLogger()
    root_handlers = list(root.handlers)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
    root.handlers[:] = root_handlers


@pytest.mark.parametrize("terminal", [False, True])
def test_configured_logging_writes_json_or_text(
    modelway_logger: logging.Logger, terminal: bool
) -> None:
    stream = Terminal() if terminal else io.StringIO()
    kind = configure_logging(LoggingSettings(), {}, stream)
    logging.getLogger("modelway.test").info("hello %s", "there", extra={"answer": 42})
    [line] = stream.getvalue().splitlines()
    if terminal:
        assert kind == "text"
        assert line.endswith(" INFO modelway.test: hello there")
    else:
        assert kind == "json"
        said = json.loads(line)
        assert said["message"] == "hello there" and said["answer"] == 42
        assert said["level"] == "info" and said["logger"] == "modelway.test"
        assert "args" not in said and "msg" not in said and "taskName" not in said


def test_an_exception_is_in_the_json_line(modelway_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(), {FORMAT_VARIABLE: "json"}, stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("modelway.test").exception("failed")
    said = json.loads(stream.getvalue())
    assert said["level"] == "error" and "ValueError: boom" in said["exc_info"]


def test_other_libraries_lines_are_json_lines_too(modelway_logger: logging.Logger) -> None:
    # asyncio's exception handler reports an unclosed connection in several lines; a
    # JSON log took them as bare text, which a log shipper cannot parse.
    stream = io.StringIO()
    configure_logging(LoggingSettings(), {FORMAT_VARIABLE: "json"}, stream)
    logging.getLogger("asyncio").error("Unclosed connection\nclient_connection: <Connection>")
    logging.getLogger("_granian").warning("worker %s died", 2)
    logging.getLogger("asyncio").debug("not at the default level")
    configure_logging(LoggingSettings(), {FORMAT_VARIABLE: "json"}, stream)  # again: replaced
    logging.getLogger("aiohttp.client").warning("once")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(said["logger"], said["level"]) for said in lines] == [
        ("asyncio", "error"),
        ("_granian", "warning"),
        ("aiohttp.client", "warning"),
    ]
    assert lines[0]["message"].startswith("Unclosed connection\nclient_connection")


def test_granian_passes_its_lines_to_the_gateways_handler(
    modelway_logger: logging.Logger,
) -> None:
    from granian.log import LogLevels
    from granian.log import configure_logging as granian_logging

    from modelway.logs import GRANIAN_LOGGING

    stream = io.StringIO()
    configure_logging(LoggingSettings(), {FORMAT_VARIABLE: "json"}, stream)
    granian_logging(LogLevels.warning, GRANIAN_LOGGING)  # as the supervisor does after us
    logging.getLogger("_granian").warning("listening")
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "listening"


# --- the other events: cooldowns, store outages -----------------------------------------


def test_a_cooldown_names_its_deployment(caplog: pytest.LogCaptureFixture) -> None:
    state = DeploymentState("openai/gpt-4o", Cooldown(failures=1, window=60, seconds=30))
    with caplog.at_level(logging.INFO, logger="modelway.routing"):
        state.failed(UpstreamStatusError("down", upstream_status=500), now=100.0)
    [event] = [r for r in caplog.records if "cooled down" in r.getMessage()]
    assert event.deployment == "openai/gpt-4o"  # type: ignore[attr-defined]
    assert event.seconds == 30  # type: ignore[attr-defined]


async def test_a_store_outage_says_error_and_spilled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing:
        async def insert_many(self, batch: list[UsageRecord]) -> None:
            raise ConnectionError("store gone")

    class FakeStore:
        usage = Failing()

    writer = UsageWriter(FakeStore(), tmp_path / "spill.jsonl")  # type: ignore[arg-type]
    writer.record(record())
    with caplog.at_level(logging.INFO, logger="modelway.store"):
        await writer.aclose()
    [outage] = [r for r in caplog.records if "store unreachable" in r.getMessage()]
    assert outage.error == "ConnectionError: store gone"  # type: ignore[attr-defined]
    assert outage.exc_info is None  # one line, no traceback
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.handle(outage)
    said = json.loads(stream.getvalue())
    assert said["error"] == "ConnectionError: store gone" and said["dependency"] == "store"


# --- a batch of calls' lines ------------------------------------------------------------


def ended_calls(count: int) -> list[CallEnd]:
    """``count`` calls that ended, each with its trace id."""
    return [
        call_end(record(request_id=f"rid-{number}", time=1e9 + number), f"trace-{number}")
        for number in range(count)
    ]


def test_a_batch_written_directly_is_what_records_would_have_written(
    modelway_logger: logging.Logger, tmp_path: Path
) -> None:
    """The served case (the gateway's JSON handler on stderr, a file): a batch's lines go
    out encoded straight from the calls' ends, the lines ``log`` gives through a record each
    (the same fields, values and order; numbers as msgspec writes them)."""
    ended = ended_calls(3)
    with open(tmp_path / "direct.log", "w") as direct:
        configure_logging(LoggingSettings(), {}, direct)
        hook = RequestLog()
        assert direct_handler(hook.logger) is not None
        hook.after_batch(ended)  # written at once: no batch waits
        direct_bytes = (tmp_path / "direct.log").read_bytes()
    with open(tmp_path / "records.log", "w") as through_records:
        configure_logging(LoggingSettings(), {}, through_records)
        for end in ended:
            hook.log(end)
        flush_logs()

    def parsed(data: bytes) -> list[list[tuple[str, Any]]]:
        return [list(json.loads(line).items()) for line in data.splitlines()]

    assert parsed(direct_bytes) == parsed((tmp_path / "records.log").read_bytes())
    lines = [json.loads(line) for line in direct_bytes.splitlines()]
    assert [(line["request_id"], line["trace_id"]) for line in lines] == [
        (f"rid-{n}", f"trace-{n}") for n in range(3)
    ]
    assert lines[0]["time"].startswith("2001-09-09T01:46:40.")  # when the call ended


def test_a_handler_of_someone_elses_gets_records(modelway_logger: logging.Logger) -> None:
    configure_logging(LoggingSettings(), {}, io.StringIO())
    seen: list[logging.LogRecord] = []
    theirs = logging.Handler()
    theirs.emit = seen.append  # type: ignore[method-assign]
    requests = logging.getLogger(LOGGER)
    requests.addHandler(theirs)
    try:
        assert direct_handler(requests) is None
        RequestLog().after_batch(ended_calls(2))
    finally:
        requests.removeHandler(theirs)
    assert [line.modelway_fields["request_id"] for line in seen] == ["rid-0", "rid-1"]  # type: ignore[attr-defined]


def test_text_lines_are_never_written_directly(modelway_logger: logging.Logger) -> None:
    stream = Terminal()
    configure_logging(LoggingSettings(), {}, stream)
    assert direct_handler(logging.getLogger(LOGGER)) is None
    RequestLog().after_batch(ended_calls(1))
    assert stream.getvalue().split(" ", 3)[3].startswith("modelway.requests: request 200")


def test_a_line_msgspec_cannot_encode_takes_the_librarys_way(
    modelway_logger: logging.Logger, tmp_path: Path
) -> None:
    ended = ended_calls(3)
    odd = record(request_id="rid-odd", model="\ud800")  # a lone surrogate: not UTF-8
    ended[1] = call_end(odd)
    with open(tmp_path / "stderr.log", "w") as stderr:
        configure_logging(LoggingSettings(), {}, stderr)
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):  # where logging reports its own errors
            RequestLog().after_batch(ended)
            flush_logs()
    ids = [
        json.loads(line)["request_id"]
        for line in (tmp_path / "stderr.log").read_bytes().splitlines()
    ]
    assert ids == ["rid-0", "rid-2"]  # whole lines only, none half-written
    assert "Logging error" in errors.getvalue()  # the odd one said so, as logging does


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=30,
    ),
    st.integers(min_value=0, max_value=3),
)
def test_a_lines_time_is_its_own_whatever_the_lines_before_it(
    times: list[float], repeats: int
) -> None:
    formatter = JsonFormatter()
    for created in [moment for moment in times for _ in range(repeats + 1)]:
        second = int(created)
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        expected += f".{int((created - second) * 1000):03d}Z"
        assert formatter.time_text(created) == expected
