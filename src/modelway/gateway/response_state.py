"""Response state for translated Responses API calls: ``store`` and ``previous_response_id``.

A Responses call relayed to OpenAI leaves state to OpenAI. A translated one (any other
provider) keeps it here, in the store's ``stored_responses`` (``store.responses``):

- **Ids.** Every translated answer gets a gateway id, ``resp_mw`` + 32 hex digits, in
  place of the one derived from the upstream's answer: unique whatever the upstream
  sends, and recognisable — OpenAI's ids are ``resp_`` + hex, so a ``resp_mw`` id is
  never one of its own. A relayable call (``call.relayable()``) whose
  ``previous_response_id`` is such an id is translated instead of relayed, so a chain
  begun on another provider continues (``names_stored_response``).
- **Saving.** Unless the body says ``store: false`` (OpenAI's default is true) and while
  ``responses.store_days`` is above 0, the answer is saved under that id: the response
  object as the caller got it and the canonical conversation — this turn's input after
  what its own ``previous_response_id`` carried, then the answer. ``instructions`` are
  not part of it (OpenAI does not carry them over either). A whole answer is saved
  before it is returned; a stream is saved before the chunk holding its final
  ``response.completed`` (or ``response.incomplete``) event is sent, so a client may
  chain as soon as it has seen that event. A stream that fails or is cancelled saves
  nothing. A failed save is logged and the answer still goes out.
- **Continuing.** ``previous_response_id`` loads the stored conversation within the
  caller's scope (``owner_of``: its key's team, else its key; the master key and an open
  gateway each have one scope of their own); an unknown, expired or other scope's id is
  a 404. The conversation goes between the new request's ``instructions`` and its input.
- **Bounds.** A chained request's stored conversation plus its own body may not pass
  ``server.max_body_bytes`` (400); a conversation larger than that is not kept (its
  response can still be read, not continued).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import orjson

from modelway.calls import Caller
from modelway.dialects.base import StreamEncoder
from modelway.dialects.responses_items import DEFAULT_PAGE, MAX_PAGE, input_items, items_page
from modelway.dialects.responses_objects import response_object
from modelway.dialects.responses_stream import ResponsesStreamEncoder
from modelway.errors import BadRequest, ModelwayError, NotFound
from modelway.gateway.state import GatewayState
from modelway.store.responses import (
    ResponseRepository,
    StoredResponse,
    decode_conversation,
    decode_kept,
    encode_conversation,
)
from modelway.types import (
    ChatRequest,
    ChatResponse,
    Message,
    MessageStart,
    ResponseBuilder,
    StreamEvent,
)

log = logging.getLogger("modelway.gateway")

#: How every gateway response id begins (``resp_`` + hex is OpenAI's own form).
ID_PREFIX = "resp_mw"
_GATEWAY_ID = re.compile(r"resp_mw[0-9a-f]{32}")
_DAY = 86400.0
#: The terminal events of a Responses stream that leave a response to keep.
_FINAL_EVENTS = (b"event: response.completed\n", b"event: response.incomplete\n")
#: The most characters of a caller's id an error message repeats.
_SHOWN_ID = 80


def new_response_id() -> str:
    """A fresh gateway response id."""
    return ID_PREFIX + uuid.uuid4().hex


def is_gateway_id(response_id: str) -> bool:
    """Whether ``response_id`` has the form of the gateway's own ids (else a provider's)."""
    return response_id.startswith(ID_PREFIX)


def names_stored_response(body: dict[str, Any]) -> bool:
    """Whether ``body``'s ``previous_response_id`` has the gateway's form (translate it)."""
    previous = body.get("previous_response_id")
    return isinstance(previous, str) and previous.startswith(ID_PREFIX)


def owner_of(caller: Caller) -> str:
    """The scope a caller's stored responses belong to."""
    if caller.team is not None:
        return f"team:{caller.team}"
    if caller.key_id is not None:
        return f"key:{caller.key_id}"
    return "master" if caller.is_master else "open"


class ResponseTurn:
    """One translated Responses call: what it continues, and how its answer is kept."""

    def __init__(
        self,
        repository: ResponseRepository,
        owner: str,
        *,
        previous_id: str | None,
        history: list[Message],
        keep_seconds: float,
        max_bytes: int,
    ) -> None:
        self.id = new_response_id()
        self.previous_id = previous_id
        self._repository = repository
        self._owner = owner
        #: The conversation before the answer, ``instructions`` left out.
        self._history = history
        #: 0: this answer is not kept.
        self._keep_seconds = keep_seconds
        self._max_bytes = max_bytes

    # --- whole answers ---------------------------------------------------------------

    async def answer_body(self, answer: ChatResponse, request: ChatRequest) -> bytes:
        """The ``response`` object for ``answer`` under this turn's id, kept before it goes."""
        answer.id = self.id
        body = self._described(response_object(answer, request))
        data = orjson.dumps(body)
        await self._save(answer.message, answer.model, data)
        return data

    # --- streams -----------------------------------------------------------------------

    async def encoded(
        self, events: AsyncIterator[StreamEvent], encoder: StreamEncoder
    ) -> AsyncIterator[bytes]:
        """The caller's stream under this turn's id; kept before its final event goes out.

        A failure mid-stream ends it with an error event (and keeps nothing).
        """
        fold = _Fold()
        started = False
        if isinstance(encoder, ResponsesStreamEncoder):
            encoder.echo = self._described({})
        try:
            async for event in events:
                if not started:
                    started = True
                    # The encoder names the response after the first MessageStart.
                    model = event.model if isinstance(event, MessageStart) else ""
                    start = MessageStart(id=self.id, model=model)
                    fold.add(start)
                    data = encoder.encode(start)
                    if data:
                        yield data
                    if isinstance(event, MessageStart):
                        continue
                fold.add(event)
                data = encoder.encode(event)
                if data:
                    yield await self._kept(data, fold)
        except ModelwayError as error:
            yield encoder.error(error)
            return
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        yield await self._kept(encoder.finish(), fold)

    async def _kept(self, data: bytes, fold: _Fold) -> bytes:
        """``data``, after keeping the response when it holds the stream's final event."""
        if not any(final in data for final in _FINAL_EVENTS) or self._keep_seconds <= 0:
            return data
        body = _final_response(data)
        answer = fold.result()
        if body is None or body.get("id") != self.id or answer is None:
            log.warning("a streamed response could not be kept: its final event was unreadable")
            return data
        kept = orjson.dumps(self._described(body))  # the stream's body cannot say these
        await self._save(answer.message, str(body.get("model") or ""), kept)
        return data

    # --- keeping -------------------------------------------------------------------------

    def _described(self, body: dict[str, Any]) -> dict[str, Any]:
        body["store"] = self._keep_seconds > 0
        body["previous_response_id"] = self.previous_id
        return body

    async def _save(self, output: Message, model: str, response: bytes) -> None:
        if self._keep_seconds <= 0:
            return
        messages = [*self._history]
        if output.content or output.tool_calls or _has_reasoning(output):
            messages.append(output)
        try:
            conversation: str | None = encode_conversation(messages, len(self._history))
            if conversation is not None and len(conversation) > self._max_bytes:
                log.info("response %s kept without its conversation: past the bound", self.id)
                conversation = None
            await self._repository.save(
                self.id,
                self._owner,
                model,
                conversation=conversation,
                response=response.decode(),
                keep_seconds=self._keep_seconds,
            )
        except Exception:
            # The caller's answer is whole; only a later chain from it will miss.
            log.exception("could not keep response %s", self.id)


async def open_turn(
    state: GatewayState,
    caller: Caller,
    body: dict[str, Any],
    request: ChatRequest,
    request_bytes: int,
) -> ResponseTurn:
    """The turn for a decoded Responses ``request``; a ``previous_response_id`` is loaded
    and its conversation put into ``request.messages`` (``NotFound``, ``BadRequest``)."""
    keep_days = state.config.responses.store_days
    store = body.get("store")
    if store is not None and not isinstance(store, bool):
        raise BadRequest("store: expected a boolean")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise BadRequest("previous_response_id: expected a string")
    # The instructions message, when there is one, leads the decoded messages.
    lead = 1 if isinstance(body.get("instructions"), str) and body["instructions"] else 0
    instructions, inputs = request.messages[:lead], request.messages[lead:]
    owner = owner_of(caller)
    max_bytes = state.config.server.max_body_bytes
    history = inputs
    if previous is not None:
        if keep_days <= 0:
            raise BadRequest(
                "previous_response_id: this gateway stores no responses (responses.store_days "
                "is 0); send the whole conversation in `input`"
            )
        earlier = await _stored(state, previous, owner)
        history = [*_conversation(earlier, previous, request_bytes, max_bytes), *inputs]
        request.messages = [*instructions, *history]
    return ResponseTurn(
        state.store.responses,
        owner,
        previous_id=previous,
        history=history,
        keep_seconds=keep_days * _DAY if store is not False else 0.0,
        max_bytes=max_bytes,
    )


async def stored_response(state: GatewayState, caller: Caller, response_id: str) -> bytes:
    """The response object kept under ``response_id`` for ``caller`` (``NotFound``)."""
    stored = await _stored(state, response_id, owner_of(caller), param=None)
    return stored.response.encode()


async def stored_input_items(
    state: GatewayState, caller: Caller, response_id: str, query: Mapping[str, str]
) -> bytes:
    """The input items of ``caller``'s response ``response_id``, one page of them:
    ``limit`` (1 to 100, 20), ``order`` (``desc``, the default, or ``asc``), ``after`` (an
    item id). What the response was made from: its conversation, less its own answer."""
    limit = _page_limit(query.get("limit"))
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("order: asc or desc")
    stored = await _stored(state, response_id, owner_of(caller), param=None)
    if stored.conversation is None:
        raise BadRequest(
            f"the input items of {response_id!r} were not kept: its conversation was past "
            "server.max_body_bytes"
        )
    try:
        messages, inputs = decode_kept(stored.conversation)
    except (msgspec.ValidationError, msgspec.DecodeError):
        log.exception("stored response %s has a conversation that cannot be read", response_id)
        raise BadRequest(f"the input items of {response_id!r} can no longer be read") from None
    if inputs is not None:
        messages = messages[:inputs]  # the rest is the response's own answer
    elif messages and _answered(stored.response):
        messages = messages[:-1]  # kept before the count was: its answer, when it had one
    items = input_items(messages, response_id)
    after = query.get("after")
    try:
        page = items_page(items, limit=limit, descending=order == "desc", after=after)
    except ValueError:
        shown = (after or "")[:_SHOWN_ID]
        raise BadRequest(f"after: no item {shown!r} in this response") from None
    return orjson.dumps(page)


def _page_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_PAGE):
        raise BadRequest(f"limit: a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _answered(response: str) -> bool:
    """Whether a response kept before its inputs were counted has output (then its
    conversation ends with its answer; an empty answer's empty message is no output)."""
    try:
        body = orjson.loads(response)
    except orjson.JSONDecodeError:
        return False
    output = body.get("output") if isinstance(body, dict) else None
    return isinstance(output, list) and any(_said_something(item) for item in output)


def _said_something(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if item.get("type") == "message":
        parts = item.get("content")
        return isinstance(parts, list) and any(
            isinstance(part, dict) and part.get("text") for part in parts
        )
    return True  # a function call, a reasoning item


async def delete_stored_response(state: GatewayState, caller: Caller, response_id: str) -> bytes:
    """Delete ``caller``'s response ``response_id``: OpenAI's deletion object (``NotFound``)."""
    deleted = _GATEWAY_ID.fullmatch(response_id) is not None and await state.store.reading(
        state.store.responses.delete(response_id, owner_of(caller))
    )
    if not deleted:
        raise not_found(response_id, None)
    return orjson.dumps({"id": response_id, "object": "response", "deleted": True})


async def cancel_stored_response(state: GatewayState, caller: Caller, response_id: str) -> bytes:
    """Cancel ``caller``'s response ``response_id``: the gateway answered it at once, so
    there is nothing to cancel (``BadRequest``; ``NotFound`` if there is no such response)."""
    await _stored(state, response_id, owner_of(caller), param=None)
    raise BadRequest("only a response created with background: true can be cancelled")


async def _stored(
    state: GatewayState,
    response_id: str,
    owner: str,
    param: str | None = "previous_response_id",
) -> StoredResponse:
    # Only the gateway's own form can be stored: anything else needs no query.
    found = None
    if _GATEWAY_ID.fullmatch(response_id):
        found = await state.store.reading(state.store.responses.get(response_id, owner))
    if found is None:
        raise not_found(response_id, param)
    return found


def _conversation(
    earlier: StoredResponse, previous: str, request_bytes: int, max_bytes: int
) -> list[Message]:
    text = earlier.conversation
    if text is None or len(text) + request_bytes > max_bytes:
        raise BadRequest(
            f"previous_response_id: the conversation up to {previous!r} with this request "
            f"would pass {max_bytes} bytes (server.max_body_bytes); start a new conversation "
            "that sends what it needs in `input`"
        )
    try:
        return decode_conversation(text)
    except (msgspec.ValidationError, msgspec.DecodeError):
        log.exception("stored response %s has a conversation that cannot be read", previous)
        raise BadRequest(
            f"previous_response_id: the conversation of {previous!r} can no longer be read; "
            "send the whole conversation in `input`"
        ) from None


def not_found(response_id: str, param: str | None) -> NotFound:
    shown = response_id if len(response_id) <= _SHOWN_ID else response_id[:_SHOWN_ID] + "…"
    where = f"{param}: " if param else ""
    code = "previous_response_not_found" if param else "not_found"
    return NotFound(f"{where}response {shown!r} not found", code=code)


def _final_response(data: bytes) -> dict[str, Any] | None:
    """The ``response`` of the last event in ``data`` (an SSE chunk), or None."""
    last = data.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    for line in last.split(b"\n"):
        if line.startswith(b"data: "):
            try:
                event = orjson.loads(line[6:])
            except orjson.JSONDecodeError:
                return None
            response = event.get("response") if isinstance(event, dict) else None
            return response if isinstance(response, dict) else None
    return None


def _has_reasoning(message: Message) -> bool:
    return any(getattr(message, name, None) for name in ("reasoning", "reasoning_signature"))


class _Fold:
    """``ResponseBuilder`` that gives up, rather than fail the stream, on events it cannot fold."""

    def __init__(self) -> None:
        self._builder: ResponseBuilder | None = ResponseBuilder()

    def add(self, event: StreamEvent) -> None:
        if self._builder is None:
            return
        try:
            self._builder.add(event)
        except Exception:  # e.g. a tool call delta with no start: the caller's stream goes on
            log.warning("a streamed response could not be folded; it will not be kept")
            self._builder = None

    def result(self) -> ChatResponse | None:
        return None if self._builder is None else self._builder.result()
