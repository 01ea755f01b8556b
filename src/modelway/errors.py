"""One error hierarchy for the library, the gateway and the client.

Each class knows the HTTP status a gateway answers with, whether a retry can help
(``retryable``) and, when not, whether the next deployment may still answer
(``fails_over``: an upstream refusing the deployment's own key).
Errors are raised where the fact is known and mapped to a caller's dialect in one
place (``modelway.dialects``). Messages never contain a secret.

    ModelwayError
    ├── BadRequest                  400
    │   ├── ContextWindowExceeded   400
    │   ├── PayloadTooLarge         413
    │   ├── RequestBodyTimeout      408  the caller did not send its body in time
    │   ├── UnsupportedMediaType    415  a browser API's body that is not JSON
    │   ├── MisdirectedRequest      421  a Host an open gateway does not answer to
    │   └── IdempotencyKeyReused    422  an ``Idempotency-Key`` sent again with another body
    ├── AuthenticationError         401
    ├── PermissionDenied            403
    │   ├── CrossSiteRequest        403  a state-changing request from another origin
    │   ├── CsrfFailed              403  an admin session's request without its CSRF token
    │   └── UnpricedModel           403  a model with no price, for a key with a USD budget
    ├── NotFound                    404
    │   └── UnknownModel            404
    ├── RateLimited                 429  retryable, ``retry_after``
    │   └── BudgetExceeded          429  code ``budget_exceeded``, not retryable
    ├── IdempotencyKeyInProgress    409  retryable: the key's first request is still running
    ├── ChatChanged                 409  a chat message sent from a stale view of the chat
    │   └── ChatAnswering           409  retryable: a reply to another tab's message streams
    ├── ServerBusy                  503  retryable: too many key checks queued
    └── UpstreamError               502  (an upstream's own status when it sent one)
        ├── UpstreamStatusError     the upstream answered with an HTTP error; its
        │                           400/401/403/404/429 subclasses are also the
        │                           BadRequest/AuthenticationError/... above;
        │                           retryable: every 5xx, 408, 409, 425, 429;
        │                           401/403 fail over (the deployment's own key)
        ├── ConnectError            502  retryable
        ├── Unavailable             503  retryable: every deployment is cooling down
        ├── Timeout                 504  retryable
        ├── EmptyResponse           502  retryable
        ├── ConnectionLost          502  retryable: the connection broke mid-answer
        ├── UndecodableResponse     502  retryable, carries the raw text
        └── StreamTruncated         502  retryable: the stream ended without its finish marker
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Self

from modelway.retry_after import retry_after_seconds

#: Client errors that mean "not now" rather than "never"; every server error (5xx) is
#: retryable too: another try, or another deployment, may answer.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 409, 425, 429})


#: The ``code`` of an upstream account out of quota or credit: OpenAI's own (with a 429);
#: the provider adapters give it for other providers' words for the same
#: (``Adapter.error_code``: Anthropic's ``billing_error`` or "credit balance is too low").
QUOTA_SPENT = "insufficient_quota"


def spent_quota(upstream_status: int, upstream_code: str | None) -> bool:
    """Whether an upstream's error status says its account is out of quota or credit:
    402 Payment Required (OpenRouter, DeepSeek, Anthropic's ``billing_error``) from
    anyone, or the quota code with the 400 or 429 its provider sends it with."""
    return upstream_status == 402 or (
        upstream_code == QUOTA_SPENT and upstream_status in (400, 429)
    )


class ModelwayError(Exception):
    """Base of every modelway error."""

    status: int = 500
    retryable: bool = False
    #: Not worth asking the same deployment again, but the next deployment (or a
    #: fallback) may answer: the fault is this deployment's, not the request's.
    fails_over: bool = False
    #: Counts towards the deployment's cooldown though not retryable (a spent quota).
    benches: bool = False
    #: OpenAI-style ``error.type``; dialects map it to their own vocabulary.
    kind: str = "api_error"
    #: Machine-readable ``error.code``.
    code: str | None = None
    #: Upstream calls made before giving up (set by the engine on the error it raises).
    attempts: int | None = None
    #: The provider and model of the upstream attempt that failed with this error (set by
    #: the engine): a failed call's usage record names whom it asked last.
    tried: tuple[str, str] | None = None
    #: Seconds after which asking again may succeed, when someone said (``Retry-After``).
    retry_after: float | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    @property
    def param(self) -> str | None:
        """The request field a refusal is about (OpenAI's ``error.param``): the gateway
        names it first in its own 4xx messages (``temperature: expected a number``)."""
        if not 400 <= self.status < 500 or isinstance(self, UpstreamError):
            return None  # an upstream's refusal speaks for itself, in its message
        found = _PARAM.match(self.message)
        return found.group(1) if found else None


#: A field named at the start of a message: ``model``, ``messages[0].content``.
_PARAM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_]*)*): ")


class BadRequest(ModelwayError):
    """The request is malformed or asks for something impossible."""

    status = 400
    kind = "invalid_request_error"


#: The code of a prompt too long for the model: OpenAI's, which adapters map others' to.
CONTEXT_TOO_LONG = "context_length_exceeded"


class ContextWindowExceeded(BadRequest):
    """The prompt does not fit the model's context window."""

    code = CONTEXT_TOO_LONG


class PayloadTooLarge(BadRequest):
    """The request body is larger than the gateway accepts."""

    status = 413
    code = "payload_too_large"


class RequestBodyTimeout(BadRequest):
    """The caller did not send the whole request body within the time allowed."""

    status = 408
    code = "request_timeout"


class ServerStopping(ModelwayError):
    """The gateway stopped (its shutdown grace ran out) before this answer ended."""

    status = 503
    retryable = True
    code = "server_stopping"


class ClientGone(ModelwayError):
    """The caller hung up before its request body was in: nobody to answer, nothing the
    gateway did wrong (recorded as 499, logged without a traceback)."""

    status = 499
    code = "client_closed_request"


class UnsupportedMediaType(BadRequest):
    """The body is not in the media type the route takes (the browser APIs take JSON)."""

    status = 415
    code = "unsupported_media_type"


class MisdirectedRequest(BadRequest):
    """The request names a host (``Host``) this gateway does not answer to."""

    status = 421
    code = "host_not_allowed"


class IdempotencyKeyReused(BadRequest):
    """An ``Idempotency-Key`` came again with a different request (IETF idempotency draft)."""

    status = 422
    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(ModelwayError):
    """A repeat waited as long as allowed for its key's first request, which is still running."""

    status = 409
    retryable = True
    kind = "invalid_request_error"
    code = "idempotency_key_in_progress"
    retry_after = 1.0


class ChatChanged(ModelwayError):
    """A web chat message sent from a view of the chat that is no longer its history (another
    tab or window added or replaced messages since): sending it would garble the history."""

    status = 409
    kind = "invalid_request_error"
    code = "chat_changed"

    def __init__(
        self,
        message: str = "this chat changed in another tab or window: "
        "reload it to see the latest messages, then send again",
    ) -> None:
        super().__init__(message)


class ChatAnswering(ChatChanged):
    """A web chat message sent while a reply to another tab's message is still streaming:
    its question is saved, its reply not yet, so this one would land between them."""

    retryable = True
    code = "chat_answering"

    def __init__(
        self,
        message: str = "this chat is still answering a message sent from another tab or "
        "window: wait for that reply, then send again",
    ) -> None:
        super().__init__(message)


class AuthenticationError(ModelwayError):
    """Missing, wrong, expired or revoked credentials."""

    status = 401
    kind = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ModelwayError):
    """Valid credentials that may not do this."""

    status = 403
    kind = "permission_error"


class CrossSiteRequest(PermissionDenied):
    """A state-changing request a page of another origin made (CSRF): refused."""

    code = "cross_site_request"


class CsrfFailed(PermissionDenied):
    """A state-changing admin request on a session cookie without the session's CSRF token
    (``X-CSRF-Token``), or from another origin: refused."""

    code = "csrf_failed"


class UnpricedModel(PermissionDenied):
    """A call a key or team with a USD budget may not make: a model it could reach has no
    price, so what it spends could not be counted against the budget."""

    code = "model_unpriced"


class NotFound(ModelwayError):
    """No such resource."""

    status = 404
    kind = "not_found_error"


class UnknownModel(NotFound):
    """No provider or alias serves this model name."""

    code = "model_not_found"


class RateLimited(ModelwayError):
    """Too many requests or tokens; ``retry_after`` says when to come back (seconds)."""

    status = 429
    retryable = True
    kind = "rate_limit_error"
    code = "rate_limit_exceeded"
    #: ``x-ratelimit-*`` headers a gateway refusal carries (the limits as they stand).
    rate_limit_headers: list[tuple[bytes, bytes]] = []
    #: Which of the gateway's limits refused: ``requests``, ``tokens``, ``requests,tokens``
    #: or ``request_too_large`` (None for an upstream's own 429); metrics label it.
    limit: str | None = None

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BudgetExceeded(RateLimited):
    """A key's or team's spending budget for the period is used up."""

    retryable = False
    code = "budget_exceeded"


class ServerBusy(ModelwayError):
    """The gateway has too much of one costly kind of work queued (checking new keys)."""

    status = 503
    retryable = True
    code = "server_busy"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(ModelwayError):
    """The gateway's own database cannot be read right now (an outage, not the caller's)."""

    status = 503
    retryable = True
    code = "store_unavailable"


class UpstreamError(ModelwayError):
    """A provider failed to give a usable answer."""

    status = 502
    kind = "upstream_error"

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an HTTP error status.

    Keeps the upstream's status, body and headers. Client errors (4xx) keep their
    status so a caller sees the upstream's 400 as a 400; server errors are 502.
    Constructing one gives the subclass that is also the matching general error, so
    ``except RateLimited`` catches an upstream 429 and ``except AuthenticationError``
    an upstream 401, whoever refused.
    """

    def __new__(cls, *args: object, upstream_status: int = 500, **kwargs: object) -> Self:
        if cls is UpstreamStatusError:
            code = kwargs.get("upstream_code")
            if spent_quota(upstream_status, code if isinstance(code, str) else None):
                cls = UpstreamQuotaSpent  # type: ignore[assignment]
            elif code == CONTEXT_TOO_LONG and upstream_status in (400, 413):
                cls = UpstreamContextWindowExceeded  # type: ignore[assignment]
            else:
                cls = _STATUS_CLASSES.get(upstream_status, cls)  # type: ignore[assignment]
        return super().__new__(cls)

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        provider: str | None = None,
        upstream_code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.upstream_status = upstream_status
        self.body = body
        self.headers = dict(headers or {})
        self.retryable = (
            upstream_status in RETRYABLE_CLIENT_STATUSES or 500 <= upstream_status < 600
        )
        self.retry_after = retry_after_seconds(self.headers)
        if upstream_status == 429:
            self.status, self.kind, self.code = 429, "rate_limit_error", "rate_limit_exceeded"
        elif 400 <= upstream_status < 500 and upstream_status != 408:
            self.status = upstream_status
            # An upstream's 401/403 is about the gateway's provider key: typed as the
            # caller's own authentication_error it would send them checking their key.
            self.kind = {
                401: "upstream_error",
                403: "upstream_error",
                404: "not_found_error",
            }.get(upstream_status, "invalid_request_error")
        elif upstream_status in (408, 504):
            self.status = 504
        if (
            upstream_code is not None
            and upstream_status < 500
            and upstream_status not in (401, 403)
        ):
            # What a client branches on: the upstream's own word. A refused provider key
            # keeps the code that says it is not the caller's key.
            self.code = upstream_code
        if spent_quota(upstream_status, upstream_code):
            # The provider account's quota or billing, not a rate: waiting will not help,
            # another deployment (another account) may, and this one sits out its cooldown.
            # Nor is the caller's request at fault: a 400 that says so is told as a 402.
            self.retryable, self.fails_over, self.benches = False, True, True
            self.code, self.kind = QUOTA_SPENT, "insufficient_quota"
            if upstream_status != 429:
                self.status = 402

    def blame_deployment_key(self) -> None:
        """Say, for a 401/403 (or a spent quota), that the deployment was at fault, not the
        caller's: a gateway answers it with the same status its own key check uses."""
        if isinstance(self, UpstreamQuotaSpent):
            note: str | None = _NOT_THE_CALLERS_QUOTA
        else:
            note = _NOT_THE_CALLERS_KEY.get(self.upstream_status)
        if note is not None and not self.message.endswith(f"({note})"):
            self.message = f"{self.message} ({note})"
            self.args = (self.message,)


class UpstreamRateLimited(UpstreamStatusError, RateLimited):
    """The upstream answered 429."""


class UpstreamQuotaSpent(UpstreamStatusError):
    """The provider account behind a deployment is out of quota or credit (``spent_quota``):
    neither a rate to wait out (not ``RateLimited``, even when it came as a 429) nor a
    malformed request (not ``BadRequest``, even when it came as a 400)."""


class UpstreamAuthenticationError(UpstreamStatusError, AuthenticationError):
    """The upstream refused the provider key the gateway sent (401): that deployment's
    credentials, not the caller's key, so the next deployment may answer."""

    fails_over = True
    code = "upstream_authentication_failed"


class UpstreamPermissionDenied(UpstreamStatusError, PermissionDenied):
    """The upstream answered 403: the gateway's provider key may not do this there (a
    model it has no access to, a region); another deployment's key may."""

    fails_over = True
    code = "upstream_permission_denied"


class UpstreamNotFound(UpstreamStatusError, NotFound):
    """The upstream answered 404 (often: no such model there)."""


class UpstreamBadRequest(UpstreamStatusError, BadRequest):
    """The upstream refused the request as malformed (400, 422)."""


class UpstreamContextWindowExceeded(UpstreamStatusError, ContextWindowExceeded):
    """The upstream refused the prompt as longer than the model's context window (its
    adapter read ``context_length_exceeded`` in the error: ``ProviderAdapter.error_code``)."""

    code = CONTEXT_TOO_LONG


#: Said after an upstream's 401/403, which a caller would otherwise read as about their key.
_NOT_THE_CALLERS_KEY = {
    401: "the provider key configured for this deployment was refused; "
    "the caller's key is not at fault",
    403: "the provider key configured for this deployment lacks access; "
    "the caller's key is not at fault",
}
_NOT_THE_CALLERS_QUOTA = (
    "the provider account behind this deployment is out of quota; "
    "the caller's own limits are not at fault"
)


_STATUS_CLASSES: dict[int, type[UpstreamStatusError]] = {
    400: UpstreamBadRequest,
    422: UpstreamBadRequest,
    401: UpstreamAuthenticationError,
    403: UpstreamPermissionDenied,
    404: UpstreamNotFound,
    429: UpstreamRateLimited,
}


class ConnectError(UpstreamError):
    """The upstream could not be reached."""

    retryable = True


class Unavailable(UpstreamError):
    """No deployment may be asked now: each is cooling down; ``retry_after`` says until when."""

    status = 503
    retryable = True
    code = "no_deployment_available"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Timeout(UpstreamError):
    """The upstream took too long (to connect, to the first token, between chunks, or in total)."""

    status = 504
    retryable = True
    kind = "timeout_error"


class EmptyResponse(UpstreamError):
    """The upstream answered with nothing usable."""

    # An upstream's broken answer is its own fault, as a 502 is: retried, then the next
    # deployment, and it counts towards the deployment's cooldown. (Once a stream's first
    # bytes are the caller's, nothing is retried: the stream ends with an error event.)
    retryable = True


class ConnectionLost(UpstreamError):
    """The upstream's connection broke before its answer was whole."""

    retryable = True


class UndecodableResponse(UpstreamError):
    """The upstream sent a body that is not what its format promises; ``raw`` holds it."""

    retryable = True

    def __init__(self, message: str, *, raw: str = "", provider: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.raw = raw[:2000]


class StreamTruncated(UpstreamError):
    """The upstream stream ended before its finish marker."""

    retryable = True
