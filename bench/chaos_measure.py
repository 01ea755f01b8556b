"""make chaos's counting: the calls the load sent, the faults it suffered, and the
report — each failure and each missing usage record put down to the fault it falls in,
and the targets (docs/deploy.md, issue 19) checked. The run itself: bench/chaos.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.chaos_topology import LIMITED

#: Seconds before a SIGKILL whose answers may not be stored yet: the usage writer's batch
#: interval (0.5 s) and one batch insert. The suite's short run allows more (a busy machine).
UNWRITTEN_BEFORE_KILL = 1.0
#: Seconds after a fault's recovery during which a failure still belongs to it.
AFTERMATH = 1.0


@dataclass
class Call:
    """One request the load sent: when, with which key, and how it ended."""

    request_id: str
    key: str
    stream: bool
    start: float
    end: float = 0.0
    #: ``answered`` (200, whole answer), ``refused`` (429), ``failed`` (anything else).
    outcome: str = "failed"
    detail: str = ""
    #: The replica (``127.0.0.1:port``) nginx passed it to last, when it answered at all.
    upstream: str = ""
    #: Every replica nginx tried for it, in order (``x-chaos-upstream``).
    tried: tuple[str, ...] = ()


@dataclass
class Fault:
    """One fault: when it began and when what it broke was back (seconds into the run)."""

    name: str
    start: float
    end: float = 0.0
    #: The replica it stopped (``127.0.0.1:port``), if it stopped one.
    replica: str = ""
    #: When the replica it killed was gone (its process reaped).
    stopped: float = 0.0
    #: Requests in flight on that replica (on every one for the others) when it began,
    #: for a kill: sent to it at any moment until it was back (its listen backlog, and
    #: calls nginx still sent down a kept-alive connection to it, too).
    in_flight: int = 0
    #: What readiness and /health answered on each replica while it lasted.
    probes: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    """The counts of one run and the targets they meet or miss."""

    seconds: float
    sent: int
    answered: int
    refused: int
    failed: dict[str, int]
    records_stored: int
    records_for_answers: int
    records_missing: dict[str, int]
    records_duplicated: int
    limited_rpm: int
    #: The most answers the limited key got in any 60 s (what its RPM bounds).
    limited_served_most_in_60s: int
    #: Calls of the limited key that failed (a fault cut them off; admitted or not, unknown).
    limited_failed: int
    faults: list[Fault]
    unwritten_bound: dict[str, int]
    tracebacks: int
    outage_log_lines: dict[str, int]
    unwritten_window: float = UNWRITTEN_BEFORE_KILL
    #: Each failed call: when, where nginx sent it, and what it got (the first 20).
    failures: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """The targets this run missed (empty: every target met)."""
        problems = []
        for fault in self.faults:
            failed = self.failed.get(fault.name, 0)
            missing = self.records_missing.get(fault.name, 0)
            if fault.name.startswith("kill -9"):
                if failed > fault.in_flight:
                    problems.append(f"{fault.name}: {failed} failed, > {fault.in_flight} in flight")
                bound = self.unwritten_bound.get(fault.name, 0)
                if missing > bound:
                    problems.append(f"{fault.name}: {missing} records lost, > {bound} unwritten")
            else:
                if failed:
                    problems.append(f"{fault.name}: {failed} requests failed")
                if missing:
                    problems.append(f"{fault.name}: {missing} usage records lost")
            # Readiness asks the store and Redis: 503 while one is down, never anything else.
            for probe, count in fault.probes.items():
                if probe.startswith("ready ") and probe not in ("ready 200", "ready 503") and count:
                    problems.append(f"{fault.name}: readiness answered {probe} ({count} times)")
        for where in ("none",):
            if self.failed.get(where):
                problems.append(f"{self.failed[where]} requests failed outside any fault")
            if self.records_missing.get(where):
                problems.append(f"{self.records_missing[where]} records lost outside any fault")
        if self.records_duplicated:
            problems.append(f"{self.records_duplicated} usage records stored twice")
        if self.limited_served_most_in_60s > self.limited_rpm:
            problems.append(
                f"the limited key was served {self.limited_served_most_in_60s} times in "
                f"60 s, over its {self.limited_rpm} RPM"
            )
        if self.tracebacks:
            problems.append(f"{self.tracebacks} tracebacks in the replicas' logs")
        return problems

    def lines(self) -> list[str]:
        """The report as printed."""
        out = [
            f"load: {self.sent} requests in {self.seconds:.0f} s "
            f"({self.sent / self.seconds:.0f}/s): {self.answered} answered, "
            f"{self.refused} refused by the rate limit (429), "
            f"{sum(self.failed.values())} failed",
        ]
        for fault in self.faults:
            out.append(
                f"  {fault.name:<28} at {fault.start:5.1f} s, back at {fault.end:5.1f} s: "
                f"{self.failed.get(fault.name, 0)} failed "
                f"({fault.in_flight} in flight{' on it' if fault.replica else ''} then), "
                f"{self.records_missing.get(fault.name, 0)} records lost"
                + (
                    f" (<= {self.unwritten_bound[fault.name]} it answered in its last "
                    f"{self.unwritten_window:g} s)"
                    if fault.name in self.unwritten_bound
                    else ""
                )
            )
            if fault.probes:
                probes = ", ".join(f"{name}: {n}" for name, n in sorted(fault.probes.items()))
                out.append(f"  {'':<28} during it: {probes}")
        out += [
            f"  {'outside any fault':<28} {self.failed.get('none', 0)} failed, "
            f"{self.records_missing.get('none', 0)} records lost",
            f"usage records: {self.records_stored} stored, {self.records_for_answers} of "
            f"{self.answered} answers have theirs, {self.records_duplicated} duplicated",
            f"limited key ({self.limited_rpm} RPM): at most {self.limited_served_most_in_60s} "
            f"served in any 60 s over all replicas ({self.limited_failed} more cut off by a "
            "fault)",
            f"replica logs: {self.tracebacks} tracebacks; outage lines: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.outage_log_lines.items())),
        ]
        out += [f"  failed: {failure}" for failure in self.failures]
        problems = self.problems()
        out.append("targets: all met" if not problems else "targets MISSED: " + "; ".join(problems))
        return out


def measure(
    calls: list[Call],
    faults: list[Fault],
    records: list[tuple[str, float, str | None, int]],
    limited_rpm: int,
    seconds: float,
    logs: list[str],
    unwritten_window: float = UNWRITTEN_BEFORE_KILL,
) -> Report:
    """Count the run: failures and missing records each put down to the fault they fall in."""
    stored = Counter(request_id for request_id, *_ in records)
    for fault in faults:
        if fault.replica:  # exactly, now that each call says where it went
            # On it: nginx passed the call to it at some point (not only last), or the call
            # failed before nginx said where it went (no headers: it cannot be put elsewhere),
            # from the kill until it was back — nginx may still send a call down a kept-alive
            # connection to it after it was gone (a 502), until it notices.
            fault.in_flight = sum(
                (fault.replica in call.tried or (call.outcome == "failed" and not call.tried))
                and call.start <= max(fault.end, fault.stopped)
                and call.end >= fault.start
                for call in calls
            )
    failed: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    unwritten: Counter[str] = Counter()
    for call in calls:
        if call.outcome == "failed":
            failed[_fault_of(call.start, call.end, faults)] += 1
        elif call.outcome == "answered":
            for fault in faults:
                if _unwritten_at(call, fault, unwritten_window):
                    unwritten[fault.name] += 1
            if call.request_id not in stored:
                missing[_record_fault_of(call, faults, unwritten_window)] += 1
    answered = [call for call in calls if call.outcome == "answered"]
    # Served, not "not refused": a call a kill cut off may have been refused or never
    # reached a limiter, so only answers are known to have been admitted.
    served = sorted(c.start for c in calls if c.key == LIMITED and c.outcome == "answered")
    return Report(
        seconds=seconds,
        sent=len(calls),
        answered=len(answered),
        refused=sum(call.outcome == "refused" for call in calls),
        failed=dict(failed),
        records_stored=len(records),
        records_for_answers=sum(call.request_id in stored for call in answered),
        records_missing=dict(missing),
        records_duplicated=sum(count - 1 for count in stored.values() if count > 1),
        limited_rpm=limited_rpm,
        limited_served_most_in_60s=_most_in_window(served, 60.0),
        limited_failed=sum(c.key == LIMITED and c.outcome == "failed" for c in calls),
        faults=faults,
        unwritten_bound=dict(unwritten),
        tracebacks=sum(log.count("Traceback") for log in logs),
        outage_log_lines={
            "unreachable": sum(log.count(" unreachable (") for log in logs),
            "answers again": sum(log.count(" answers again after ") for log in logs),
        },
        unwritten_window=unwritten_window,
        failures=[
            f"{call.request_id} {call.start:.2f}-{call.end:.2f} s via "
            f"{','.join(call.tried) or '?'}: {call.detail[:120]}"
            for call in calls
            if call.outcome == "failed"
        ][:20],
    )


def _unwritten_at(call: Call, fault: Fault, window: float) -> bool:
    """Whether the killed replica answered ``call`` too shortly before dying to store it."""
    return (
        fault.name.startswith("kill -9")
        and call.upstream == fault.replica
        and fault.start - window <= call.end <= max(fault.start, fault.stopped)
    )


def _fault_of(start: float, end: float, faults: list[Fault]) -> str:
    """The fault whose time (and aftermath) the interval overlaps, or ``none``."""
    for fault in faults:
        if start <= fault.end + AFTERMATH and end >= fault.start:
            return fault.name
    return "none"


def _record_fault_of(call: Call, faults: list[Fault], window: float) -> str:
    """A missing record belongs to a kill if the killed replica answered it just before,
    else to the fault its request overlaps, else to none."""
    for fault in faults:
        if _unwritten_at(call, fault, window):
            return fault.name
    return _fault_of(call.start, call.end, faults)


def _most_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (sorted) inside any span of ``window`` seconds."""
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most
