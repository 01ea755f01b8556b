"""make chaos's counting, on calls made here (the run itself is tests/integration/test_chaos.py)."""

from __future__ import annotations

from bench.chaos_measure import Call, Fault, measure
from bench.chaos_topology import LIMITED

REPLICA = "127.0.0.1:9001"


def limited(number: int, start: float, outcome: str, tried: tuple[str, ...] = ()) -> Call:
    return Call(f"chaos-{number}", LIMITED, False, start, start + 0.01, outcome, tried=tried)


def test_a_limited_call_a_kill_cut_off_is_not_counted_as_served() -> None:
    # The key's 3 RPM were used up before the kill; the call nginx answered 502 when the
    # replica died is reported beside the count, not in it (it may never have been admitted).
    calls = [limited(n, 0.1 * n, "answered", (REPLICA,)) for n in range(3)]
    calls += [limited(3, 3.0, "failed", (REPLICA,)), limited(4, 3.5, "refused", (REPLICA,))]
    kill = Fault("kill -9 replica-1", 3.0, 4.5, replica=REPLICA, stopped=3.02)
    report = measure(calls, [kill], [], 3, 20.0, [])
    assert report.limited_served_most_in_60s == 3
    assert report.limited_failed == 1
    assert not any("limited key" in problem for problem in report.problems())


def test_one_answer_over_the_rpm_is_a_missed_target() -> None:
    calls = [limited(n, 0.1 * n, "answered") for n in range(4)]
    records = [(call.request_id, call.end, "mock/echo", 200) for call in calls]
    report = measure(calls, [], records, 3, 20.0, [])
    assert report.problems() == ["the limited key was served 4 times in 60 s, over its 3 RPM"]


def test_answers_more_than_60_s_apart_are_in_different_windows() -> None:
    calls = [limited(n, 30.0 * n, "answered") for n in range(4)]  # 0, 30, 60, 90 s
    report = measure(calls, [], [], 2, 100.0, [])
    assert report.limited_served_most_in_60s == 2
