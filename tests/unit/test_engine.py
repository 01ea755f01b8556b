"""Retries, failover and fallbacks, with scripted in-process backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from modelway.config import parse_config
from modelway.engine import Engine
from modelway.errors import (
    BadRequest,
    ConnectError,
    EmptyResponse,
    ModelwayError,
    RateLimited,
    Unavailable,
    UndecodableResponse,
    UpstreamStatusError,
)
from modelway.providers.upstream import Call
from modelway.routing.deployments import DeploymentState
from modelway.routing.targets import Route
from modelway.types import (
    ChatRequest,
    ChatResponse,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
)
from tests.unit.fakes import ScriptedBackend

CONFIG = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: pair
    retries: 2
    timeouts: {connect: 1, first_token: 2, stall: 3, total: 4}
    deployments: [{provider: a, model: m-a}, {provider: b, model: m-b}]
  - name: solo
    retries: 1
    deployments: [{provider: a, model: m-a}]
    fallbacks: [backup]
  - name: backup
    deployments: [{provider: b, model: m-b}]
"""


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff waits, recorded instead of slept."""
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr("modelway.engine.asyncio.sleep", fake_sleep)
    return waited


def engine(**backends: ScriptedBackend) -> Engine:
    return Engine(parse_config(CONFIG, {}), {}, backends)


def ask(model: str, stream: bool = False) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", [TextPart("hi")])], stream=stream)


def server_error() -> UpstreamStatusError:
    return UpstreamStatusError("boom", upstream_status=500)


async def test_a_retryable_failure_is_retried_on_the_same_deployment(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [server_error()])
    answer, outcome = await engine(a=a, b=ScriptedBackend("b")).complete(
        ask("pair"), request_id="r"
    )
    assert answer.message.text() == "a says hi"
    assert outcome.attempts == 2 and outcome.target.backend is a
    assert len(sleeps) == 1


async def test_a_400_is_never_retried(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [UpstreamStatusError("bad", upstream_status=400)])
    b = ScriptedBackend("b")
    with pytest.raises(UpstreamStatusError) as caught:
        await engine(a=a, b=b).complete(ask("pair"), request_id="r")
    assert caught.value.status == 400
    assert len(a.calls) == 1 and b.calls == [] and sleeps == []


@pytest.mark.parametrize("status", [501, 505, 507, 521, 523, 530])
async def test_every_upstream_5xx_is_retried_then_fails_over_to_the_fallback(
    status: int, sleeps: list[float]
) -> None:
    failure = UpstreamStatusError("odd server error", upstream_status=status)
    a = ScriptedBackend("a", [failure, UpstreamStatusError("again", upstream_status=status)])
    b = ScriptedBackend("b")
    answer, outcome = await engine(a=a, b=b).complete(ask("solo"), request_id="r")
    assert answer.message.text() == "b says hi"
    assert len(a.calls) == 2 and outcome.attempts == 3 and outcome.fallback == "backup"


@pytest.mark.parametrize("status", [404, 422])
async def test_a_refusal_of_the_request_itself_ends_the_call(
    status: int, sleeps: list[float]
) -> None:
    a = ScriptedBackend("a", [UpstreamStatusError("no", upstream_status=status)])
    b = ScriptedBackend("b")
    with pytest.raises(UpstreamStatusError) as caught:
        await engine(a=a, b=b).complete(ask("solo"), request_id="r")
    assert caught.value.status == status
    assert len(a.calls) == 1 and b.calls == [] and sleeps == []


@pytest.mark.parametrize("status", [401, 403])
async def test_a_deployment_whose_key_is_refused_is_not_retried_but_the_next_one_answers(
    status: int, sleeps: list[float]
) -> None:
    a = ScriptedBackend("a", [UpstreamStatusError("bad key", upstream_status=status)] * 3)
    b = ScriptedBackend("b")
    answer, outcome = await engine(a=a, b=b).complete(ask("pair"), request_id="r")
    assert answer.message.text() == "b says hi"
    assert len(a.calls) == 1 and outcome.attempts == 2 and sleeps == []


@pytest.mark.parametrize("status", [401, 403])
async def test_a_deployment_whose_key_is_refused_fails_over_to_the_fallback(
    status: int, sleeps: list[float]
) -> None:
    a = ScriptedBackend("a", [UpstreamStatusError("bad key", upstream_status=status)] * 3)
    b = ScriptedBackend("b")
    answer, outcome = await engine(a=a, b=b).complete(ask("solo"), request_id="r")
    assert answer.message.text() == "b says hi"
    assert len(a.calls) == 1 and outcome.fallback == "backup"


async def test_every_deployment_refusing_its_key_is_the_last_refusal_not_the_callers_key(
    sleeps: list[float],
) -> None:
    a = ScriptedBackend("a", [UpstreamStatusError("a: bad key", upstream_status=401)])
    b = ScriptedBackend("b", [UpstreamStatusError("b: bad key", upstream_status=401)])
    with pytest.raises(UpstreamStatusError) as caught:
        await engine(a=a, b=b).complete(ask("pair"), request_id="r")
    error = caught.value
    assert (error.status, error.kind, error.attempts) == (401, "upstream_error", 2)
    assert error.code != "invalid_api_key"
    assert (
        error.message.startswith("b: bad key")
        and "the caller's key is not at fault" in error.message
    )


def spent_quota() -> UpstreamStatusError:
    return UpstreamStatusError(
        "You exceeded your current quota", upstream_status=429, upstream_code="insufficient_quota"
    )


async def test_a_spent_quota_is_not_retried_but_fails_over_and_benches_its_deployment(
    sleeps: list[float],
) -> None:
    # Waiting does not refill an account: the next deployment answers at once, and the
    # spent one sits out its cooldown instead of being asked first by every call.
    a = ScriptedBackend("a", [spent_quota()] * 10)
    b = ScriptedBackend("b")
    gateway = engine(a=a, b=b)
    answer, outcome = await gateway.complete(ask("solo"), request_id="r")  # retries: 1
    assert answer.message.text() == "b says hi" and outcome.fallback == "backup"
    assert len(a.calls) == 1 and outcome.attempts == 2 and sleeps == []
    for _ in range(4):
        await gateway.complete(ask("solo"), request_id="r")
    assert len(a.calls) == 3  # benched after 3 failures (the default cooldown)


async def test_every_deployment_out_of_quota_says_so_and_not_the_callers_limits(
    sleeps: list[float],
) -> None:
    a = ScriptedBackend("a", [spent_quota()])
    b = ScriptedBackend("b", [spent_quota()])
    with pytest.raises(UpstreamStatusError) as caught:
        await engine(a=a, b=b).complete(ask("pair"), request_id="r")
    error = caught.value
    assert (error.status, error.code, error.attempts) == (429, "insufficient_quota", 2)
    assert "out of quota; the caller's own limits are not at fault" in error.message


def test_an_upstream_code_is_kept_but_never_for_a_refused_provider_key() -> None:
    assert UpstreamStatusError("x", upstream_status=400, upstream_code="c").code == "c"
    refused = UpstreamStatusError("x", upstream_status=401, upstream_code="invalid_api_key")
    assert refused.code == "upstream_authentication_failed"
    assert UpstreamStatusError("x", upstream_status=500, upstream_code="c").code is None
    rate = UpstreamStatusError("x", upstream_status=429, upstream_code="rate_limit_exceeded")
    assert (rate.retryable, rate.fails_over, rate.benches) == (True, False, False)


async def test_retry_after_is_waited_for_and_not_less(sleeps: list[float]) -> None:
    limited = UpstreamStatusError("slow down", upstream_status=429, headers={"Retry-After": "2"})
    a = ScriptedBackend("a", [limited])
    await engine(a=a, b=ScriptedBackend("b")).complete(ask("pair"), request_id="r")
    assert sleeps and sleeps[0] >= 2.0


async def test_exhausted_retries_fail_over_to_the_next_deployment(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [server_error(), server_error(), ConnectError("down")])
    b = ScriptedBackend("b")
    answer, outcome = await engine(a=a, b=b).complete(ask("pair"), request_id="r")
    assert answer.message.text() == "b says hi"
    assert outcome.attempts == 4
    assert [model for model, _ in b.calls] == ["m-b"]


async def test_fallback_alias_answers_when_every_deployment_fails(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [server_error(), server_error()])
    b = ScriptedBackend("b")
    answer, outcome = await engine(a=a, b=b).complete(ask("solo"), request_id="r")
    assert answer.message.text() == "b says hi"
    assert outcome.target.model == "m-b"


async def test_per_call_fallbacks_and_max_retries(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [server_error()])
    b = ScriptedBackend("b")
    answer, outcome = await engine(a=a, b=b).complete(
        ask("a/m-a"), request_id="r", fallbacks=["b/other"], max_retries=0
    )
    assert answer.message.text() == "b says hi"
    assert outcome.attempts == 2 and sleeps == []


async def test_the_last_error_is_raised_when_everything_fails(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [server_error()] * 3)
    b = ScriptedBackend("b", [RateLimited("busy")] * 3)
    with pytest.raises(RateLimited):
        await engine(a=a, b=b).complete(ask("pair"), request_id="r")


async def test_a_stream_fails_over_before_its_first_event(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [ConnectError("down")] * 3)
    b = ScriptedBackend("b")
    opened = await engine(a=a, b=b).open_stream(ask("pair", stream=True), request_id="r")
    text = "".join([e.text async for e in opened.events if isinstance(e, TextDelta)])
    assert text == "b says hi "
    assert opened.outcome.target.backend is b


class EmptyStream(ScriptedBackend):
    """Answers every stream with no event at all (``data: [DONE]`` alone)."""

    async def stream(
        self, request: ChatRequest, model: str, call: Call
    ) -> AsyncIterator[StreamEvent]:
        self._next_failure(model, call)
        return
        yield  # an async generator


async def test_an_empty_stream_is_an_empty_response_that_fails_over(sleeps: list[float]) -> None:
    a, b = EmptyStream("a"), ScriptedBackend("b")
    opened = await engine(a=a, b=b).open_stream(ask("pair", stream=True), request_id="r")
    assert opened.outcome.target.backend is b
    assert len(a.calls) == 3  # retried, as an empty answer may be a fluke
    with pytest.raises(EmptyResponse):
        await engine(a=EmptyStream("a"), b=EmptyStream("b")).open_stream(
            ask("pair", stream=True), request_id="r"
        )


async def test_alias_timeouts_and_request_id_reach_the_backend(sleeps: list[float]) -> None:
    a = ScriptedBackend("a")
    await engine(a=a, b=ScriptedBackend("b")).complete(ask("pair"), request_id="req-7")
    _, call = a.calls[0]
    assert call.request_id == "req-7"
    assert (
        call.timeouts.connect,
        call.timeouts.first_token,
        call.timeouts.stall,
        call.timeouts.total,
    ) == (1, 2, 3, 4)


async def test_caller_only_fields_do_not_reach_a_provider_of_another_wire(
    sleeps: list[float],
) -> None:
    a = ScriptedBackend("a")
    request = ask("a/m-a")
    request.extra = {"logit_bias": {"1": 2}}
    e = engine(a=a, b=ScriptedBackend("b"))
    assert e._request_for(request, e.router.direct_target("a/m"), "anthropic").extra == {}
    assert e._request_for(request, e.router.direct_target("a/m"), "openai").extra == request.extra


async def test_several_choices_asked_of_a_provider_of_another_wire_are_refused(
    sleeps: list[float],
) -> None:
    e = engine(a=ScriptedBackend("a"), b=ScriptedBackend("b"))
    request = ask("a/m-a")
    request.extra = {"n": 2}
    with pytest.raises(BadRequest, match="n: a answers one choice per call"):
        e._request_for(request, e.router.direct_target("a/m"), "anthropic")
    assert e._request_for(request, e.router.direct_target("a/m"), "openai").extra == {"n": 2}
    request.extra = {"n": 1}
    assert e._request_for(request, e.router.direct_target("a/m"), "anthropic").extra == {}


async def test_a_per_call_fallback_nothing_serves_does_not_stop_the_primary(
    sleeps: list[float],
) -> None:
    a = ScriptedBackend("a")
    answer, _ = await engine(a=a, b=ScriptedBackend("b")).complete(
        ask("a/m-a"), request_id="r", fallbacks=["nosuchprovider-model"]
    )
    assert answer.message.text() == "a says hi"


async def test_a_fallback_answer_says_which_fallback_it_came_from(sleeps: list[float]) -> None:
    a = ScriptedBackend("a", [server_error(), server_error()])
    _, outcome = await engine(a=a, b=ScriptedBackend("b")).complete(ask("solo"), request_id="r")
    assert outcome.fallback == "backup"
    _, direct = await engine(a=ScriptedBackend("a"), b=ScriptedBackend("b")).complete(
        ask("solo"), request_id="r"
    )
    assert direct.fallback is None


async def test_a_cooling_deployment_is_skipped_by_later_requests(sleeps: list[float]) -> None:
    cooling = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: pair
    retries: 0
    cooldown: {failures: 1, window: 60, seconds: 60}
    deployments: [{provider: a, model: m-a}, {provider: b, model: m-b}]
"""
    a = ScriptedBackend("a", [server_error()] * 10)
    b = ScriptedBackend("b")
    e = Engine(parse_config(cooling, {}), {}, {"a": a, "b": b})
    for _ in range(4):
        answer, _ = await e.complete(ask("pair"), request_id="r")
        assert answer.message.text() == "b says hi"
    assert len(a.calls) == 1  # failed once, then rested


#: One deployment, benched for 30 s by one failure.
PROBED = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
models:
  - name: solo
    retries: 0
    cooldown: {failures: 1, window: 60, seconds: 30}
    deployments: [{provider: a, model: m-a}]
"""
CAPPED = PROBED.replace("model: m-a}", "model: m-a, rpm: 2}")


async def test_every_deployment_resting_is_a_503_with_retry_after(sleeps: list[float]) -> None:
    e = Engine(parse_config(PROBED, {}), {}, {"a": ScriptedBackend("a", [server_error()] * 3)})
    with pytest.raises(UpstreamStatusError):
        await e.complete(ask("solo"), request_id="r")
    with pytest.raises(Unavailable) as caught:
        await e.complete(ask("solo"), request_id="r")
    assert caught.value.status == 503
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 30


async def test_every_deployment_resting_after_a_429_is_a_429_with_retry_after(
    sleeps: list[float],
) -> None:
    limited = UpstreamStatusError("slow down", upstream_status=429, headers={"Retry-After": "7"})
    e = Engine(parse_config(PROBED, {}), {}, {"a": ScriptedBackend("a", [limited])})
    with pytest.raises(RateLimited):
        await e.complete(ask("solo"), request_id="r")
    with pytest.raises(RateLimited) as caught:  # `except RateLimited` catches the rest too
        await e.complete(ask("solo"), request_id="r")
    assert caught.value.status == 429
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 7


async def test_retries_stop_at_the_total_time_budget(sleeps: list[float]) -> None:
    # "pair" allows 4 s in total; a Retry-After of 10 s cannot be waited for inside it.
    a = ScriptedBackend("a", [RateLimited("wait", retry_after=10.0)])
    answer, _ = await engine(a=a, b=ScriptedBackend("b")).complete(ask("pair"), request_id="r")
    assert answer.message.text() == "b says hi"
    assert sleeps == [] and len(a.calls) == 1


async def test_a_stream_stays_in_flight_on_its_deployment_until_it_ends(
    sleeps: list[float],
) -> None:
    e = engine(a=ScriptedBackend("a"), b=ScriptedBackend("b"))
    opened = await e.open_stream(ask("pair", stream=True), request_id="r")
    state = opened.outcome.target.deployment
    assert state is not None and state.in_flight == 1
    _ = [event async for event in opened.events]
    assert state.in_flight == 0


async def test_a_deployment_at_its_own_rpm_cap_is_passed_over(sleeps: list[float]) -> None:
    capped = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: pair
    deployments: [{provider: a, model: m-a, rpm: 1}, {provider: b, model: m-b}]
"""
    a, b = ScriptedBackend("a"), ScriptedBackend("b")
    e = Engine(parse_config(capped, {}), {}, {"a": a, "b": b})
    answers = [(await e.complete(ask("pair"), request_id="r"))[0] for _ in range(4)]
    assert all(answer.message.text() in ("a says hi", "b says hi") for answer in answers)
    assert len(a.calls) == 1 and len(b.calls) == 3


async def test_every_deployment_at_its_cap_is_a_429_that_is_not_the_callers_limit(
    sleeps: list[float],
) -> None:
    capped = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: pair
    deployments: [{provider: a, model: m-a, rpm: 1}, {provider: b, model: m-b, rpm: 1}]
"""
    e = Engine(parse_config(capped, {}), {}, {"a": ScriptedBackend("a"), "b": ScriptedBackend("b")})
    for _ in range(2):
        await e.complete(ask("pair"), request_id="r")
    with pytest.raises(RateLimited) as refused:
        await e.complete(ask("pair"), request_id="r")
    assert refused.value.status == 429
    assert "every deployment that could answer is at its own rate limit" in refused.value.message
    assert refused.value.rate_limit_headers == []  # no x-ratelimit-*: not the caller's limits
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 61


async def test_a_deployment_benched_by_its_cooldown_is_not_waited_for(
    sleeps: list[float],
) -> None:
    benching = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: pair
    strategy: weighted
    retries: 2
    cooldown: {failures: 1, window: 60, seconds: 60}
    deployments: [{provider: a, model: m-a, weight: 1000000}, {provider: b, model: m-b}]
"""
    a = ScriptedBackend("a", [server_error()] * 5)
    e = Engine(parse_config(benching, {}), {}, {"a": a, "b": ScriptedBackend("b")})
    answer, outcome = await e.complete(ask("pair"), request_id="r")
    assert answer.message.text() == "b says hi"
    assert sleeps == []  # the 60 s rest is not slept through: the next deployment answers
    assert len(a.calls) == 1 and outcome.attempts == 2


async def test_the_error_after_every_attempt_says_how_many_were_made(
    sleeps: list[float],
) -> None:
    a = ScriptedBackend("a", [server_error()] * 9)
    b = ScriptedBackend("b", [server_error()] * 9)
    with pytest.raises(UpstreamStatusError) as caught:
        await engine(a=a, b=b).complete(ask("pair"), request_id="r")
    assert caught.value.attempts == 6  # three tries on each of two deployments


# --- model listings --------------------------------------------------------------------------


class UnlistableBackend(ScriptedBackend):
    """A provider whose listing fails with ``error``: an upstream's or a fault of our own."""

    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(name)
        self.error = error

    async def list_models(self) -> list[str]:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [UndecodableResponse("no data list", raw='{"data": 5}'), TypeError("not subscriptable")],
)
async def test_a_provider_that_cannot_be_listed_is_left_out_with_its_reason(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    e = engine(a=UnlistableBackend("a", error), b=ScriptedBackend("b"))
    ids = [info.id for info in await e.models()]
    assert ids[:4] == ["pair", "solo", "backup", "b/m1"]
    assert not [i for i in ids if i.startswith("a/")]
    assert e.unlisted.keys() == {"a"}
    if isinstance(error, TypeError):  # a fault of ours is in the log, with its traceback
        assert any(r.exc_info and r.exc_info[1] is error for r in caplog.records)


class Hanging(ScriptedBackend):
    """Fails as scripted; then, while ``hang`` is set, never answers."""

    def __init__(self, name: str, failures: list[ModelwayError]) -> None:
        super().__init__(name, failures)
        self.hang = True
        self.waiting = asyncio.Event()

    async def complete(self, request: ChatRequest, model: str, call: Call) -> ChatResponse:
        if self.hang and not self.failures:
            self.waiting.set()
            await asyncio.Event().wait()
        return await super().complete(request, model, call)


def _rest_over(e: Engine) -> DeploymentState:
    state = e.router.route("solo").targets[0].deployment
    assert state is not None
    state.cooled_until = time.monotonic() - 1  # its 30 s rest is over: the next call probes
    return state


async def test_a_probe_whose_caller_left_lets_the_next_call_probe(sleeps: list[float]) -> None:
    """Before, the probe's slot stayed taken: the deployment answered 503 to every call
    ("probing") until the gateway restarted."""
    a = Hanging("a", [server_error()])
    e = Engine(parse_config(PROBED, {}), {}, {"a": a})
    with pytest.raises(UpstreamStatusError):
        await e.complete(ask("solo"), request_id="r")  # benched
    _rest_over(e)
    probe = asyncio.create_task(e.complete(ask("solo"), request_id="probe"))
    await a.waiting.wait()
    probe.cancel()  # the caller hung up while the probe was out
    with pytest.raises(asyncio.CancelledError):
        await probe
    a.hang = False
    answer, _ = await e.complete(ask("solo"), request_id="next")
    assert answer.message.text() == "a says hi"


async def test_a_probe_refused_by_the_deployments_own_cap_lets_the_next_call_probe(
    sleeps: list[float],
) -> None:
    a = ScriptedBackend("a", [server_error()])
    e = Engine(parse_config(CAPPED, {}), {}, {"a": a})
    with pytest.raises(UpstreamStatusError):
        await e.complete(ask("solo"), request_id="r")  # benched, one of its 2 RPM spent
    state = _rest_over(e)
    await e.rates.admit(state.limit_scope, rpm=2)  # another replica's call: the cap is full
    with pytest.raises(RateLimited):
        await e.complete(ask("solo"), request_id="capped probe")
    assert state.admit(time.monotonic())  # the probe's slot is free again


async def test_a_probe_answered_429_with_retry_after_leaves_callers_a_429_not_a_503(
    sleeps: list[float],
) -> None:
    """Before, the probe's 429 benched the deployment for the whole cooldown (30 s): every
    caller was told 503 no_deployment_available, though the upstream had asked for 5 s."""

    def limited() -> UpstreamStatusError:
        return UpstreamStatusError("slow down", upstream_status=429, headers={"Retry-After": "5"})

    e = Engine(parse_config(PROBED, {}), {}, {"a": ScriptedBackend("a", [limited(), limited()])})
    with pytest.raises(RateLimited):
        await e.complete(ask("solo"), request_id="r")
    _rest_over(e)
    with pytest.raises(RateLimited):
        await e.complete(ask("solo"), request_id="probe")
    with pytest.raises(RateLimited) as caught:
        await e.complete(ask("solo"), request_id="next")
    assert not isinstance(caught.value, Unavailable) and caught.value.status == 429
    assert caught.value.retry_after is not None and 4 < caught.value.retry_after <= 5


async def test_every_error_says_how_many_attempts_were_made_none_included(
    sleeps: list[float],
) -> None:
    # The all-resting 503 said nothing (no x-modelway-attempts), unlike the others.
    e = Engine(parse_config(PROBED, {}), {}, {"a": ScriptedBackend("a", [server_error()])})
    with pytest.raises(UpstreamStatusError) as failed:
        await e.complete(ask("solo"), request_id="r")
    assert failed.value.attempts == 1
    with pytest.raises(Unavailable) as resting:
        await e.complete(ask("solo"), request_id="r")
    assert resting.value.attempts == 0


class Slow(ScriptedBackend):
    """Fails as scripted, after ``seconds`` of the call's time (a real wait: at least)."""

    def __init__(self, name: str, failures: list[ModelwayError], seconds: float) -> None:
        super().__init__(name, failures)
        self.seconds = seconds

    async def complete(self, request: ChatRequest, model: str, call: Call) -> ChatResponse:
        await asyncio.sleep(self.seconds)
        return await super().complete(request, model, call)


async def test_no_further_deployment_is_asked_once_the_total_time_is_spent() -> None:
    """``total`` bounds the call, failover included: before, each deployment got a whole
    ``total`` of its own, so a call could take several times it."""
    spent = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: pair
    retries: 3
    timeouts: {total: 0.05}
    deployments: [{provider: a, model: m-a}, {provider: b, model: m-b}]
"""
    a = Slow("a", [server_error()], seconds=0.06)  # longer than the whole budget
    b = ScriptedBackend("b")
    e = Engine(parse_config(spent, {}), {}, {"a": a, "b": b})
    with pytest.raises(UpstreamStatusError):
        await e.complete(ask("pair"), request_id="r")
    assert (len(a.calls), len(b.calls)) == (1, 0)


#: "a" with a provider quota of 100 tokens a minute, "b" with none.
TOKEN_CAPPED = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: pair
    retries: 0
    deployments: [{provider: a, model: m-a, tpm: 100}, {provider: b, model: m-b}]
"""


async def test_a_deployments_tpm_cap_reserves_the_calls_estimate_before_it_is_asked(
    sleeps: list[float],
) -> None:
    # It reserved nothing: ten calls of 500 estimated tokens each went to a 100-token cap,
    # which only the usage settled afterwards began to fill (found in a trial).
    a, b = ScriptedBackend("a"), ScriptedBackend("b")
    e = Engine(parse_config(TOKEN_CAPPED, {}), {}, {"a": a, "b": b})

    def a_first(tokens: int) -> Route:  # round-robin takes turns: "a" is asked first here
        route = e.route("pair")
        ordered = sorted(route.targets, key=lambda target: target.backend.name)
        return route._replace(targets=ordered, tokens=tokens)

    large = a_first(500)  # more than a's whole cap
    _, outcome = await e.complete(ask("pair"), request_id="r", route=large)
    assert outcome.target.backend is b and a.calls == []
    shares = [a_first(60) for _ in range(2)]
    answered = [(await e.complete(ask("pair"), request_id="r", route=r))[1] for r in shares]
    # The first reserves 60 of a's 100 (settled only when a call ends): the second fails over.
    assert [o.target.backend for o in answered] == [a, b]
