"""How each target of the suite is started: the mock, relay variants, modelway, LiteLLM.

Every server gets a free loopback port, one worker, a log file under the run directory
and a readiness URL that ``Server.start`` polls.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.processes import Server, free_port

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
LITELLM_BIN = BENCH_DIR / ".venv-litellm" / "bin"

#: Provider settings that must not leak from the caller's shell into a measured gateway.
_PROVIDER_SUFFIXES = ("_API_KEY", "_BASE_URL")
#: Nor may the gateway's own settings (a master key would close the open-mode target).
_GATEWAY_PREFIX = "MODELWAY_"
_GATEWAY_SETTINGS = ("DATABASE_URL", "REDIS_URL")


@dataclass(frozen=True)
class RelayVariant:
    """One server/client pairing of the reference relay."""

    server: str
    client: str

    @property
    def name(self) -> str:
        return f"relay {self.server} + {self.client}"


#: The fastest pair in the suite's own comparison (docs/benchmarks.md): every ratio's base.
#: aiohttp-lean is aiohttp's connector and parser without ``ClientSession``
#: (``bench.upstream_clients``: about half the session's CPU per request).
REFERENCE_RELAY = RelayVariant("granian-rsgi", "aiohttp-lean")
RELAY_VARIANTS = (
    REFERENCE_RELAY,
    RelayVariant("granian-rsgi", "aiohttp"),
    RelayVariant("granian-asgi", "aiohttp"),
    RelayVariant("uvicorn", "aiohttp"),
    RelayVariant("granian-asgi", "httpx"),
    RelayVariant("uvicorn", "httpx"),
)


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without provider or gateway settings, plus ``extra``."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith(_PROVIDER_SUFFIXES)
        and not name.startswith(_GATEWAY_PREFIX)
        and name not in _GATEWAY_SETTINGS
    }
    return {**kept, **extra}


def mock_server(run_dir: Path, tokens_per_second: float) -> Server:
    port = free_port()
    return Server(
        name="modelway mock",
        command=[
            str(VENV_BIN / "modelway"),
            "mock",
            *("--port", str(port), "--tokens-per-second", f"{tokens_per_second:g}"),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/v1/models",
        log_path=run_dir / "logs" / "mock.log",
    )


def relay_server(
    run_dir: Path, variant: RelayVariant, upstream_base: str, slug: str = "", workers: int = 1
) -> Server:
    """The relay ``variant`` in front of ``upstream_base``, with ``workers`` worker processes."""
    port = free_port()
    slug = f"relay-{variant.server}-{variant.client}{'-' + slug if slug else ''}"
    return Server(
        name=variant.name,
        command=[
            sys.executable,
            *("-m", "bench.relay", "--server", variant.server, "--client", variant.client),
            *("--port", str(port), "--upstream", upstream_base, "--workers", str(workers)),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/health",
        log_path=run_dir / "logs" / f"{slug}.log",
        cwd=REPO_ROOT,
    )


def modelway_data_dir(run_dir: Path, name: str) -> Path:
    """The store directory of the gateway ``name`` (``MODELWAY_DATA_DIR``)."""
    return run_dir / name / "data"


def modelway_server(
    run_dir: Path, name: str, providers: dict[str, str], workers: int = 1
) -> Server:
    """``modelway serve --workers N`` (1 unless told) with ``providers`` (e.g.
    OPENAI_BASE_URL) as its only setup.

    It runs in an empty directory so no ``modelway.yaml`` or ``.env`` is picked up; its
    store is a SQLite file in ``modelway_data_dir(run_dir, name)``, kept across restarts.
    """
    port = free_port()
    home = run_dir / name
    home.mkdir(parents=True, exist_ok=True)
    providers = {"MODELWAY_DATA_DIR": str(modelway_data_dir(run_dir, name)), **providers}
    return Server(
        name=name,
        command=[
            str(VENV_BIN / "modelway"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/health/ready",
        log_path=run_dir / "logs" / f"{name}.log",
        env=clean_environment(providers),
        cwd=home,
    )


def litellm_installed() -> bool:
    return (LITELLM_BIN / "litellm").exists()


def litellm_server(
    run_dir: Path, static_base: str, stream_base: str, name: str, master_key: str
) -> Server:
    """LiteLLM proxy from its own venv, started with its CLI and a config naming both upstreams.

    LiteLLM refuses to start with no master key, so it gets the key every client sends.
    """
    port = free_port()
    template = (BENCH_DIR / "litellm" / "config.yaml.template").read_text()
    config = run_dir / f"{name}.yaml"
    config.write_text(
        template.replace("@STATIC_BASE@", static_base).replace("@STREAM_BASE@", stream_base)
    )
    # No internet here: read the shipped model cost map instead of timing out fetching it.
    env = clean_environment(
        {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": master_key}
    )
    return Server(
        name=name,
        command=[
            str(LITELLM_BIN / "litellm"),
            *("--config", str(config), "--host", "127.0.0.1", "--port", str(port)),
            *("--num_workers", "1"),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/health/liveliness",
        log_path=run_dir / "logs" / f"{name}.log",
        env=env,
        cwd=run_dir,
    )
