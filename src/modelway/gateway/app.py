"""The gateway's ASGI application."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from modelway.config import Config, load_config, load_dotenv_file
from modelway.dialects.openai import encode_error_body
from modelway.engine import Engine
from modelway.errors import BadRequest, ModelwayError, NotFound
from modelway.gateway import anthropic_routes, health, ollama_routes, openai_routes
from modelway.gateway.request_id import RequestIdMiddleware
from modelway.gateway.state import GatewayState

log = logging.getLogger("modelway.gateway")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: ModelwayError
    if exc.status_code == 404:
        error = NotFound(f"no route {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = BadRequest(f"{request.url.path} does not take {request.method}")
    else:
        error = ModelwayError(exc.detail or "request refused")
    return Response(
        encode_error_body(error),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", extra={"path": request.url.path})
    error = ModelwayError("internal gateway error")
    return Response(encode_error_body(error), status_code=500, media_type="application/json")


def create_app(config: Config, environ: Mapping[str, str]) -> Starlette:
    """The gateway for a validated config and the environment it reads keys from."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = Engine(config, environ)
        app.state.gateway = GatewayState(config=config, engine=engine)
        try:
            yield
        finally:
            await engine.aclose()

    return Starlette(
        routes=[
            *openai_routes.ROUTES,
            *anthropic_routes.ROUTES,
            *ollama_routes.ROUTES,
            *health.ROUTES,
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
        lifespan=lifespan,
    )


def environment() -> dict[str, str]:
    """``.env`` overlaid by the process environment (the environment wins)."""
    return {**load_dotenv_file(".env"), **os.environ}


def app_from_environment() -> Starlette:
    """The app as worker processes build it: config path from ``MODELWAY_CONFIG``."""
    environ = environment()
    return create_app(load_config(None, environ), environ)
