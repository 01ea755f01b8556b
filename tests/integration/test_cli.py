"""The ``modelway`` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelway.listening import reserve
from tests.integration.gateway import running_gateway
from tests.polling import wait_until

SECRET = "sk-ant-verysecretkey-1234567890"


def modelway(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "modelway.cli", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_check_shows_providers_and_aliases_with_keys_masked(tmp_path: Path) -> None:
    (tmp_path / "modelway.yaml").write_text(
        "providers:\n"
        '  anthropic: {api_key: "${MY_KEY}"}\n'
        "models:\n"
        "  - name: smart\n"
        "    deployments: [{provider: anthropic, model: claude-sonnet-4-5}]\n"
        "    fallbacks: [local]\n"
        "  - name: local\n"
        "    deployments: [{provider: mock, model: echo}]\n"
    )
    result = modelway("config", "check", cwd=tmp_path, env={"MY_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    assert (
        "anthropic" in result.stdout and "smart" in result.stdout and "config OK" in result.stdout
    )
    assert SECRET not in result.stdout + result.stderr
    assert "sk-" in result.stdout  # masked, not hidden entirely


def test_config_check_names_the_line_of_a_bad_value(tmp_path: Path) -> None:
    (tmp_path / "modelway.yaml").write_text(
        "models:\n"
        "  - name: smart\n"
        "    strategy: fastest\n"
        "    deployments: [{provider: mock, model: echo}]\n"
    )
    result = modelway("config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "modelway.yaml:3" in result.stderr and "strategy" in result.stderr


def test_config_check_with_an_unknown_section_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "modelway.yaml").write_text("server: {port: 8080}\nfrobnicate: true\n")
    result = modelway("config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "modelway.yaml:2" in result.stderr


def test_models_json_lists_the_mock_and_aliases(tmp_path: Path) -> None:
    (tmp_path / "modelway.yaml").write_text(
        "models:\n  - name: house\n    deployments: [{provider: mock, model: echo}]\n"
    )
    result = modelway("models", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ids = {m["id"] for m in json.loads(result.stdout)}
    assert {"house", "mock/echo", "mock/mock-1"} <= ids


def test_serve_refuses_a_public_bind_without_auth(tmp_path: Path) -> None:
    result = modelway("serve", "--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--insecure" in result.stderr


def test_serve_names_a_database_it_cannot_use_without_a_traceback_or_password(
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": "mysql://app:s3cret-pw@db/modelway"}
    result = modelway("serve", "--port", "0", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "PostgreSQL or SQLite, not 'mysql'" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret-pw" not in result.stderr


def test_serve_with_two_workers_answers(tmp_path: Path) -> None:
    with running_gateway(None, None, "--workers", "2") as url:
        # The parent binds and prints; workers accept once their apps are built.
        def answer() -> httpx.Response | None:
            try:
                return httpx.post(
                    f"{url}/v1/chat/completions",
                    json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
                    timeout=30,
                )
            except httpx.TransportError:
                return None

        response = wait_until(answer)
        assert response.json()["choices"][0]["message"]["content"] == "hi"


def test_config_check_and_serve_refuse_the_same_unbuildable_provider(tmp_path: Path) -> None:
    # Azure has no default base URL: the config parses but the provider cannot be built.
    (tmp_path / "modelway.yaml").write_text("providers:\n  azure: {api_key: abc}\n")
    checked = modelway("config", "check", cwd=tmp_path)
    served = modelway("serve", "--port", "0", cwd=tmp_path)
    for result in (checked, served):
        assert result.returncode == 2
        assert "azure" in result.stderr and "base_url" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "config",
    [
        # No ANTHROPIC_API_KEY: serve started and sent every call to Anthropic with no key.
        "models:\n  - name: smart\n    deployments: [{provider: anthropic, model: claude-x}]\n",
        # A port that is no number: every call was a 500.
        'providers:\n  openai: {api_key: sk-abcdefghijklmnop, base_url: "http://127.0.0.1:abc/v1"}\n',
        # Nested past what the YAML parser's recursion holds: a traceback.
        "server: " + "[" * 100_000 + "]" * 100_000 + "\n",
    ],
    ids=["provider-not-enabled", "port-not-a-number", "nested-too-deep"],
)
def test_config_check_and_serve_refuse_the_same_config_in_one_line(
    tmp_path: Path, config: str
) -> None:
    (tmp_path / "modelway.yaml").write_text(config)
    for result in (
        modelway("config", "check", cwd=tmp_path),
        modelway("serve", "--port", "0", cwd=tmp_path),
    ):
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith("config error: ")
        assert "Traceback" not in result.stderr


def test_serve_says_when_its_port_is_taken_even_by_another_gateway(tmp_path: Path) -> None:
    with running_gateway() as url:
        port = url.rsplit(":", 1)[1]
        result = modelway("serve", "--port", port, cwd=tmp_path)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200  # still the first
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_and_serve_refuse_a_redis_or_store_url_of_the_wrong_kind(
    tmp_path: Path,
) -> None:
    for config in ('redis: {url: "http://u:pw-never-shown@x"}\n', 'store: {url: "mysql://x/db"}\n'):
        (tmp_path / "modelway.yaml").write_text(config)
        for result in (
            modelway("config", "check", cwd=tmp_path),
            modelway("serve", "--port", "0", cwd=tmp_path),
        ):
            assert result.returncode == 2, result.stdout + result.stderr  # never a worker loop
            assert "modelway.yaml:1:" in result.stderr and "url" in result.stderr
            assert "pw-never-shown" not in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "modelway.yaml").write_text("")
    served = modelway("serve", "--port", "0", cwd=tmp_path, env={"REDIS_URL": "http://x"})
    assert served.returncode == 2 and "REDIS_URL" in served.stderr


def test_serve_does_not_join_a_port_another_gateway_is_starting_on(tmp_path: Path) -> None:
    """A starting gateway holds its port (``reserve``) from its check until it stops, so a
    second one started meanwhile refuses it instead of sharing it through SO_REUSEPORT
    (the kernel would then spread connections between two gateways)."""
    held = reserve("127.0.0.1", 0)  # as a gateway holds it while its workers start
    try:
        port = str(held.getsockname()[1])
        result = modelway("serve", "--port", port, cwd=tmp_path)
    finally:
        held.close()
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


#: ``modelway serve --port 0`` with its workers replaced by a look at the port meanwhile.
_HELD_WHILE_SERVING = """
import sys
from modelway.gateway import workers
from modelway.listening import bind_problem
seen = []
workers.serve = lambda host, port, count, grace: seen.append((port, bind_problem(host, port)))
workers.main(["--port", "0"])
[(port, problem)] = seen
print(port, problem, bind_problem("127.0.0.1", port), sep="|")
"""


def test_the_port_is_held_from_the_check_until_the_server_stops(tmp_path: Path) -> None:
    """While the workers start, nobody else finds the port free (it was free again until
    they bound it, seconds later, so two gateways starting at once could share it)."""
    env = {**os.environ, "MODELWAY_DATA_DIR": str(tmp_path / "data")}
    env.pop("MODELWAY_MASTER_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", _HELD_WHILE_SERVING],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    port, while_serving, after = result.stdout.strip().splitlines()[-1].split("|")
    assert int(port) > 0
    assert while_serving == "Address already in use"
    assert after == "None"  # let go once the server stopped


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    result = modelway("serve", "--port", "99999", cwd=tmp_path)
    assert result.returncode == 2


def test_serve_says_when_the_store_cannot_be_reached_without_its_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://gateway:pw-never-shown@127.0.0.1:9/modelway"  # nothing listens on 9
    result = modelway("serve", "--port", "0", cwd=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert "cannot open the store at postgresql+asyncpg://gateway:***@127.0.0.1:9" in (
        result.stderr
    )
    assert "pw-never-shown" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_serve_takes_localhost_as_a_host(tmp_path: Path) -> None:
    with running_gateway(None, None, "--host", "localhost") as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200


def test_serve_says_when_its_data_directory_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {"MODELWAY_DATA_DIR": str(blocker / "data")}
    result = modelway("serve", "--port", "0", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "cannot use the data directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_base_url_that_is_not_http_is_refused_and_one_with_secrets_is_masked(
    tmp_path: Path,
) -> None:
    (tmp_path / "modelway.yaml").write_text(
        'providers:\n  openai: {base_url: "ftp://files.example", api_key: k}\n'
    )
    for result in (
        modelway("config", "check", cwd=tmp_path),
        modelway("serve", "--port", "0", cwd=tmp_path),
    ):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "modelway.yaml:2: providers.openai: base_url: an http:// or https:// URL" in (
            result.stderr
        )
    (tmp_path / "modelway.yaml").write_text(
        "providers:\n  openai:\n"
        '    base_url: "http://admin:P4ssw0rdSECRET@host.example/v1?api_key=QUERYSECRET"\n'
        "    api_key: k\n"
    )
    shown = modelway("config", "check", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "P4ssw0rdSECRET" not in shown.stdout and "QUERYSECRET" not in shown.stdout
    assert "admin:****@host.example" in shown.stdout


def test_names_that_look_like_markup_do_not_break_config_check_or_models(tmp_path: Path) -> None:
    (tmp_path / "modelway.yaml").write_text(
        'models:\n  - name: "[/]"\n    deployments: [{provider: mock, model: echo}]\n'
    )
    for args in (("config", "check"), ("models",)):
        result = modelway(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "[/]" in result.stdout


def test_a_dotenv_that_is_not_utf8_is_one_line_for_every_command(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"X=1\n\xff\n")
    for args in (("config", "check"), ("models",), ("keys", "list"), ("serve", "--port", "0")):
        result = modelway(*args, cwd=tmp_path, env={"MODELWAY_DATA_DIR": str(tmp_path / "d")})
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert ".env is not UTF-8 text" in result.stderr


def test_serve_refuses_a_number_of_workers_that_is_a_typo(tmp_path: Path) -> None:
    result = modelway("serve", "--workers", "100000", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--workers: 1 to 256" in result.stderr
    assert "Traceback" not in result.stderr


def test_mock_says_when_it_cannot_listen(tmp_path: Path) -> None:
    with running_gateway() as url:
        port = url.rsplit(":", 1)[1]
        taken = modelway("mock", "--port", port, cwd=tmp_path)
    assert taken.returncode == 1 and "Traceback" not in taken.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in taken.stderr
    assert modelway("mock", "--port", "70000", cwd=tmp_path).returncode == 2


def test_db_upgrade_says_in_one_line_when_the_data_directory_cannot_be_made(
    tmp_path: Path,
) -> None:
    (tmp_path / "afile").write_text("")
    result = modelway(
        "db", "upgrade", cwd=tmp_path, env={"MODELWAY_DATA_DIR": str(tmp_path / "afile" / "sub")}
    )
    assert result.returncode == 1
    assert result.stderr.startswith("cannot use the data directory: ")
    assert "Traceback" not in result.stderr


#: ``modelway serve --port 0`` up to the moment it would start its workers.
_SERVE_NO_WORKERS = """
from modelway.gateway import workers
workers.serve = lambda host, port, count, grace: None
workers.main(["--port", "0"])
"""

_HOUSE_CONFIG = (
    "providers:\n"
    '  office-llm: {wire: openai, base_url: "http://10.0.0.9:8000/v1"}\n'
    "models:\n"
    "  - name: house\n"
    "    deployments: [{provider: office-llm, model: qwen-72b}]\n"
    "  - name: local\n"
    "    deployments: [{provider: mock, model: echo}]\n"
)


def test_config_check_and_serve_warn_of_each_alias_whose_model_has_no_price(
    tmp_path: Path,
) -> None:
    (tmp_path / "modelway.yaml").write_text(_HOUSE_CONFIG)
    env = {**os.environ, "MODELWAY_DATA_DIR": str(tmp_path / "data")}
    env.pop("MODELWAY_MASTER_KEY", None)
    env.pop("MODELWAY_CONFIG", None)
    checked = modelway("config", "check", cwd=tmp_path)
    served = subprocess.run(
        [sys.executable, "-c", _SERVE_NO_WORKERS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for result in (checked, served):
        assert result.returncode == 0, result.stderr
        assert "alias house: no price for office-llm/qwen-72b" in result.stderr
        assert "refused to keys and teams with a USD budget" in result.stderr
        assert "alias local" not in result.stderr  # the mock runs locally: free
    assert "office-llm/qwen-72b" in checked.stdout and "unpriced" in checked.stdout

    (tmp_path / "modelway.yaml").write_text(
        _HOUSE_CONFIG
        + "prices:\n  office-llm/qwen-72b: {input_per_million: 0, output_per_million: 0}\n"
    )
    priced = modelway("config", "check", cwd=tmp_path)
    assert priced.returncode == 0 and "no price" not in priced.stderr, priced.stderr
