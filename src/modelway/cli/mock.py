"""``modelway mock``: run the mock provider as a local upstream on a port."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import typer

from modelway.cli.app import app

if TYPE_CHECKING:
    import uvicorn


@app.command("mock")
def mock(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(9000, min=0, max=65535, help="Port to bind; 0 picks a free one."),
    latency_ms: float = typer.Option(0.0, min=0, help="Delay before the first token."),
    tokens_per_second: float = typer.Option(
        0.0, min=0, help="Stream pacing between chunks (0 = no delay)."
    ),
    fail_rate: float = typer.Option(
        0.0, min=0, max=1, help="Probability that a request fails with 500."
    ),
    fault: list[str] = typer.Option(  # noqa: B008 - Typer declares options as defaults
        [],
        "--fault",
        help="A fault for every request: error:STATUS, slow-head:MS, slow-first-token:MS, "
        "stall:MS, truncate, corrupt or drop. Repeatable.",
    ),
    seed: int | None = typer.Option(None, help="Seed for --fail-rate, for reproducible runs."),
) -> None:
    """A local upstream speaking the OpenAI, Azure, Anthropic, Ollama and Gemini formats."""
    import uvicorn

    from modelway.listening import bind_problem
    from modelway.mock.server import MockSettings, create_mock_app

    problem = bind_problem(host, port)
    if problem is not None:
        typer.echo(f"cannot listen on {host}:{port}: {problem}", err=True)
        raise typer.Exit(1)

    settings = MockSettings(
        latency_ms=latency_ms,
        tokens_per_second=tokens_per_second,
        fail_rate=fail_rate,
        faults=tuple(fault),
        seed=seed,
    )
    try:
        mock_app = create_mock_app(settings)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--fault") from None
    config = uvicorn.Config(
        mock_app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        # Hosted APIs keep an idle connection a minute or more. uvicorn's default of 5 s
        # races every pooling client that waits about that long between two requests:
        # the request is written as the mock closes the socket ("Can not write request
        # body"), which failed a stream of the benchmark's reference relay in CI.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # A drop fault raises on purpose; uvicorn would log each one as a crash.
    logging.getLogger("uvicorn.error").addFilter(_IgnoreDroppedConnections())
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serve(server, host))


async def _serve(server: uvicorn.Server, host: str) -> None:
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # it failed to start; let the error out
            return
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"modelway mock listening on http://{shown_host}:{port}", flush=True)
    await serving


class _IgnoreDroppedConnections(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        from modelway.mock.faults import ConnectionDropped

        self._dropped = ConnectionDropped

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], self._dropped))
