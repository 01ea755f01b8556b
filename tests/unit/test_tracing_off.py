"""Without ``OTEL_EXPORTER_OTLP_ENDPOINT`` traces cost nothing: no import, no seam in use.

Checked in a fresh interpreter (this one may have imported OpenTelemetry for another
test): a whole in-process gateway is built and answers a chat call that carries a
``traceparent``, then the process reports what it imported and what the seams hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from modelway.observability import tracing

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json, sys, tempfile
from pathlib import Path

from modelway.observability import context
from modelway.providers import upstream
from tests.unit.gateways import in_process_gateway, openai_upstream

sent = []

def recording_upstream(request):
    sent.append(dict(request.headers))
    return openai_upstream(request)

async def main():
    with tempfile.TemporaryDirectory() as data:
        async with in_process_gateway(Path(data), upstream=recording_upstream) as setup:
            body = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "hi"}]}
            traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
            for stream in (False, True):
                answer = await setup.http.post(
                    "/v1/chat/completions",
                    json={**body, "stream": stream},
                    headers={"traceparent": traceparent},
                )
                assert answer.status_code == 200, answer.text
            calls = setup.state.calls
            report = {
                "imported": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
                "tracing_on": context.Tracing.on,
                "trace_headers": upstream.trace_headers is not None,
                "traceparent_read": context.traceparent.get(),
                "hooks": [type(h).__name__ for h in calls.hooks],
                "listeners": [type(l).__name__ for l in calls.engine.listeners],
                "upstream_traceparent": [h.get("traceparent") for h in sent],
            }
    print(json.dumps(report))

asyncio.run(main())
"""


def test_without_the_endpoint_nothing_of_opentelemetry_is_imported_or_used() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["imported"] == []
    assert report["tracing_on"] is False  # the faces skip reading traceparent
    assert report["trace_headers"] is False  # upstream requests pay one ``is None``
    assert report["traceparent_read"] is None
    assert "CallSpans" not in report["hooks"]
    assert "AttemptSpans" not in report["listeners"]
    assert report["upstream_traceparent"] == [None, None]  # whole and streamed


def test_only_the_endpoint_variables_turn_traces_on() -> None:
    assert not tracing.enabled({})
    assert not tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_SERVICE_NAME": "x"})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})


def test_install_without_the_endpoint_leaves_the_calls_alone() -> None:
    class FakeCalls:
        def add_hook(self, hook: object) -> None:
            raise AssertionError("no hook without an endpoint")

    assert tracing.install(FakeCalls(), {}) is False  # type: ignore[arg-type]
    assert not tracing.active()
