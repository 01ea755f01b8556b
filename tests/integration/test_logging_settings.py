"""``logging:`` in modelway.yaml is applied by every worker: its level; bodies when asked."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from modelway.config import LoggingSettings
from modelway.logs import BODY_LOG_LIMIT, configure_logging, log_body
from tests.integration.gateway import gateway_process
from tests.polling import wait_until

SECRET_WORDS = "the-body-text-7f3a"


def _chat(url: str) -> None:
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": SECRET_WORDS}]}
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 200


def test_log_bodies_logs_each_request_body_with_its_request_id(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    config = "logging: {level: info, log_bodies: true}\n"
    with gateway_process({"MODELWAY_DATA_DIR": str(tmp_path)}, config, stderr_path=stderr) as (
        url,
        _,
    ):
        _chat(url)
        line = wait_until(
            lambda: next((x for x in stderr.read_text().splitlines() if SECRET_WORDS in x), None),
            what="the body in the log",
        )
    assert "modelway.bodies" in line and " openai body: " in line


@pytest.mark.parametrize(("level", "shown"), [("info", True), ("warning", False)])
def test_bodies_are_not_logged_unless_asked_and_the_level_holds(
    tmp_path: Path, level: str, shown: bool
) -> None:
    stderr = tmp_path / "stderr.log"
    config = f"logging: {{level: {level}, format: text}}\n"
    with gateway_process({"MODELWAY_DATA_DIR": str(tmp_path)}, config, stderr_path=stderr) as (
        url,
        _,
    ):
        _chat(url)  # answered: the worker's start (and its log lines) is behind us
        said = stderr.read_text()
    assert ("INFO modelway.store: store open" in said) is shown
    assert SECRET_WORDS not in said


@pytest.fixture
def restore_modelway_logger() -> object:
    logger = logging.getLogger("modelway")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_configuring_twice_keeps_one_handler_and_the_new_level(
    restore_modelway_logger: logging.Logger,
) -> None:
    configure_logging(LoggingSettings(level="debug"))
    configure_logging(LoggingSettings(level="warning"))
    logger = restore_modelway_logger
    assert logger.level == logging.WARNING
    assert [h.get_name() for h in logger.handlers].count("modelway-stderr") == 1


def test_a_long_body_is_cut_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="modelway.bodies"):
        log_body("rid-1", "openai", b"x" * (BODY_LOG_LIMIT + 10))
    [record] = caplog.records
    assert f"(first {BODY_LOG_LIMIT} of {BODY_LOG_LIMIT + 10} bytes)" in record.getMessage()
    assert len(record.getMessage()) < BODY_LOG_LIMIT + 200
