"""A real ``modelway serve``: one log line per request on stderr, JSON unless told or a terminal."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from modelway.observability.request_log import FIELDS
from modelway.store import Store, database_url
from tests.integration.gateway import gateway_process
from tests.polling import wait_until


def _create_key(data_dir: Path, name: str) -> tuple[str, str]:
    """A virtual key in the gateway's store: its id and the key itself."""

    async def create() -> tuple[str, str]:
        store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(data_dir)}))
        try:
            record, plaintext = await store.keys.create(name, owner_team="red")
            return record.id, plaintext
        finally:
            await store.aclose()

    return asyncio.run(create())


def _chat(url: str, key: str | None, request_id: str, *, stream: bool = False) -> None:
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-request-id": request_id}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    with httpx.Client(base_url=url, timeout=10) as http:
        answer = http.post("/v1/chat/completions", json={**body, "stream": stream}, headers=headers)
        assert answer.status_code == 200, answer.text


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line the gateway wrote on stderr, each of which must be a JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _request_lines(path: Path, count: int) -> list[dict[str, Any]] | None:
    found = [x for x in _json_lines(path) if x["logger"] == "modelway.requests"]
    return found if len(found) == count else None


def test_serve_logs_one_json_line_per_request_naming_the_key_never_showing_it(
    tmp_path: Path,
) -> None:
    key_id, key = _create_key(tmp_path, "ci-runner")
    stderr = tmp_path / "stderr.log"
    env = {"MODELWAY_DATA_DIR": str(tmp_path)}
    with gateway_process(env, None, stderr_path=stderr) as (url, _):  # stderr: a file, auto
        _chat(url, key, "rl-whole")
        _chat(url, key, "rl-stream", stream=True)
        lines = wait_until(lambda: _request_lines(stderr, 2), what="two request lines")
    said = stderr.read_text()
    assert key not in said
    events = _json_lines(stderr)  # every line of the run, the shutdown's too, is JSON
    whole, streamed = sorted(lines, key=lambda x: x["request_id"] != "rl-whole")
    for line in (whole, streamed):
        assert set(FIELDS) <= set(line)
        assert line["message"] == "request" and line["level"] == "info"
        assert line["key_id"] == key_id and line["key_name"] == "ci-runner"
        assert line["team"] == "red"
        assert (line["provider"], line["model"], line["status"]) == ("mock", "echo", 200)
        assert line["attempts"] == 1 and line["cache"] == "miss"
        assert line["completion_tokens"] > 0 and line["latency_ms"] > 0
    assert (whole["request_id"], whole["stream"]) == ("rl-whole", False)
    assert (streamed["request_id"], streamed["stream"]) == ("rl-stream", True)
    assert streamed["ttft_ms"] is not None
    [started] = [x for x in events if " listening on " in x["message"]]
    assert started["address"] == url and started["workers"] == 1 and started["version"]
    messages = [x["message"] for x in events]
    assert "worker started" in messages
    stopped = wait_until(
        lambda: next((x for x in _json_lines(stderr) if x["message"] == "modelway stopped"), None),
        what="the stop event",
    )
    assert (stopped["address"], stopped["workers"]) == (url, 1)
    assert stopped["version"] == started["version"]
    assert "worker stopping" in [x["message"] for x in _json_lines(stderr)]


def test_log_format_text_writes_lines_for_people(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    env = {"MODELWAY_DATA_DIR": str(tmp_path)}
    with gateway_process(env, None, "--log-format", "text", stderr_path=stderr) as (url, _):
        _chat(url, None, "rl-text")
        line = wait_until(
            lambda: next((x for x in stderr.read_text().splitlines() if "rl-text" in x), None),
            what="the request line",
        )
    assert " INFO modelway.requests: request 200 openai mock/echo -> mock/echo " in line
    assert "key anonymous" in line
    assert not any(x.startswith("{") for x in stderr.read_text().splitlines())


def test_log_format_json_overrides_the_config(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    env = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = "logging: {format: text}\n"
    with gateway_process(env, config, "--log-format", "json", stderr_path=stderr) as (url, _):
        _chat(url, None, "rl-json")
        wait_until(
            lambda: any(x.get("request_id") == "rl-json" for x in _json_lines(stderr)),
            what="the request line",
        )


def test_a_config_can_ask_for_text_and_switch_request_lines_off(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    env = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = "logging: {format: text, requests: false}\n"
    with gateway_process(env, config, stderr_path=stderr) as (url, _):
        _chat(url, None, "rl-off")
        said = stderr.read_text()
    assert "INFO modelway.gateway: worker started" in said
    assert "modelway.requests" not in said and "rl-off" not in said


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_a_client_gone_mid_body_is_a_499_line_not_a_traceback(tmp_path: Path, path: str) -> None:
    # Any client could fill the log with "unexpected error" tracebacks this way.
    stderr = tmp_path / "stderr.log"
    with gateway_process({"MODELWAY_DATA_DIR": str(tmp_path)}, None, stderr_path=stderr) as (
        url,
        _,
    ):
        address = urlsplit(url)
        for _ in range(3):
            with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
                )
        # A request after them is answered: the worker is well, and its line comes last.
        assert httpx.get(f"{url}/health/live", timeout=10).status_code == 200
        if path == "/v1/chat/completions":
            lines = wait_until(lambda: _request_lines(stderr, 3), what="three request lines")
            assert {line["status"] for line in lines} == {499}
    said = stderr.read_text()
    assert "unexpected error" not in said and "Traceback" not in said, said
