"""Deployment health: cooldown after repeated failures, Retry-After rests, probing back in."""

from __future__ import annotations

from modelway.config import Cooldown
from modelway.errors import BadRequest, RateLimited, UpstreamStatusError
from modelway.routing.deployments import DeploymentState


def state(failures: int = 2, window: float = 10.0, seconds: float = 5.0) -> DeploymentState:
    return DeploymentState("smart#0", Cooldown(failures=failures, window=window, seconds=seconds))


def server_error() -> UpstreamStatusError:
    return UpstreamStatusError("boom", upstream_status=500)


def test_a_deployment_is_cooled_down_after_enough_failures_within_the_window() -> None:
    s = state(failures=2)
    s.failed(server_error(), now=100.0)
    assert s.admit(100.5)
    s.failed(server_error(), now=101.0)
    assert s.condition(101.0) == "cooling"
    assert not s.admit(105.9)


def test_failures_further_apart_than_the_window_do_not_add_up() -> None:
    s = state(failures=2, window=10.0)
    s.failed(server_error(), now=100.0)
    s.failed(server_error(), now=111.0)
    assert s.condition(111.0) == "healthy"


def test_after_its_rest_exactly_one_request_probes_the_deployment() -> None:
    s = state(failures=1, seconds=5.0)
    s.failed(server_error(), now=100.0)
    assert s.condition(105.0) == "probing"
    assert s.admit(105.0)
    assert not s.admit(105.1)  # the probe is running: others still skip it


def test_a_successful_probe_brings_the_deployment_back() -> None:
    s = state(failures=1)
    s.failed(server_error(), now=100.0)
    assert s.admit(106.0)
    s.succeeded(0.2)
    assert s.condition(106.1) == "healthy"
    assert s.admit(106.1) and s.admit(106.2)


def test_a_failed_probe_rests_the_deployment_again() -> None:
    s = state(failures=1, seconds=5.0)
    s.failed(server_error(), now=100.0)
    assert s.admit(106.0)
    s.failed(server_error(), now=106.0)
    assert s.condition(110.9) == "cooling"
    assert s.admit(111.0)


def test_retry_after_rests_the_deployment_until_the_upstream_said() -> None:
    s = state(failures=5)
    s.failed(RateLimited("slow down", retry_after=2.0), now=100.0)
    assert not s.admit(101.9)
    assert s.admit(102.0)


def test_a_429_rests_as_long_as_it_asked_and_counts_no_failure_toward_a_cooldown() -> None:
    s = state(failures=2, seconds=30.0)
    for now in (100.0, 102.0, 104.0):  # each waited out, each asked again
        s.failed(RateLimited("slow down", retry_after=2.0), now=now)
        assert s.rate_limited
    assert s.admit(106.0)  # not the 30 s of two failures
    s.failed(server_error(), now=106.0)
    s.failed(server_error(), now=106.5)
    assert s.condition(110.0) == "cooling" and not s.rate_limited


def test_the_callers_own_mistakes_never_cool_a_deployment() -> None:
    s = state(failures=1)
    s.failed(BadRequest("bad field"), now=100.0)
    assert s.condition(100.0) == "healthy"


def test_latency_is_a_moving_average_of_time_to_first_byte() -> None:
    s = state()
    s.succeeded(1.0)
    assert s.latency == 1.0
    s.succeeded(2.0)
    assert s.latency is not None and 1.0 < s.latency < 2.0


def test_the_health_snapshot_names_the_state_and_how_long_it_rests() -> None:
    s = state(failures=1, seconds=5.0)
    s.failed(server_error(), now=100.0)
    snapshot = s.snapshot(102.0)
    assert snapshot["state"] == "cooling"
    assert snapshot["cooling_for_seconds"] == 3.0
    assert snapshot["deployment"] == "smart#0"
    # Why it rests, since its failures start over with the rest (a user saw "cooling, 0").
    assert (snapshot["recent_failures"], snapshot["cooling_because"]) == (0, "1 failure")
    assert snapshot["cooldowns"] == 1
    s.succeeded(0.5)
    assert s.snapshot(110.0)["cooling_because"] is None


def rate_limited(seconds: float) -> UpstreamStatusError:
    return UpstreamStatusError(
        "slow down", upstream_status=429, headers={"Retry-After": f"{seconds:g}"}
    )


def test_a_probe_answered_429_with_retry_after_rests_that_long_not_the_cooldown() -> None:
    # A user saw the probe's 429 (Retry-After 5) bench the deployment for the 30 s
    # cooldown: every caller got 503 no_deployment_available for 30 s instead of a 429.
    s = state(failures=1000, seconds=30.0)
    s.failed(rate_limited(5), now=100.0)
    assert s.admit(105.0)  # the rest is over: this call is the probe
    s.failed(rate_limited(5), now=105.0)
    assert s.rate_limited  # every caller is told 429, as the upstream said
    assert s.condition(109.9) == "cooling"
    assert s.admit(110.0)  # 5 s later the next probe, not 30
    assert s.snapshot(106.0)["cooling_because"] == "upstream asked to wait 5 s"


def test_a_failed_probe_never_comes_back_before_the_upstreams_retry_after() -> None:
    s = state(failures=1, seconds=5.0)
    s.failed(server_error(), now=100.0)
    assert s.admit(105.0)
    overloaded = UpstreamStatusError("busy", upstream_status=503, headers={"Retry-After": "20"})
    s.failed(overloaded, now=105.0)
    assert s.condition(124.9) == "cooling" and not s.rate_limited
    assert s.snapshot(106.0)["cooling_because"] == "probe failed"


def test_rests_are_counted_by_why_they_began() -> None:
    # An upstream's Retry-After is no failure: alerts on cooldowns count failures only.
    s = state(failures=2, seconds=5.0)
    s.failed(rate_limited(1), now=100.0)
    overloaded = UpstreamStatusError("busy", upstream_status=503, headers={"Retry-After": "1"})
    s.failed(overloaded, now=101.0)  # a rest asked for, and one failure
    assert s.rests == {"retry_after": 2, "failures": 0, "probe_failed": 0}
    s.failed(server_error(), now=101.5)  # the second failure: a cooldown beyond the rest
    assert s.rests == {"retry_after": 2, "failures": 1, "probe_failed": 0}
    assert s.admit(106.5)
    s.failed(server_error(), now=106.5)
    assert s.rests == {"retry_after": 2, "failures": 1, "probe_failed": 1}
    assert s.cooldowns == 4  # /health's count: every rest


def test_a_deployment_whose_rest_is_over_waits_for_its_probe_until_a_call_comes() -> None:
    s = state(failures=1, seconds=5.0)
    s.failed(server_error(), now=100.0)
    assert s.condition(200.0) == "probing" and not s.probe_running  # idle: nobody asked
    assert s.admit(200.0)
    assert s.probe_running
