"""Request lines are written in batches (one write for many), never late by much, whole."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelway.logs import BATCH_BYTES, BatchingHandler, JsonFormatter, flush_logs
from modelway.observability.request_log import RequestRecord
from tests.polling import wait_until


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def isatty(self) -> bool:
        return False


@pytest.fixture(autouse=True)
def loggers_restored() -> Iterator[None]:
    names = ("modelway", "modelway.requests", "modelway.x")
    saved = [
        (logger, list(logger.handlers), logger.level, logger.propagate)
        for logger in map(logging.getLogger, names)
    ]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers, logger.level, logger.propagate = handlers, level, propagate


def handler_logging() -> tuple[CountingStream, logging.Logger, logging.Logger, BatchingHandler]:
    stream = CountingStream()
    handler = BatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    requests, other = logging.getLogger("modelway.requests"), logging.getLogger("modelway.x")
    for logger in (requests, other):
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return stream, requests, other, handler


def test_request_lines_go_out_together_soon_and_other_lines_at_once() -> None:
    stream, requests, other, _ = handler_logging()
    for number in range(5):
        requests.info("request %d", number)
    assert stream.writes == []  # waiting to go out together
    wait_until(lambda: len(stream.writes) == 1, what="the batch")
    assert stream.writes[0].count("\n") == 5
    requests.info("request 5")
    other.info("worker stopping")  # written at once, after what waited, in order
    assert stream.getvalue().splitlines()[-2:] == [
        "modelway.requests request 5",
        "modelway.x worker stopping",
    ]


def test_a_batch_stays_below_an_atomic_pipe_write() -> None:
    stream, requests, _, handler = handler_logging()
    for number in range(200):
        requests.info("request %d %s", number, "x" * 100)
    handler.flush()
    assert all(len(write) < BATCH_BYTES + 200 for write in stream.writes)
    assert all(write.endswith("\n") for write in stream.writes)  # whole lines only
    assert stream.getvalue().count("\n") == 200


def test_flush_logs_writes_what_waits() -> None:
    stream, requests, _, handler = handler_logging()
    root = logging.getLogger("modelway")
    root.handlers = [handler]
    requests.info("last words")
    flush_logs()
    assert stream.getvalue() == "modelway.requests last words\n"


async def test_lines_logged_on_an_event_loop_are_written_by_that_loop() -> None:
    stream, requests, _, handler = handler_logging()
    for number in range(3):
        requests.info("request %d", number)
    assert stream.writes == []
    for _ in range(200):  # the loop's own callback writes the batch: no thread is started
        if stream.writes:
            break
        await asyncio.sleep(0.01)
    assert stream.writes == ["modelway.requests request 0\nmodelway.requests request 1\n"
                             "modelway.requests request 2\n"]  # fmt: skip
    assert handler._writer is None


def test_a_batch_whose_loop_stopped_is_written_by_the_next_flush() -> None:
    stream, requests, _, _ = handler_logging()

    async def log_and_leave() -> None:
        requests.info("request on a loop that stops at once")

    asyncio.run(log_and_leave())
    assert stream.writes == []  # its loop closed before the batch was due
    flush_logs_of(requests)
    assert stream.writes == ["modelway.requests request on a loop that stops at once\n"]


def flush_logs_of(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.flush()


class CountingFile(io.FileIO):
    """A raw file (stderr's binary side) that notes the size of each write."""

    def __init__(self, target: str | int) -> None:
        super().__init__(target, "w")
        self.sizes: list[int] = []

    def write(self, data: Any) -> int:
        self.sizes.append(len(data))
        written = super().write(data)
        assert written is not None
        return written


def json_lines_to(raw: CountingFile, count: int) -> None:
    """``count`` request lines through a JSON ``BatchingHandler`` on a stderr-like stream
    (text over ``raw``), written as one batch."""
    stream = io.TextIOWrapper(raw, write_through=True)  # what sys.stderr is
    handler = BatchingHandler(stream)
    handler.setFormatter(JsonFormatter())
    requests = logging.getLogger("modelway.requests")
    requests.handlers, requests.propagate = [handler], False
    requests.setLevel(logging.INFO)
    for number in range(count):
        requests.handle(RequestRecord(requests.name, {"number": number, "pad": "x" * 100}))
    handler.flush()
    stream.detach()


def test_json_lines_to_a_file_go_out_as_bytes_in_one_write(tmp_path: Path) -> None:
    path = tmp_path / "stderr.log"
    raw = CountingFile(str(path))
    json_lines_to(raw, 200)
    raw.close()
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["number"] for line in lines] == list(range(200))
    assert raw.sizes == [path.stat().st_size]  # a regular file takes the batch at once


def test_json_lines_to_a_pipe_go_out_in_atomic_whole_line_writes() -> None:
    reading, writing = os.pipe()
    raw = CountingFile(writing)
    try:
        json_lines_to(raw, 200)  # ~30 KB: fits in the pipe's buffer, read below
    finally:
        raw.close()
    with open(reading, "rb") as pipe:
        data = pipe.read()
    assert [json.loads(line)["number"] for line in data.splitlines()] == list(range(200))
    assert len(raw.sizes) > 1 and all(size <= BATCH_BYTES for size in raw.sizes)
    assert sum(raw.sizes) == len(data)
