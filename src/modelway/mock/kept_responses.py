"""The Responses API answers the mock keeps, as OpenAI keeps them: read back by id.

Unless a body says ``store: false``, the mock keeps each answer of ``POST /v1/responses``
it gave (the last ``MAX_KEPT``, in memory): ``GET /v1/responses/{id}`` returns it (with
``?stream=true``, as a stream of its ``response.completed`` event), ``GET …/input_items``
lists what it was made from, ``DELETE`` forgets it, and a later request's
``previous_response_id`` continues it (its conversation before the new input, after the
new ``instructions``; an unknown id is a 404 ``previous_response_not_found``). Any other
id is a 404.

``background: true`` (whole answers; it needs ``store``) is answered at once with the
response ``queued``; it is ``in_progress`` halfway through the answer's delay (the mock's
latency and a ``slow-first-token`` or ``stall`` fault) and ``completed`` at its end.
``POST …/cancel`` stops one still running (``cancelled``; cancelling it again answers the
same) and, as OpenAI, is a 400 for any other. So the gateway's relay of these calls can
be tried offline, as the chat calls are.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, NamedTuple

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelway.dialects.responses_items import DEFAULT_PAGE, MAX_PAGE, input_items, items_page
from modelway.errors import BadRequest, ModelwayError, NotFound
from modelway.types import ChatRequest, Message

#: Answers kept, at most; the oldest goes first.
MAX_KEPT = 1_000


class _Kept(NamedTuple):
    response: dict[str, Any]
    items: list[dict[str, Any]]
    #: What a later ``previous_response_id`` continues: the inputs, then the answer.
    conversation: list[Message]


class KeptResponses:
    """The mock's kept answers, and the routes that read them."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        #: Background responses still running, by id.
        self._running: dict[str, asyncio.Task[None]] = {}

    def continue_chat(self, body: Any, chat: ChatRequest) -> None:
        """Put the conversation ``body``'s ``previous_response_id`` names before its input
        (after its ``instructions``: earlier ones are not carried over), as OpenAI does;
        ``NotFound`` for an id the mock does not keep."""
        previous = body.get("previous_response_id") if isinstance(body, dict) else None
        if previous is None:
            return
        kept = self._kept.get(previous) if isinstance(previous, str) else None
        if kept is None:
            raise NotFound(
                f"Previous response with id '{previous}' not found.",
                code="previous_response_not_found",
            )
        lead = _lead(body)
        chat.messages = [*chat.messages[:lead], *kept.conversation, *chat.messages[lead:]]

    def described(self, body: Any) -> dict[str, Any]:
        """What every response object for ``body`` says of its keeping and its chain."""
        return _described({}, body)

    def keep_answer(self, body: Any, chat: ChatRequest, answer: bytes, said: Message) -> bytes:
        """Keep a whole answer (``answer``, the response object, which ``said``) to ``body``;
        the answer as returned, naming what it continued."""
        response = _described(orjson.loads(answer), body)
        if _stores(body):
            self._keep(response, chat, body, said)
        return orjson.dumps(response)

    def keep_stream(self, body: Any, chat: ChatRequest, chunks: list[bytes], said: Message) -> None:
        """Keep the response a stream's ``response.completed`` event holds (none: nothing)."""
        if not _stores(body):
            return
        for chunk in chunks:
            for line in chunk.split(b"\n"):
                if line.startswith(b"data: {") and b'"response.completed"' in line:
                    event = orjson.loads(line[6:])
                    if event.get("type") == "response.completed":
                        self._keep(_described(event["response"], body), chat, body, said)

    def background(
        self, body: Any, chat: ChatRequest, answer: bytes, said: Message, delay: float
    ) -> Response:
        """Answer a ``background`` request at once, ``queued``; ``answer`` after ``delay``."""
        if not _stores(body):
            return _error(BadRequest("background mode requires store: true"))
        if chat.stream:
            return _error(BadRequest("background: the mock does not stream background responses"))
        final = {**_described(orjson.loads(answer), body), "background": True}
        queued = {**final, "status": "queued", "output": [], "usage": None}
        self._keep(queued, chat, body, said)
        response_id = str(final["id"])
        self._running[response_id] = asyncio.create_task(self._run(response_id, final, delay))
        return _json(queued)

    async def _run(self, response_id: str, final: dict[str, Any], delay: float) -> None:
        try:
            await asyncio.sleep(delay / 2)
            self._update(response_id, status="in_progress")
            await asyncio.sleep(delay / 2)
            kept = self._kept.get(response_id)
            if kept is not None:
                self._kept[response_id] = kept._replace(response=final)
        finally:
            self._running.pop(response_id, None)

    def _update(self, response_id: str, **fields: Any) -> dict[str, Any] | None:
        kept = self._kept.get(response_id)
        if kept is None:
            return None
        response = {**kept.response, **fields}
        self._kept[response_id] = kept._replace(response=response)
        return response

    def _keep(self, response: dict[str, Any], chat: ChatRequest, body: Any, said: Message) -> None:
        response_id = str(response.get("id"))
        inputs = chat.messages[_lead(body) :]
        items = input_items(inputs, response_id)
        self._kept[response_id] = _Kept(response, items, [*inputs, said])
        while len(self._kept) > MAX_KEPT:
            gone, _ = self._kept.popitem(last=False)
            self._stop(gone)

    async def aclose(self) -> None:
        """Stop every background response still running."""
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _stop(self, response_id: str) -> bool:
        """Stop a background response still running; whether there was one."""
        running = self._running.pop(response_id, None)
        if running is None:
            return False
        running.cancel()
        return True

    # --- routes ----------------------------------------------------------------------

    async def get(self, request: Request) -> Response:
        kept = self._found(request)
        if isinstance(kept, Response):
            return kept
        if request.query_params.get("stream") == "true":
            # A background response still running is followed to its end, as OpenAI does.
            running = self._running.get(request.path_params["response_id"])
            if running is not None:
                await asyncio.wait({running})
            kept = self._found(request)
            if isinstance(kept, Response):
                return kept
            response = kept.response
            kind = (
                "response.completed" if response.get("status") == "completed" else "response.failed"
            )
            event = {"type": kind, "sequence_number": 0, "response": response}
            data = f"event: {kind}\ndata: ".encode() + orjson.dumps(event) + b"\n\n"
            return Response(data, media_type="text/event-stream")
        return _json(kept.response)

    async def input_items(self, request: Request) -> Response:
        kept = self._found(request)
        if isinstance(kept, Response):
            return kept
        query = request.query_params
        raw = query.get("limit", str(DEFAULT_PAGE))
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE):
            return _error(BadRequest(f"limit: an integer from 1 to {MAX_PAGE}"))
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return _error(BadRequest("order: asc or desc"))
        try:
            page = items_page(
                kept.items, limit=int(raw), descending=order == "desc", after=query.get("after")
            )
        except ValueError:
            return _error(BadRequest("after: no such item in this response"))
        return _json(page)

    async def delete(self, request: Request) -> Response:
        kept = self._found(request)
        if isinstance(kept, Response):
            return kept
        response_id = request.path_params["response_id"]
        self._stop(response_id)
        del self._kept[response_id]
        return _json({"id": response_id, "object": "response", "deleted": True})

    async def cancel(self, request: Request) -> Response:
        kept = self._found(request)
        if isinstance(kept, Response):
            return kept
        response_id = request.path_params["response_id"]
        if self._stop(response_id):
            return _json(self._update(response_id, status="cancelled"))
        if kept.response.get("status") == "cancelled":
            return _json(kept.response)
        if not kept.response.get("background"):
            return _error(
                BadRequest("Only responses created with background=true can be cancelled.")
            )
        return _error(BadRequest("Cannot cancel a completed response."))

    def _found(self, request: Request) -> _Kept | Response:
        response_id = request.path_params["response_id"]
        kept = self._kept.get(response_id)
        if kept is None:
            return _error(NotFound(f"No response found with id '{response_id}'."))
        return kept


def _lead(body: Any) -> int:
    """How many of a decoded request's messages are its ``instructions`` (0 or 1)."""
    instructions = body.get("instructions") if isinstance(body, dict) else None
    return 1 if isinstance(instructions, str) and instructions else 0


def _described(response: dict[str, Any], body: Any) -> dict[str, Any]:
    """The response object, saying whether it was kept and what it continued."""
    previous = body.get("previous_response_id") if isinstance(body, dict) else None
    return {**response, "store": _stores(body), "previous_response_id": previous}


def _stores(body: Any) -> bool:
    return not (isinstance(body, dict) and body.get("store") is False)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _error(error: ModelwayError) -> Response:
    body = {"error": {"message": error.message, "type": "invalid_request_error", "code": None}}
    return Response(orjson.dumps(body), error.status, media_type="application/json")
