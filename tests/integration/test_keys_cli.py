"""``modelway keys`` and ``modelway usage``, on the store directly and through a gateway."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelway.store import Store, UsageRecord, database_url
from tests.integration.gateway import running_gateway

MASTER = "mk-cli-test-master-key-0123456789"
CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello"}]}


def modelway(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWAY_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "modelway.cli", *args],
        cwd=data_dir.parent,
        env={**clean, "COLUMNS": "200", "MODELWAY_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def record_usage(data_dir: Path, *records: UsageRecord) -> None:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(data_dir)}))
    try:
        await store.usage.insert_many(records)
    finally:
        await store.aclose()


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "data"


@pytest.fixture(scope="module")
def gateway_url(data_dir: Path) -> Iterator[str]:
    """A gateway on the same store the CLI uses directly."""
    env = {"MODELWAY_MASTER_KEY": MASTER, "MODELWAY_DATA_DIR": str(data_dir)}
    with running_gateway(env) as url:
        yield url


def chat_status(url: str, key: str) -> int:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.post(
        f"{url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30
    ).status_code


# --- the store directly ------------------------------------------------------------------


def test_create_prints_the_key_once_with_a_warning(data_dir: Path) -> None:
    result = modelway("keys", "create", "--name", "laptop", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "mw-" in result.stdout and "laptop" in result.stdout
    assert "will not be shown again" in result.stderr


def test_create_list_and_revoke_on_the_store(data_dir: Path) -> None:
    created = json_of(
        modelway(
            "keys", "create", "--name", "batch", "--models", "gpt-*,mock/*",
            "--rpm", "30", "--tpm", "5000", "--budget-usd", "2.5", "--budget-tokens", "9000",
            "--period", "day", "--user", "ada", "--team", "ml", "--expires-in-days", "7",
            "--json", data_dir=data_dir,
        )
    )  # fmt: skip
    assert created["key"].startswith("mw-") and created["id"]
    assert created["models"] == ["gpt-*", "mock/*"]
    assert (created["rpm"], created["tpm"], created["budget_usd"]) == (30, 5000, 2.5)
    assert (created["budget_tokens"], created["budget_period"]) == (9000, "day")
    assert (created["owner_user"], created["owner_team"]) == ("ada", "ml")
    assert created["expires_at"] is not None

    listed = modelway("keys", "list", "--json", data_dir=data_dir)
    assert created["key"] not in listed.stdout and "argon2" not in listed.stdout
    assert created["id"] in {key["id"] for key in json_of(listed)}
    table = modelway("keys", "list", data_dir=data_dir)
    assert created["id"] in table.stdout and "batch" in table.stdout
    assert created["key"] not in table.stdout

    revoked = modelway("keys", "revoke", created["id"], data_dir=data_dir)
    assert revoked.returncode == 0, revoked.stderr
    statuses = {
        key["id"]: key["status"]
        for key in json_of(modelway("keys", "list", "--json", data_dir=data_dir))
    }
    assert statuses[created["id"]] == "revoked"


def test_revoking_an_unknown_key_is_one_line_on_stderr(data_dir: Path) -> None:
    result = modelway("keys", "revoke", "no-such-id", data_dir=data_dir)
    assert_one_line_error(result, "no-such-id")


def test_a_key_pasted_where_its_id_belongs_is_not_said_back(data_dir: Path) -> None:
    created = json_of(modelway("keys", "create", "--name", "pasted", "--json", data_dir=data_dir))
    result = modelway("keys", "revoke", created["key"], data_dir=data_dir)
    assert_one_line_error(result, "looks like a key itself")
    assert created["key"] not in result.stderr and created["key"][:12] not in result.stderr


def test_names_that_look_like_markup_are_shown_as_typed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # its own store: the usage it records is its own
    data_dir.mkdir()
    for name in ("[/]", "[red]x[/red]"):
        created = modelway("keys", "create", "--name", name, "--team", "[red]", data_dir=data_dir)
        assert created.returncode == 0, created.stderr
    table = modelway("keys", "list", data_dir=data_dir)
    assert table.returncode == 0 and "Traceback" not in table.stderr, table.stderr
    assert "[/]" in table.stdout and "[red]x[/red]" in table.stdout
    asyncio.run(record_usage(data_dir, UsageRecord(request_id="m", time=time.time(), model="[/]")))
    usage = modelway("usage", "--by", "model", data_dir=data_dir)
    assert usage.returncode == 0 and "[/]" in usage.stdout, usage.stderr


def test_usage_answers_in_the_admin_api_shape(data_dir: Path) -> None:
    asyncio.run(record_usage(data_dir, UsageRecord(request_id="r", time=time.time(), model="m-9")))
    summary = json_of(
        modelway("usage", "--by", "model", "--since", "2024-01-01", "--json", data_dir=data_dir)
    )
    assert summary["by"] == "model" and summary["since"] == "2024-01-01"
    assert {"group": "m-9", "requests": 1}.items() <= summary["rows"][0].items()
    table = modelway("usage", "--by", "model", data_dir=data_dir)
    assert table.returncode == 0, table.stderr
    assert "m-9" in table.stdout


def test_usage_by_provider_alias_and_team(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # its own store: the usage it records is its own
    data_dir.mkdir()
    now = time.time()
    asyncio.run(
        record_usage(
            data_dir,
            UsageRecord(request_id="a", time=now, alias="fast", provider="groq", model="llama"),
            UsageRecord(
                request_id="b", time=now, team="ml", alias="fast", provider="ollama", model="llama"
            ),
        )
    )
    for by, shown in {
        "provider": ["groq", "ollama"],
        "alias": ["fast"],
        "team": ["ml", "(no team)"],
    }.items():
        table = modelway("usage", "--by", by, data_dir=data_dir)
        assert table.returncode == 0, table.stderr
        assert all(name in table.stdout for name in shown), table.stdout


def test_money_is_shown_in_dollars_and_cents_and_small_costs_are_not_zero(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name, budget in (("million", "1000000"), ("cents", "12345.67")):
        made = modelway("keys", "create", "--name", name, "--budget-usd", budget, data_dir=data_dir)
        assert made.returncode == 0, made.stderr
    listed = modelway("keys", "list", data_dir=data_dir)
    assert "$1,000,000.00 / month" in listed.stdout and "$12,345.67 / month" in listed.stdout
    [key_id] = [k["id"] for k in json_of(modelway("keys", "list", "--json", data_dir=data_dir))
                if k["name"] == "cents"]  # fmt: skip
    # Three calls to a cheap model cost a few thousandths of a cent: not "0.0000".
    calls = [
        UsageRecord(request_id=f"c{n}", time=time.time(), key_id=key_id, model="gpt-4o-mini",
                    prompt_tokens=18, completion_tokens=1, cost_usd=0.00001095)
        for n in range(3)
    ]  # fmt: skip
    asyncio.run(record_usage(data_dir, *calls))
    usage = modelway("usage", "--key-id", key_id, data_dir=data_dir)
    assert usage.returncode == 0, usage.stderr
    assert "$0.000033" in usage.stdout


def _first_column(table: str) -> list[str]:
    """The text of a Rich table's first column, each row's folded lines joined (the
    spaces it folded at left out)."""
    cells: list[str] = []
    for line in table.splitlines():
        if line.startswith("│"):
            text = line.split("│")[1].strip()
            if text and line.split("│")[2].strip():  # a row's first line has its figures
                cells.append(text)
            elif text and cells:
                cells[-1] += text
    return cells


def test_the_usage_table_keeps_days_ids_and_figures_whole_at_80_columns(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    made = json_of(modelway("keys", "create", "--name", "narrow", "--json", data_dir=data_dir))
    record = UsageRecord(request_id="n", time=time.time(), key_id=made["id"], model="gpt-4o-mini",
                         prompt_tokens=1_234_567, completion_tokens=89, cost_usd=12.5)  # fmt: skip
    asyncio.run(record_usage(data_dir, record))
    by_key = modelway("usage", data_dir=data_dir, COLUMNS="80")
    assert by_key.returncode == 0, by_key.stderr
    assert max(len(line) for line in by_key.stdout.splitlines()) <= 80
    [cell] = _first_column(by_key.stdout)
    assert cell == f"narrow({made['id']})"  # every character of the id, to copy
    assert "1,234,567" in by_key.stdout and "$12.50" in by_key.stdout and "…" not in by_key.stdout
    by_day = modelway("usage", "--by", "day", data_dir=data_dir, COLUMNS="80")
    assert time.strftime("%Y-%m-%d", time.gmtime(record.time)) in by_day.stdout


@pytest.mark.parametrize("command", [["keys", "list"], ["usage"], ["chat"]])
@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("127.0.0.1:9", "starts with http:// or https://"),
        ("http://bob:s3cr3t-pw@127.0.0.1:9", "no user name or password"),
        ("http://127.0.0.1:99999", "the port"),
    ],
)
def test_a_gateway_url_that_cannot_be_one_is_refused_without_being_said_back(
    data_dir: Path, command: list[str], url: str, said: str
) -> None:
    result = modelway(*command, "--url", url, data_dir=data_dir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert said in " ".join(result.stderr.replace("│", " ").split())
    assert "s3cr3t" not in result.stderr + result.stdout


def test_no_usage_for_a_key_id_names_the_id(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = modelway("usage", "--key-id", "nope", "--since", "2026-01-01", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    first, hint = result.stdout.strip().splitlines()
    assert first == "no usage recorded for key id nope since 2026-01-01 yet"
    # A key id's start (as the docs once showed it) finds nothing: the hint says why.
    assert hint.startswith("(--key-id takes a key's whole id, 32 characters")
    whole = modelway("usage", "--key-id", "3f0c5d2e9a7b4c1d8e6f0a2b3c4d5e6f", data_dir=data_dir)
    assert (
        whole.stdout.strip() == "no usage recorded for key id 3f0c5d2e9a7b4c1d8e6f0a2b3c4d5e6f yet"
    )


def test_usage_with_a_bad_date_is_one_line_on_stderr(data_dir: Path) -> None:
    assert_one_line_error(modelway("usage", "--since", "last week", data_dir=data_dir), "since")


# --- a running gateway (--url) -----------------------------------------------------------


def test_keys_created_on_the_store_work_on_the_gateway(gateway_url: str, data_dir: Path) -> None:
    created = json_of(modelway("keys", "create", "--name", "direct", "--json", data_dir=data_dir))
    assert chat_status(gateway_url, created["key"]) == 200


def test_create_list_and_revoke_through_the_gateway(gateway_url: str, data_dir: Path) -> None:
    remote = ("--url", gateway_url)
    created = json_of(
        modelway("keys", "create", "--name", "remote", "--models", "mock/*", "--json", *remote,
                 data_dir=data_dir, MODELWAY_MASTER_KEY=MASTER)
    )  # fmt: skip
    assert chat_status(gateway_url, created["key"]) == 200

    listed = json_of(
        modelway("keys", "list", "--json", *remote, "--key", MASTER, data_dir=data_dir)
    )
    assert created["id"] in {key["id"] for key in listed}

    revoked = modelway("keys", "revoke", created["id"], *remote, "--key", MASTER, data_dir=data_dir)
    assert revoked.returncode == 0, revoked.stderr
    assert chat_status(gateway_url, created["key"]) == 401

    usage = json_of(
        modelway("usage", "--by", "day", "--json", *remote, "--key", MASTER, data_dir=data_dir)
    )
    assert usage["by"] == "day" and isinstance(usage["rows"], list)


def test_a_wrong_master_key_is_one_line_on_stderr(gateway_url: str, data_dir: Path) -> None:
    wrong = "mk-wrong-master-key-0123456789"
    result = modelway("keys", "list", "--url", gateway_url, "--key", wrong, data_dir=data_dir)
    assert_one_line_error(result, "refused")
    assert wrong not in result.stderr


def test_an_unknown_key_through_the_gateway_is_one_line(gateway_url: str, data_dir: Path) -> None:
    result = modelway(
        "keys", "revoke", "no-such-id", "--url", gateway_url, "--key", MASTER, data_dir=data_dir
    )
    assert_one_line_error(result, "no-such-id", "404")


def test_an_unreachable_gateway_is_one_line_on_stderr(data_dir: Path) -> None:
    result = modelway(
        "keys", "list", "--url", "http://127.0.0.1:9", "--key", MASTER, data_dir=data_dir
    )
    assert_one_line_error(result, "cannot reach the gateway")


def test_the_store_named_in_the_config_is_the_one_keys_and_db_upgrade_use(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    other = tmp_path / "elsewhere.db"
    (tmp_path / "modelway.yaml").write_text(f'store: {{url: "sqlite:///{other}"}}\n')
    upgraded = modelway("db", "upgrade", data_dir=data_dir)
    assert upgraded.returncode == 0, upgraded.stderr
    assert str(other) in upgraded.stdout
    created = json_of(
        modelway("keys", "create", "--name", "configured", "--json", data_dir=data_dir)
    )
    assert created["name"] == "configured"
    listed = json_of(modelway("keys", "list", "--json", MODELWAY_CONFIG="", data_dir=data_dir))
    assert [key["name"] for key in listed] == ["configured"]
    assert not (data_dir / "modelway.db").exists()  # nothing went to the data directory
    (tmp_path / "modelway.yaml").write_text("store: {url: 5}\n")
    broken = modelway("keys", "list", data_dir=data_dir)
    assert broken.returncode != 0 and "store.url" in broken.stderr
