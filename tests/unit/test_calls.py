"""The metered call in-process: admission, one usage record however a call ends, hooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from modelway.calls import ANONYMOUS, Accounts, CallEnd, Caller, CallHook, Calls, Chunk, MeteredCall
from modelway.calls.metered import MAX_MODEL_NAME
from modelway.config import Config, LimitSettings, Price, TeamBudget, parse_config
from modelway.engine import Engine
from modelway.errors import (
    BadRequest,
    BudgetExceeded,
    ModelwayError,
    PermissionDenied,
    RateLimited,
    UnknownModel,
    UnpricedModel,
    UpstreamError,
)
from modelway.limits import Limits
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from modelway.store.records import KeyRecord, UsageRecord
from modelway.types import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    TextDelta,
    TextPart,
    Usage,
    UsageReport,
)
from tests.unit.fakes import ScriptedBackend

PRICES = {"quiet/m": Price(input_per_million=1_000_000.0, output_per_million=2_000_000.0)}


class Recorded:
    """A usage recorder that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def aclose(self) -> None:
        return None

    @property
    def only(self) -> UsageRecord:
        [record] = self.records
        return record


def key(**limits: Any) -> Caller:
    record = KeyRecord(
        id="k1",
        name="team key",
        prefix="mw-abc",
        owner_user="ann",
        owner_team="red",
        models=limits.pop("models", ()),
        rpm=limits.pop("rpm", None),
        tpm=limits.pop("tpm", None),
        budget_usd=limits.pop("budget_usd", None),
        budget_tokens=limits.pop("budget_tokens", None),
        budget_period="total",
        expires_at=None,
        metadata={},
        created_at=0.0,
        revoked_at=None,
    )
    return Caller(key_id="k1", name="team key", user="ann", team="red", key=record)


def chat(model: str = "quiet/m", text: str = "hello", stream: bool = False) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[Message(role="user", content=[TextPart(text)])],
        stream=stream,
    )


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def make_calls(recorded: Recorded, config: Config | None = None, **backends: Any) -> Calls:
    limits = Limits.from_environment(None)
    engine = Engine(
        config or Config(),
        {},
        {"quiet": ScriptedBackend("quiet"), **backends},
        rates=limits.rates,
    )
    return Calls(engine, Accounts(limits, recorded, PRICES))


@pytest.fixture
async def calls(recorded: Recorded) -> AsyncIterator[Calls]:
    made = make_calls(recorded)
    yield made
    await made.aclose()


def open_call(calls: Calls, caller: Caller = ANONYMOUS, model: str = "quiet/m") -> MeteredCall:
    return calls.open(caller, model, dialect="openai", request_id="r1", request_bytes=40)


# --- one record, however the call ends -----------------------------------------------------


async def test_a_whole_answer_leaves_one_record_with_its_tokens_and_cost(
    calls: Calls, recorded: Recorded
) -> None:
    async with open_call(calls, key()) as call:
        answer = await call.complete(chat())
    assert answer.message.text() == "quiet says hi"
    record = recorded.only
    assert (record.request_id, record.dialect, record.alias) == ("r1", "openai", "quiet/m")
    assert (record.provider, record.model, record.status) == ("quiet", "m", 200)
    assert (record.key_id, record.user, record.team) == ("k1", "ann", "red")
    assert (record.prompt_tokens, record.completion_tokens) == (1, 3)
    assert record.cost_usd == pytest.approx(1.0 + 6.0)  # 1 M$/M in, 2 M$/M out
    assert not record.stream and not record.usage_estimated
    assert record.ttft_ms is not None and record.latency_ms >= record.ttft_ms


async def test_a_stream_is_recorded_when_it_ends_with_the_usage_it_reported(
    calls: Calls, recorded: Recorded
) -> None:
    async with open_call(calls) as call:
        events = await call.stream(chat(stream=True))
    assert recorded.records == []  # the stream owns the end of the call
    seen = [event async for event in events]
    assert any(isinstance(event, UsageReport) for event in seen)
    record = recorded.only
    assert record.stream and record.status == 200
    assert (record.prompt_tokens, record.completion_tokens, record.usage_estimated) == (1, 3, False)


async def test_a_stream_left_early_is_recorded_as_the_caller_closing_it(
    calls: Calls, recorded: Recorded
) -> None:
    async with open_call(calls) as call:
        events = await call.stream(chat(stream=True))
    async for event in events:
        if isinstance(event, TextDelta):
            break
    await events.aclose()  # type: ignore[attr-defined]
    record = recorded.only
    assert record.status == 499 and record.usage_estimated  # no usage report arrived


async def test_a_stream_read_inside_the_block_and_cancelled_is_recorded_once(
    calls: Calls, recorded: Recorded
) -> None:
    started = asyncio.Event()

    async def reader() -> None:
        async with open_call(calls) as call:
            async for _ in await call.stream(chat(stream=True)):
                started.set()
                await asyncio.Event().wait()  # the user stops it here

    task = asyncio.create_task(reader())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorded.only.status == 499


async def test_a_failure_is_recorded_with_its_status_and_error(recorded: Recorded) -> None:
    broken = ScriptedBackend("broken", [UpstreamError("went away")] * 5)
    calls = make_calls(recorded, broken=broken)
    with pytest.raises(UpstreamError):
        async with open_call(calls, model="broken/m") as call:
            await call.complete(chat("broken/m"))
    record = recorded.only
    assert (record.status, record.error_type) == (502, "UpstreamError")
    assert (record.provider, record.model) == ("broken", "m")  # whom it asked last
    assert record.prompt_tokens == 0  # nothing was answered: no tokens charged
    await calls.aclose()


async def test_an_error_in_the_block_after_a_stream_was_opened_closes_it_and_records_it(
    calls: Calls, recorded: Recorded
) -> None:
    with pytest.raises(BadRequest):
        async with open_call(calls) as call:
            await call.stream(chat(stream=True))
            raise BadRequest("the caller's format cannot say that")
    record = recorded.only
    assert (record.status, record.error_type, record.provider) == (400, "BadRequest", "quiet")


async def test_an_unknown_model_is_recorded_under_the_name_asked_for(
    calls: Calls, recorded: Recorded
) -> None:
    with pytest.raises(UnknownModel):
        async with open_call(calls, model="nobody/knows"):
            pass
    record = recorded.only
    assert (record.status, record.alias, record.provider) == (404, "nobody/knows", None)


async def test_a_model_name_past_the_bound_is_refused_and_kept_only_to_the_bound(
    calls: Calls, recorded: Recorded
) -> None:
    # 20 requests naming a 5 MiB model grew the store by 300 MiB, even for a mock/* key.
    with pytest.raises(BadRequest, match="model: at most 256 characters"):
        async with open_call(calls, key(models=("mock/*",)), model="m" * 5_000_000):
            pytest.fail("a refused call never runs")
    record = recorded.only
    assert (record.status, record.alias) == (400, "m" * MAX_MODEL_NAME)


async def test_embeddings_are_metered_calls_too(calls: Calls, recorded: Recorded) -> None:
    async with open_call(calls, key(models=("quiet/*",))) as call:
        answer = await call.embed(EmbeddingRequest(model="quiet/m", input=["a", "b"]))
    assert len(answer.vectors) == 2
    assert (recorded.only.provider, recorded.only.status) == ("quiet", 200)


async def test_embeddings_whose_provider_reports_no_usage_are_counted_from_their_texts(
    calls: Calls, recorded: Recorded
) -> None:
    """Gemini reports none for embeddings: before, they were recorded at 0 tokens and $0,
    past token budgets, TPM and prices."""
    texts = ["a" * 400, "b" * 400]
    async with open_call(calls, key(models=("quiet/*",))) as call:
        await call.embed(EmbeddingRequest(model="quiet/m", input=texts))
    record = recorded.only
    assert (record.prompt_tokens, record.usage_estimated) == (800 // 4, True)
    assert record.cost_usd == pytest.approx(200.0)  # PRICES: $1 a token


# --- admission -----------------------------------------------------------------------------


async def test_a_model_outside_the_keys_globs_is_refused_and_recorded(
    calls: Calls, recorded: Recorded
) -> None:
    with pytest.raises(PermissionDenied):
        async with open_call(calls, key(models=("mock/*",))):
            pytest.fail("a refused call never runs")
    assert (recorded.only.status, recorded.only.error_type) == (403, "PermissionDenied")


async def test_rpm_refuses_the_call_over_the_limit_and_answers_carry_the_headers(
    calls: Calls, recorded: Recorded
) -> None:
    caller = key(rpm=1)
    async with open_call(calls, caller) as call:
        await call.complete(chat())
        headers = dict(call.rate_limit_headers)
    assert headers[b"x-ratelimit-limit-requests"] == b"1"
    assert headers[b"x-ratelimit-remaining-requests"] == b"0"
    with pytest.raises(RateLimited) as refused:
        async with open_call(calls, caller):
            pass
    assert refused.value.retry_after is not None
    assert [r.status for r in recorded.records] == [200, 429]


async def test_the_configs_limits_hold_for_a_key_that_sets_none_of_its_own(
    recorded: Recorded,
) -> None:
    limits = Limits.from_environment(None)
    engine = Engine(Config(), {}, {"quiet": ScriptedBackend("quiet")}, rates=limits.rates)
    accounts = Accounts(limits, recorded, PRICES, key_limits=LimitSettings(rpm=1, tpm=5000))
    calls = Calls(engine, accounts)
    try:
        async with open_call(calls, key()) as call:
            await call.complete(chat())
            headers = dict(call.rate_limit_headers)
        assert headers[b"x-ratelimit-limit-requests"] == b"1"
        assert headers[b"x-ratelimit-limit-tokens"] == b"5000"
        with pytest.raises(RateLimited):
            async with open_call(calls, key()):
                pass
        # A key's own limit wins; no key (open mode, the library) has none.
        own = key(rpm=3)
        own = own._replace(key_id="k2", key=msgspec.structs.replace(own.key, id="k2"))
        for _ in range(3):
            async with open_call(calls, own) as call:
                await call.complete(chat())
        for _ in range(3):
            async with open_call(calls) as call:
                await call.complete(chat())
    finally:
        await calls.aclose()


async def test_a_spent_budget_refuses_the_next_call(calls: Calls, recorded: Recorded) -> None:
    caller = key(budget_usd=5.0)
    async with open_call(calls, caller) as call:
        await call.complete(chat())  # costs $7
    with pytest.raises(BudgetExceeded):
        async with open_call(calls, caller):
            pass
    assert [r.status for r in recorded.records] == [200, 429]


# --- models with no price ---------------------------------------------------------------


async def test_a_call_to_a_model_with_no_price_is_recorded_as_unpriced_not_free(
    calls: Calls, recorded: Recorded
) -> None:
    async with open_call(calls, key(), model="quiet/no-price") as call:
        await call.complete(chat("quiet/no-price"))
    async with open_call(calls, key(), model="quiet/m") as call:
        await call.complete(chat())
    unpriced, priced = recorded.records
    assert (unpriced.status, unpriced.prompt_tokens, unpriced.completion_tokens) == (200, 1, 3)
    assert unpriced.unpriced and unpriced.cost_usd == 0.0
    assert not priced.unpriced and priced.cost_usd == pytest.approx(7.0)


async def test_a_key_with_a_usd_budget_is_refused_a_model_with_no_price_naming_it(
    calls: Calls, recorded: Recorded
) -> None:
    """Its spend could not be counted, so the budget would not hold: refused before the
    provider is asked, with what to do about it."""
    quiet = calls.engine.router.backends["quiet"]
    assert isinstance(quiet, ScriptedBackend)
    with pytest.raises(UnpricedModel) as refused:
        async with open_call(calls, key(budget_usd=100.0), model="quiet/no-price") as call:
            await call.complete(chat("quiet/no-price"))
    message = str(refused.value)
    assert message.startswith("model quiet/no-price has no price")
    assert "USD budget" in message and "prices:" in message
    assert refused.value.status == 403 and refused.value.code == "model_unpriced"
    assert quiet.calls == []
    assert [(r.status, r.error_type, r.unpriced) for r in recorded.records] == [
        (403, "UnpricedModel", False)
    ]


async def test_a_key_in_a_team_with_a_usd_budget_is_refused_a_model_with_no_price(
    recorded: Recorded,
) -> None:
    limits = Limits.from_environment(None)
    engine = Engine(Config(), {}, {"quiet": ScriptedBackend("quiet")}, rates=limits.rates)
    budgets = [TeamBudget(team="red", usd=50.0)]
    calls = Calls(engine, Accounts(limits, recorded, PRICES, budgets))
    try:
        with pytest.raises(UnpricedModel):
            async with open_call(calls, key(), model="quiet/no-price"):
                pass
        async with open_call(calls, key(), model="quiet/m") as call:
            await call.complete(chat())  # a priced model: served, charged to the team
    finally:
        await calls.aclose()
    assert [r.status for r in recorded.records] == [403, 200]


@pytest.mark.parametrize(
    "caller",
    [ANONYMOUS, key(), key(budget_tokens=1_000)],
    ids=["no-key", "key-without-budget", "token-budget-only"],
)
async def test_callers_without_a_usd_budget_may_call_a_model_with_no_price(
    calls: Calls, recorded: Recorded, caller: Caller
) -> None:
    async with open_call(calls, caller, model="quiet/no-price") as call:
        await call.complete(chat("quiet/no-price"))
    assert recorded.only.unpriced and recorded.only.status == 200


async def test_a_usd_budget_may_call_a_local_model_or_a_priced_one(
    recorded: Recorded,
) -> None:
    calls = make_calls(recorded, ollama=ScriptedBackend("ollama"))
    try:
        for model in ("ollama/llama3.2", "quiet/m"):
            async with open_call(calls, key(budget_usd=100.0), model=model) as call:
                await call.complete(chat(model))
    finally:
        await calls.aclose()
    assert [(r.status, r.unpriced) for r in recorded.records] == [(200, False), (200, False)]
    assert recorded.records[0].cost_usd == 0.0  # a local model costs nothing, knowingly


async def test_an_alias_with_an_unpriced_fallback_is_refused_to_a_usd_budget_naming_it(
    recorded: Recorded,
) -> None:
    config = parse_config(
        'providers: {quiet: {wire: openai, base_url: "http://quiet.invalid/v1"}}\n'
        "models:\n"
        "  - name: smart\n"
        "    deployments: [{provider: quiet, model: m}]\n"
        "    fallbacks: [spare]\n"
        "  - name: spare\n"
        "    deployments: [{provider: quiet, model: no-price}]\n",
        {},
    )
    calls = make_calls(recorded, config)
    try:
        with pytest.raises(UnpricedModel, match=r"^model quiet/no-price has no price"):
            async with open_call(calls, key(budget_usd=100.0), model="smart"):
                pass
        async with open_call(calls, key(), model="smart") as call:
            await call.complete(chat("smart"))  # without a USD budget: served as before
    finally:
        await calls.aclose()
    assert [r.status for r in recorded.records] == [403, 200]


async def test_showing_a_model_takes_no_round_robin_turn(recorded: Recorded) -> None:
    config = parse_config(
        "models:\n  - name: pair\n    deployments: [{provider: openai, model: a}, "
        "{provider: anthropic, model: b}]\n",
        {},
    )
    first, second = ScriptedBackend("first"), ScriptedBackend("second")
    calls = make_calls(recorded, config, openai=first, anthropic=second)
    for _ in range(3):
        calls.engine.route("pair", take_turn=False)
    answered = []
    for _ in range(2):
        async with open_call(calls, model="pair") as call:
            answered.append((await call.complete(chat("pair"))).message.text())
    assert answered == ["first says hi", "second says hi"]  # the turns were all still there
    await calls.aclose()


# --- hooks ---------------------------------------------------------------------------------


class Watching(CallHook):
    def __init__(self, refuse: ModelwayError | None = None) -> None:
        self.refuse = refuse
        self.seen: list[str] = []

    def before(self, call: MeteredCall) -> None:
        self.seen.append(f"before {call.model} via {call.route.targets[0].backend.name}")
        if self.refuse is not None:
            raise self.refuse

    def chunk(self, call: MeteredCall, chunk: Chunk) -> None:
        if isinstance(chunk, TextDelta):
            self.seen.append(f"chunk {chunk.text.strip()}")

    def after(self, call: MeteredCall, record: UsageRecord) -> None:
        self.seen.append(f"after {record.status}")


async def test_hooks_see_each_call_before_it_runs_each_chunk_and_its_record(
    recorded: Recorded,
) -> None:
    hook = Watching()
    calls = make_calls(recorded)
    calls.add_hook(hook)
    async with open_call(calls) as call:
        async for _ in await call.stream(chat(stream=True)):
            pass
    assert hook.seen == [
        "before quiet/m via quiet",
        "chunk quiet",
        "chunk says",
        "chunk hi",
        "after 200",
    ]
    await calls.aclose()


class WatchingLater(Watching):
    later = True

    def after_batch(self, ended: list[CallEnd]) -> None:
        self.seen += [f"after {end.record.status} from {end.key_name}" for end in ended]


async def test_a_later_hook_sees_the_record_after_the_call_and_drain_catches_up(
    recorded: Recorded,
) -> None:
    now, later = Watching(), WatchingLater()
    calls = make_calls(recorded)
    calls.add_hook(now)
    calls.add_hook(later)
    async with open_call(calls) as call:
        await call.complete(chat())
    assert now.seen[-1] == "after 200"  # as the call ended
    assert later.seen == ["before quiet/m via quiet"]  # its after is still to come
    await calls.drain()
    assert later.seen == ["before quiet/m via quiet", "after 200 from anonymous"]
    await calls.aclose()


async def test_a_hook_may_refuse_a_call_which_is_then_recorded(recorded: Recorded) -> None:
    calls = make_calls(recorded)
    calls.add_hook(Watching(refuse=PermissionDenied("not on this path")))
    with pytest.raises(PermissionDenied):
        async with open_call(calls):
            pytest.fail("a refused call never runs")
    assert recorded.only.status == 403
    await calls.aclose()


# --- relay ---------------------------------------------------------------------------------


def openai_upstream(stream_lines: list[bytes] | None = None) -> HttpProvider:
    def handle(request: UpstreamRequest) -> MockReply:
        body = json.loads(request.body or b"{}")
        if body.get("stream"):
            return MockReply(200, _chunks(stream_lines or []))
        answer = {
            "id": "c1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
        return MockReply(200, json.dumps(answer).encode())

    return HttpProvider(
        "openai",
        adapter_for("openai"),
        "http://up.test/v1",
        Secret("sk-x"),
        transport=MockTransport(handle),
    )


async def _chunks(lines: list[bytes]) -> AsyncIterator[bytes]:
    for line in lines:
        yield line


class NoHeaders:
    def get(self, key: str, /) -> str | None:
        return None


async def test_a_relayed_answer_is_the_upstreams_bytes_and_is_recorded(recorded: Recorded) -> None:
    calls = make_calls(recorded, openai=openai_upstream())
    async with calls.open(ANONYMOUS, "openai/gpt-x", dialect="openai", request_id="r2") as call:
        assert call.relayable()
        relayed = await call.relay({"model": "openai/gpt-x", "messages": []}, NoHeaders())
    assert relayed.body is not None and json.loads(relayed.body)["model"] == "gpt-x"
    record = recorded.only
    assert (record.provider, record.prompt_tokens, record.completion_tokens) == ("openai", 5, 1)
    await calls.aclose()


async def test_a_relayed_stream_is_recorded_with_the_usage_its_scanner_read(
    recorded: Recorded,
) -> None:
    lines = [
        b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}\n\n',
        b"data: [DONE]\n\n",
    ]
    calls = make_calls(recorded, openai=openai_upstream(lines))
    body = {"model": "openai/gpt-x", "messages": [], "stream": True}
    async with calls.open(ANONYMOUS, "openai/gpt-x", dialect="openai", request_id="r3") as call:
        relayed = await call.relay(body, NoHeaders())
    assert relayed.chunks is not None
    sent = b"".join([chunk async for chunk in relayed.chunks])
    assert b'"usage"' not in sent  # the caller did not ask for the usage chunk
    record = recorded.only
    assert record.stream and (record.prompt_tokens, record.completion_tokens) == (7, 2)
    await calls.aclose()


# --- a settlement survives the caller going away -------------------------------------------


async def test_the_budget_is_charged_even_when_the_caller_is_cancelled_while_settling(
    calls: Calls, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settling with Redis takes round trips a cancellation could cut (in memory, none).
    monkeypatch.setattr(Limits, "backend", property(lambda limits: "redis"))
    caller = key(budget_usd=5.0)
    budgets = calls.accounts.limits.budgets
    charge = budgets.charge
    charging, released = asyncio.Event(), asyncio.Event()

    async def slow_charge(*args: Any, **kwargs: Any) -> None:
        charging.set()
        await released.wait()
        await charge(*args, **kwargs)

    monkeypatch.setattr(budgets, "charge", slow_charge)

    async def run() -> None:
        async with open_call(calls, caller) as call:
            await call.complete(chat())

    task = asyncio.create_task(run())
    await charging.wait()
    task.cancel()  # the caller leaves while the call is being settled
    with pytest.raises(asyncio.CancelledError):
        await task
    released.set()
    await calls.drain()
    with pytest.raises(BudgetExceeded):
        async with open_call(calls, caller):
            pass


# --- prompt cache usage ----------------------------------------------------------------------


async def test_a_relayed_stream_records_the_cached_tokens_its_scanner_read(
    recorded: Recorded,
) -> None:
    usage = {
        "prompt_tokens": 1210,
        "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    lines = [
        b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
        b'data: {"choices":[],"usage":' + json.dumps(usage).encode() + b"}\n\n",
        b"data: [DONE]\n\n",
    ]
    calls = make_calls(recorded, openai=openai_upstream(lines))
    body = {"model": "openai/gpt-x", "messages": [], "stream": True}
    async with calls.open(ANONYMOUS, "openai/gpt-x", dialect="openai", request_id="r4") as call:
        relayed = await call.relay(body, NoHeaders())
    assert relayed.chunks is not None
    _ = [chunk async for chunk in relayed.chunks]
    record = recorded.only
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (
        1210,
        1000,
        0,
    )
    await calls.aclose()


async def test_a_translated_anthropic_answer_records_its_cache_reads_and_writes(
    recorded: Recorded,
) -> None:
    def handle(request: UpstreamRequest) -> MockReply:
        answer = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 1000,
                "output_tokens": 5,
            },
        }
        return MockReply(200, json.dumps(answer).encode())

    upstream = HttpProvider(
        "anthropic",
        adapter_for("anthropic"),
        "http://up.test",
        Secret("sk-x"),
        transport=MockTransport(handle),
    )
    calls = make_calls(recorded, anthropic=upstream)
    async with calls.open(
        ANONYMOUS, "anthropic/claude-x", dialect="openai", request_id="r5"
    ) as call:
        answer = await call.complete(chat("anthropic/claude-x"))
    assert answer.usage is not None and answer.usage.prompt_tokens == 1210
    record = recorded.only
    assert (record.prompt_tokens, record.completion_tokens) == (1210, 5)
    assert (record.cached_tokens, record.cache_write_tokens) == (1000, 200)
    await calls.aclose()


# --- estimates when no usage came --------------------------------------------------------

#: A 12-word prompt, as the tester's: about 15 tokens of text in a much larger body.
PROMPT = "Write a long story about a lighthouse keeper and his very patient cat."


def openai_delta(text: str) -> bytes:
    chunk = {
        "id": "chatcmpl-BjoxdCfe2SnNCuk8kPxuUYktHsuda",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-x",
        "system_fingerprint": "fp_a1102cf978",
        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None}],
        "usage": None,
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def test_a_relayed_stream_left_early_is_charged_the_tokens_of_its_text_not_its_bytes(
    recorded: Recorded,
) -> None:
    words = [f" w{i:02}" for i in range(40)]  # 4 bytes each: one token a delta
    calls = make_calls(recorded, openai=openai_upstream([openai_delta(w) for w in words]))
    body = {
        "model": "openai/gpt-x",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "temperature": 0.7,
        "max_tokens": 1024,
    }
    size = len(json.dumps(body))
    async with calls.open(
        ANONYMOUS, "openai/gpt-x", dialect="openai", request_id="r6", request_bytes=size
    ) as call:
        relayed = await call.relay(body, NoHeaders())
    assert relayed.chunks is not None
    sent = [await anext(relayed.chunks) for _ in range(10)]
    await relayed.chunks.aclose()  # type: ignore[attr-defined]  # the caller left
    record = recorded.only
    assert record.status == 499 and record.usage_estimated
    assert record.completion_tokens == 10  # ten deltas of 4 bytes: about a token each
    assert len(b"".join(sent)) // 4 > 50 * record.completion_tokens  # what the bytes say
    assert record.prompt_tokens == len(PROMPT) // 4
    assert record.prompt_tokens < size // 4 // 2  # the body is mostly JSON around it
    await calls.aclose()


async def test_a_relayed_whole_answer_without_usage_is_charged_the_tokens_of_its_text(
    recorded: Recorded,
) -> None:
    def handle(request: UpstreamRequest) -> MockReply:
        answer = {
            "id": "chatcmpl-BjoxdCfe2SnNCuk8kPxuUYktHsuda",
            "object": "chat.completion",
            "created": 1741569952,
            "model": "gpt-x",
            "system_fingerprint": "fp_a1102cf978",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Once upon a time."},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        }
        return MockReply(200, json.dumps(answer).encode())

    upstream = HttpProvider(
        "openai",
        adapter_for("openai"),
        "http://up.test/v1",
        Secret("sk-x"),
        transport=MockTransport(handle),
    )
    calls = make_calls(recorded, openai=upstream)
    body = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": PROMPT}]}
    async with calls.open(ANONYMOUS, "openai/gpt-x", dialect="openai", request_id="r7") as call:
        await call.relay(body, NoHeaders())
    record = recorded.only
    assert record.usage_estimated
    assert record.completion_tokens == len("Once upon a time.") // 4
    assert record.prompt_tokens == len(PROMPT) // 4
    await calls.aclose()


async def test_a_translated_stream_left_early_estimates_its_prompt_from_the_messages_text(
    calls: Calls, recorded: Recorded
) -> None:
    request = chat(text=PROMPT, stream=True)
    async with calls.open(
        ANONYMOUS, "quiet/m", dialect="openai", request_id="r8", request_bytes=4000
    ) as call:
        events = await call.stream(request)
    async for event in events:
        if isinstance(event, TextDelta):
            break
    await events.aclose()  # type: ignore[attr-defined]
    record = recorded.only
    assert record.status == 499 and record.usage_estimated
    assert record.prompt_tokens == len(PROMPT) // 4  # not the 4000-byte body's 1000
    assert record.completion_tokens == len("quiet ") // 4


def test_a_model_with_no_price_is_said_once_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """Its cost is unknown (None, not 0): the operator should know, once, not on every
    call; a local provider's models cost nothing by design."""
    accounts = Accounts(Limits.from_environment(None), Recorded(), PRICES)
    usage = Usage(prompt_tokens=1000, completion_tokens=1000)
    with caplog.at_level("WARNING", logger="modelway.usage"):
        for _ in range(3):
            assert accounts.cost("openai", "gpt-99-ultra", usage) is None
        assert accounts.cost("ollama", "llama3.2", usage) == 0.0
        assert accounts.cost("quiet", "m", usage) == pytest.approx(3000.0)
    [said] = [record.getMessage() for record in caplog.records]
    assert said.startswith("no price for openai/gpt-99-ultra: its calls are recorded as unpriced")


def test_models_without_a_price_cannot_fill_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """Model names are callers': one line each for the first 20, one saying so, then none."""
    accounts = Accounts(Limits.from_environment(None), Recorded(), PRICES)
    usage = Usage(prompt_tokens=1, completion_tokens=1)
    with caplog.at_level("WARNING", logger="modelway.usage"):
        for number in range(200):
            accounts.cost("openai", f"made-up-{number}", usage)
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 21
    assert said[-1].startswith("more models have no price")


async def test_a_call_to_an_alias_reserves_its_estimate_on_a_deployments_tpm_cap(
    recorded: Recorded,
) -> None:
    # "a" takes 100 tokens a minute; a call of 400 bytes (100 tokens) and max_tokens 50
    # is more than that: it goes to "b" without asking "a" (it went to "a" before).
    config = parse_config(
        "providers:\n"
        '  a: {wire: openai, base_url: "http://a.invalid/v1"}\n'
        '  b: {wire: openai, base_url: "http://b.invalid/v1"}\n'
        "models:\n  - name: pair\n    retries: 0\n"
        "    deployments: [{provider: a, model: m, tpm: 100}, {provider: b, model: m}]\n",
        {},
    )
    a, b = ScriptedBackend("a"), ScriptedBackend("b")
    calls = make_calls(recorded, config, a=a, b=b)
    try:
        for _ in range(2):  # whichever round-robin asks first
            async with calls.open(
                ANONYMOUS,
                "pair",
                dialect="openai",
                request_id="r",
                request_bytes=400,
                max_tokens=50,
            ) as call:
                await call.complete(chat("pair"))
    finally:
        await calls.aclose()
    assert a.calls == [] and len(b.calls) == 2
