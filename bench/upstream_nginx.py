"""The static upstream: Debian's nginx answering a fixed OpenAI chat.completion body."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from bench.processes import Server, free_port

UPSTREAM_DIR = Path(__file__).parent / "upstream"


def nginx_binary() -> str:
    """The nginx executable (Debian installs it in /usr/sbin, often off a user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed: run bench/run.sh, which installs it")
    return found


def write_nginx_config(prefix: Path, port: int) -> Path:
    """Render the config template into ``prefix`` (its own pid, log and temp paths)."""
    template = (UPSTREAM_DIR / "nginx.conf.template").read_text()
    body = (UPSTREAM_DIR / "chat_completion.json").read_text().strip()
    assert "'" not in body, "the body is inside a single-quoted nginx string"
    config = (
        template.replace("@PREFIX@", str(prefix))
        .replace("@PORT@", str(port))
        .replace("@BODY@", body)
    )
    prefix.mkdir(parents=True, exist_ok=True)
    path = prefix / "nginx.conf"
    path.write_text(config)
    return path


def nginx_server(run_dir: Path, name: str = "nginx", launcher: Sequence[str] = ()) -> Server:
    """An nginx server (not yet started) on a free port with its prefix under ``run_dir``;
    ``launcher`` goes before its command line (e.g. ``taskset -c 0``)."""
    port = free_port()
    prefix = run_dir / name
    config = write_nginx_config(prefix, port)
    return Server(
        name=name,
        command=[
            *launcher,
            nginx_binary(),
            "-p",
            str(prefix),
            "-c",
            str(config),
            "-e",
            str(prefix / "error.log"),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/",
        log_path=run_dir / "logs" / f"{name}.log",
    )
