"""The error hierarchy: each class knows its HTTP status and whether a retry can help."""

from __future__ import annotations

import email.utils
import math
import time

import pytest

from modelway.errors import (
    AuthenticationError,
    BadRequest,
    ConnectError,
    ConnectionLost,
    ContextWindowExceeded,
    CrossSiteRequest,
    EmptyResponse,
    MisdirectedRequest,
    ModelwayError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RequestBodyTimeout,
    StreamTruncated,
    Timeout,
    UndecodableResponse,
    UnknownModel,
    UnsupportedMediaType,
    UpstreamError,
    UpstreamStatusError,
)
from modelway.providers.base import openai_error_code
from modelway.providers.registry import adapter_for
from modelway.retry_after import retry_after_seconds


@pytest.mark.parametrize(
    ("error", "status", "retryable", "kind"),
    [
        (ModelwayError("x"), 500, False, "api_error"),
        (BadRequest("x"), 400, False, "invalid_request_error"),
        (ContextWindowExceeded("x"), 400, False, "invalid_request_error"),
        (PayloadTooLarge("x"), 413, False, "invalid_request_error"),
        (RequestBodyTimeout("x"), 408, False, "invalid_request_error"),
        (UnsupportedMediaType("x"), 415, False, "invalid_request_error"),
        (MisdirectedRequest("x"), 421, False, "invalid_request_error"),
        (AuthenticationError("x"), 401, False, "authentication_error"),
        (PermissionDenied("x"), 403, False, "permission_error"),
        (CrossSiteRequest("x"), 403, False, "permission_error"),
        (NotFound("x"), 404, False, "not_found_error"),
        (UnknownModel("x"), 404, False, "not_found_error"),
        (RateLimited("x"), 429, True, "rate_limit_error"),
        (UpstreamError("x"), 502, False, "upstream_error"),
        (ConnectError("x"), 502, True, "upstream_error"),
        (Timeout("x"), 504, True, "timeout_error"),
        # An upstream's broken answer is retried and fails over, as a 502 is.
        (EmptyResponse("x"), 502, True, "upstream_error"),
        (ConnectionLost("x"), 502, True, "upstream_error"),
        (UndecodableResponse("x"), 502, True, "upstream_error"),
        (StreamTruncated("x"), 502, True, "upstream_error"),
    ],
)
def test_each_error_class_knows_its_status_retryability_and_kind(
    error: ModelwayError, status: int, retryable: bool, kind: str
) -> None:
    assert (error.status, error.retryable, error.kind) == (status, retryable, kind)


def test_the_hierarchy_matches_the_module_docstring() -> None:
    assert issubclass(ContextWindowExceeded, BadRequest)
    assert issubclass(PayloadTooLarge, BadRequest)
    assert issubclass(RequestBodyTimeout, BadRequest)
    assert issubclass(UnsupportedMediaType, BadRequest)
    assert issubclass(MisdirectedRequest, BadRequest)
    assert issubclass(CrossSiteRequest, PermissionDenied)
    assert issubclass(UnknownModel, NotFound)
    for upstream in (
        UpstreamStatusError,
        ConnectError,
        Timeout,
        EmptyResponse,
        UndecodableResponse,
        StreamTruncated,
    ):
        assert issubclass(upstream, UpstreamError)
    for cls in (BadRequest, AuthenticationError, PermissionDenied, NotFound, RateLimited):
        assert issubclass(cls, ModelwayError)
    assert issubclass(UpstreamError, ModelwayError)


def test_codes_come_from_the_class_unless_given() -> None:
    assert UnknownModel("x").code == "model_not_found"
    assert ContextWindowExceeded("x").code == "context_length_exceeded"
    assert BadRequest("x").code is None
    assert BadRequest("x", code="invalid_value").code == "invalid_value"
    assert RateLimited("x", code="tokens").code == "tokens"


def test_rate_limited_carries_retry_after() -> None:
    assert RateLimited("slow down", retry_after=1.5).retry_after == 1.5
    assert RateLimited("slow down").retry_after is None


def test_upstream_error_remembers_its_provider() -> None:
    assert ConnectError("refused", provider="openai").provider == "openai"
    assert UpstreamError("x").retry_after is None


def test_undecodable_response_keeps_the_raw_text_bounded() -> None:
    assert UndecodableResponse("bad", raw="<html>").raw == "<html>"
    assert len(UndecodableResponse("bad", raw="x" * 10_000).raw) == 2000


def test_error_message_is_the_exception_text() -> None:
    error = BadRequest("model: required")

    assert str(error) == error.message == "model: required"


# --- an upstream's HTTP error -----------------------------------------------------------


def test_upstream_429_is_a_retryable_429_with_retry_after() -> None:
    error = UpstreamStatusError(
        "rate limited", upstream_status=429, headers={"Retry-After": "20"}, provider="openai"
    )

    assert (error.status, error.retryable, error.retry_after) == (429, True, 20.0)
    assert (error.kind, error.code) == ("rate_limit_error", "rate_limit_exceeded")


def test_upstream_429_prefers_retry_after_ms() -> None:
    error = UpstreamStatusError(
        "rate limited",
        upstream_status=429,
        headers={"retry-after-ms": "1500", "retry-after": "2"},
    )

    assert error.retry_after == 1.5


def test_upstream_400_keeps_400_and_is_not_retryable() -> None:
    error = UpstreamStatusError("bad", upstream_status=400, body=b'{"error": {}}')

    assert (error.status, error.retryable, error.kind) == (400, False, "invalid_request_error")
    assert error.body == b'{"error": {}}'


@pytest.mark.parametrize(
    ("upstream", "kind"),
    [
        (401, "upstream_error"),
        (403, "upstream_error"),
        (404, "not_found_error"),
        (422, "invalid_request_error"),
    ],
)
def test_upstream_client_errors_keep_their_status_and_get_a_fitting_kind(
    upstream: int, kind: str
) -> None:
    error = UpstreamStatusError("no", upstream_status=upstream)

    assert (error.status, error.retryable, error.kind) == (upstream, False, kind)


@pytest.mark.parametrize("upstream", [401, 403])
def test_an_upstream_refusing_the_provider_key_says_it_is_not_the_callers_key(
    upstream: int,
) -> None:
    error = UpstreamStatusError("openai answered 401: Incorrect API key", upstream_status=upstream)

    error.blame_deployment_key()
    error.blame_deployment_key()  # said once, however often

    assert error.fails_over and not error.retryable
    assert error.code not in ("invalid_api_key", None)
    assert error.message.startswith("openai answered 401: Incorrect API key (the provider key")
    assert error.message.count("the caller's key is not at fault") == 1
    assert str(error) == error.message


@pytest.mark.parametrize("upstream", [500, 501, 502, 503, 505, 507, 520, 521, 523, 529, 530, 599])
def test_every_upstream_server_error_is_a_retryable_502(upstream: int) -> None:
    error = UpstreamStatusError("down", upstream_status=upstream)

    assert (error.status, error.retryable) == (502, True)
    assert error.upstream_status == upstream


@pytest.mark.parametrize("upstream", [408, 504])
def test_upstream_timeouts_are_retryable_504s(upstream: int) -> None:
    error = UpstreamStatusError("slow", upstream_status=upstream)

    assert (error.status, error.retryable) == (504, True)


def test_upstream_status_error_keeps_headers_as_a_plain_copy() -> None:
    headers = {"x-request-id": "req_1"}
    error = UpstreamStatusError("x", upstream_status=500, headers=headers)
    headers["x-request-id"] = "changed"

    assert error.headers == {"x-request-id": "req_1"}


def test_status_mapping_does_not_leak_between_instances() -> None:
    UpstreamStatusError("x", upstream_status=429)

    assert UpstreamStatusError("y", upstream_status=500).status == 502
    assert UpstreamStatusError.status == 502
    assert UpstreamStatusError.kind == "upstream_error"


# --- retry_after_seconds ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"RETRY-AFTER-MS": "250"}, 0.25),
        ({"retry-after-ms": "oops", "retry-after": "3"}, 3.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date gone by
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00"}, None),  # no zone: no HTTP date
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, 0.0),
        ({"retry-after-ms": "-5"}, 0.0),
        ({"retry-after": "nan"}, None),
    ],
)
def test_retry_after_seconds_reads_the_delay_headers(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert retry_after_seconds(headers) == seconds


def test_retry_after_as_an_http_date_is_the_seconds_until_it() -> None:
    # As the openai SDK reads it; the clock is the caller's, here a moment long after now.
    moment = time.time() + 400 * 86400
    header = email.utils.formatdate(moment + 30, usegmt=True)
    seconds = retry_after_seconds({"Retry-After": header}, now=lambda: moment)
    assert seconds is not None and 29 <= seconds <= 31


@pytest.mark.parametrize("value", ["inf", "Infinity", "1e999"])
def test_retry_after_that_is_not_a_finite_number_is_ignored(value: str) -> None:
    delay = retry_after_seconds({"retry-after": value})

    assert delay is None or math.isfinite(delay)


# --- repr -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (BadRequest("model: required"), "BadRequest('model: required')"),
        (RateLimited("slow down", retry_after=3), "RateLimited('slow down')"),
        (UnknownModel("no model 'x'"), "UnknownModel(\"no model 'x'\")"),
    ],
)
def test_repr_is_the_class_name_and_message(error: ModelwayError, text: str) -> None:
    assert repr(error) == text


def test_repr_of_an_upstream_error_shows_neither_body_nor_headers() -> None:
    error = UpstreamStatusError(
        "upstream said 404",
        upstream_status=404,
        body=b'{"error": "key sk-live-abc is invalid"}',
        headers={"set-cookie": "session=secret"},
        provider="openai",
    )

    assert repr(error) == "UpstreamNotFound('upstream said 404')"
    assert str(error) == "upstream said 404"


@pytest.mark.parametrize(
    ("status", "general"),
    [
        (429, RateLimited),
        (401, AuthenticationError),
        (403, PermissionDenied),
        (404, NotFound),
        (400, BadRequest),
        (422, BadRequest),
    ],
)
def test_an_upstream_refusal_is_also_the_matching_general_error(
    status: int, general: type[ModelwayError]
) -> None:
    error = UpstreamStatusError("no", upstream_status=status, headers={"Retry-After": "4"})
    assert isinstance(error, general) and isinstance(error, UpstreamStatusError)
    assert error.upstream_status == status


def test_an_upstream_429_keeps_its_retry_after_when_caught_as_rate_limited() -> None:
    with pytest.raises(RateLimited) as caught:
        raise UpstreamStatusError("slow down", upstream_status=429, headers={"retry-after": "7"})
    assert caught.value.retry_after == 7.0 and caught.value.retryable


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            b'{"error": {"message": "too long", "code": "context_length_exceeded"}}',
            "context_length_exceeded",
        ),
        (b'{"error": {"message": "no money", "code": "insufficient_quota"}}', "insufficient_quota"),
        (b'{"error": {"message": "x", "code": null}}', None),
        (b'{"error": {"message": "x", "code": 400}}', None),
        (b'{"error": {"message": "x", "code": "a b"}}', None),
        (b'{"error": {"message": "x", "code": "' + b"c" * 65 + b'"}}', None),
        (b'{"error": "plain"}', None),
        (b"[1, 2]", None),
        (b"<html>bad gateway</html>", None),
    ],
)
def test_an_openai_upstreams_error_code_is_taken_only_as_a_short_identifier(
    body: bytes, code: str | None
) -> None:
    assert openai_error_code(body) == code


@pytest.mark.parametrize(
    ("error", "param"),
    [
        (BadRequest("temperature: expected a number"), "temperature"),
        (BadRequest("messages[0].content: expected a string or a list"), "messages[0].content"),
        (
            BadRequest("stream_options.include_usage: expected a boolean"),
            "stream_options.include_usage",
        ),
        (BadRequest("the request body must be a JSON object"), None),
        (BadRequest("request body is not valid JSON"), None),
        (NotFound("previous_response_id: response 'x' not found"), "previous_response_id"),
        (UnknownModel("no such model: gpt-9"), None),
        (UpstreamStatusError("openai answered 400: model: bad", upstream_status=400), None),
        (ModelwayError("model: something broke"), None),  # a 500 names no field
    ],
)
def test_a_refusal_names_the_field_its_message_starts_with(
    error: ModelwayError, param: str | None
) -> None:
    assert error.param == param


CONTEXT_ERRORS = [
    (
        "openai",
        b'{"error": {"message": "This model\'s maximum context length is 128000 tokens.",'
        b' "type": "invalid_request_error", "code": "context_length_exceeded"}}',
    ),
    (  # an OpenAI-compatible upstream without OpenAI's code
        "openai",
        b'{"error": {"message": "This model\'s maximum context length is 65536 tokens.",'
        b' "type": "invalid_request_error", "code": null}}',
    ),
    (
        "anthropic",
        b'{"type": "error", "error": {"type": "invalid_request_error",'
        b' "message": "prompt is too long: 210000 tokens > 200000 maximum"}}',
    ),
    (
        "gemini",
        b'{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "The input token'
        b' count (1234567) exceeds the maximum number of tokens allowed (1048576)."}}',
    ),
]


@pytest.mark.parametrize(("provider", "body"), CONTEXT_ERRORS)
def test_a_prompt_too_long_for_the_model_is_a_context_window_error(
    provider: str, body: bytes
) -> None:
    code = adapter_for(provider).error_code(body)
    error = UpstreamStatusError("too long", upstream_status=400, body=body, upstream_code=code)
    assert isinstance(error, ContextWindowExceeded)
    assert isinstance(error, BadRequest) and isinstance(error, UpstreamStatusError)
    assert (error.status, error.code, error.retryable) == (400, "context_length_exceeded", False)


def test_other_bad_requests_are_not_context_window_errors() -> None:
    body = b'{"error": {"message": "temperature: must be at most 2", "code": null}}'
    code = adapter_for("openai").error_code(body)
    error = UpstreamStatusError("no", upstream_status=400, body=body, upstream_code=code)
    assert not isinstance(error, ContextWindowExceeded)
