"""The replica topology on local processes: nginx in front of three ``modelway serve``
replicas on one PostgreSQL and one Redis, with ``modelway mock`` as the upstream.

Used by ``bench/chaos.py`` (faults under load) and ``bench/soak.py`` (a long steady run).
PostgreSQL and Redis are the test suite's own throwaway servers (``tests/postgres.py``,
``tests/redis_server.py``), which can be stopped and started again on their ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.postgres import PostgresServer, running_postgres
from tests.redis_server import RedisServer, restartable_redis

from bench.processes import Server, free_port
from bench.servers import VENV_BIN, clean_environment, mock_server
from bench.upstream_nginx import nginx_binary
from modelway.store import Store
from modelway.store.location import database_url

REPLICAS = 3
MASTER_KEY = "mw-chaos-master-key-not-a-secret-0123456789"
#: Seconds a replica drains open requests after SIGTERM (``server.shutdown_grace``).
SHUTDOWN_GRACE = 10
#: The key whose limit the fault run checks; its RPM is passed to ``Topology``.
LIMITED = "limited"

_NGINX_CONFIG = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    # Round robin; a replica that refuses a connection is skipped for a second. No
    # keep-alive to the replicas: a request never goes out on a connection a stopping
    # replica is closing (nginx would not resend a POST it already wrote).
    upstream modelway {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 10m;
        location / {{
            proxy_pass http://modelway;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            # Connect errors and refused connections go to the next replica; a request
            # a replica already received is never sent twice.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries {replicas};
            proxy_connect_timeout 1s;
            proxy_buffering off;
            proxy_read_timeout 120s;
            # Which replica answered (the last one tried), for the fault run's counts.
            add_header X-Chaos-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Replica:
    """One ``modelway serve`` process (one worker) on a fixed port."""

    name: str
    server: Server
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    def sigterm_restart(self) -> None:
        """Stop with SIGTERM (it drains and flushes), then start again on its port."""
        self.server.stop()
        self.server.start()

    def kill(self) -> None:
        """SIGKILL the replica and its workers; return once it is gone."""
        process = self.server.process
        assert process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)
        process.wait(timeout=10)

    @property
    def log(self) -> Path:
        return self.server.log_path


@dataclass
class Topology:
    """What ``running_topology`` started: the load balancer's URL, the keys and the parts."""

    run_dir: Path
    postgres: PostgresServer
    redis: RedisServer
    mock: Server
    replicas: list[Replica]
    nginx: Server
    #: Key name -> (key id, plaintext key).
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.nginx.url


@contextlib.contextmanager
def running_topology(
    run_dir: Path,
    *,
    limited_rpm: int,
    tokens_per_second: float = 400.0,
) -> Iterator[Topology]:
    """Start everything (PostgreSQL, Redis with snapshots, the mock, three replicas, nginx);
    stop everything at the end, whatever happens."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (
        running_postgres() as postgres,
        restartable_redis(persist=True) as redis,
        contextlib.ExitStack() as stack,
    ):
        keys = asyncio.run(_create_keys(postgres.url, limited_rpm))
        mock = stack.enter_context(mock_server(run_dir, tokens_per_second))
        config = run_dir / "modelway.yaml"
        config.write_text(
            f"redis: {{replicas: {REPLICAS}}}\n"
            f"server: {{shutdown_grace: {SHUTDOWN_GRACE}}}\n"
            "logging: {requests: false}\n"
        )
        replicas = [
            _replica(run_dir, f"replica-{n}", config, postgres, redis, mock)
            for n in range(1, REPLICAS + 1)
        ]
        for replica in replicas:
            stack.callback(replica.server.stop)
            replica.server.start()
        nginx = stack.enter_context(_nginx(run_dir, replicas))
        yield Topology(run_dir, postgres, redis, mock, replicas, nginx, keys)


async def _create_keys(url: str, limited_rpm: int) -> dict[str, tuple[str, str]]:
    """Migrate the database and create the run's keys: two unlimited, one limited."""
    store = await Store.open(database_url({"DATABASE_URL": url}))
    try:
        keys = {}
        for name, rpm in (("team-a", None), ("team-b", None), (LIMITED, limited_rpm)):
            record, plaintext = await store.keys.create(name, rpm=rpm)
            keys[name] = (record.id, plaintext)
        return keys
    finally:
        await store.aclose()


def _replica(
    run_dir: Path,
    name: str,
    config: Path,
    postgres: PostgresServer,
    redis: RedisServer,
    mock: Server,
) -> Replica:
    port = free_port()
    home = run_dir / name
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = clean_environment(
        {
            "MODELWAY_DATA_DIR": str(data),
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "MODELWAY_MASTER_KEY": MASTER_KEY,
            "OPENAI_BASE_URL": f"{mock.url}/v1",
            "OPENAI_API_KEY": "sk-mock",
        }
    )
    server = Server(
        name=name,
        command=[
            str(VENV_BIN / "modelway"),
            *("serve", "--config", str(config), "--port", str(port), "--workers", "1"),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/health/ready",
        log_path=run_dir / "logs" / f"{name}.log",
        env=env,
        cwd=home,
    )
    return Replica(name, server, data)


def _nginx(run_dir: Path, replicas: list[Replica]) -> Server:
    prefix = run_dir / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(
        f"        server 127.0.0.1:{replica.server.port} max_fails=1 fail_timeout=1s;"
        for replica in replicas
    )
    config = prefix / "nginx.conf"
    config.write_text(
        _NGINX_CONFIG.format(prefix=prefix, port=port, servers=servers, replicas=len(replicas))
    )
    return Server(
        name="nginx",
        command=[
            nginx_binary(),
            *("-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/health/live",
        log_path=run_dir / "logs" / "nginx.log",
    )
