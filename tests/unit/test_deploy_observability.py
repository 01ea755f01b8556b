"""The monitoring kit in ``deploy/``: the Grafana dashboard, its provisioning, the Prometheus
config and alert rules, and the compose services that run them.

Every metric the dashboard and the alerts name must be in the metrics table of
``docs/observability.md``; every query must be PromQL that Prometheus accepts
(``promtool check rules`` over them as recording rules); the alert rules pass
``promtool check rules`` and their own ``promtool test rules``. Whether each query returns
data from real gateways is ``tests/integration/test_prometheus_dashboard.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelway.observability.metrics import OVERHEAD_BUCKETS, REQUEST_BUCKETS, TTFT_BUCKETS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "modelway.json"
PROMETHEUS = DEPLOY / "prometheus"
SPEC = ROOT / "docs" / "observability.md"

#: What the test gives Grafana's own variables; template variables match everything.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "alias": ".*",
    "provider": ".*",
}
#: Series Prometheus makes itself (per scrape target), not the gateway.
PROMETHEUS_SERIES = frozenset({"up"})
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
METRIC_NAME = re.compile(r"\bmodelway_[a-z0-9_]+\b")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool() -> str:
    """promtool, from Debian's prometheus package (scripts/system-packages); never skipped."""
    found = shutil.which("promtool")
    if found is None:
        raise RuntimeError("promtool not found: run scripts/system-packages")
    return found


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """Every panel that shows data (rows hold none), nested rows included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        found += [panel, *panel.get("panels", [])]
    return [panel for panel in found if panel["type"] != "row"]


def concrete(expr: str) -> str:
    """The query as Grafana would send it with every variable at "All"."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            raise AssertionError(f"unknown variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]

    return _VARIABLE.sub(value, expr)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, query with its variables substituted) for every target of the dashboard."""
    return [
        (panel["title"], concrete(target["expr"]))
        for panel in panels()
        for target in panel["targets"]
    ]


def spec_metrics() -> dict[str, str]:
    """The metrics table of docs/observability.md: metric name -> type."""
    table: dict[str, str] = {}
    for line in SPEC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"`modelway_[a-z0-9_]+`", cells[0]):
            table[cells[0].strip("`")] = cells[1]
    assert len(table) >= 20, f"the metrics table of {SPEC.name} was not found"
    return table


def unknown_metrics(expressions: list[str]) -> set[str]:
    """Names in ``expressions`` that are no series of a metric in the spec table."""
    spec = spec_metrics()
    series = set(spec)
    for name, kind in spec.items():
        if kind == "histogram":
            series |= {name + suffix for suffix in _HISTOGRAM_SUFFIXES}
    return {name for expr in expressions for name in METRIC_NAME.findall(expr)} - series


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def run_promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# The dashboard


def test_the_dashboard_is_a_current_grafana_dashboard_with_a_datasource_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    assert board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("alias", "provider"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]


def test_the_dashboard_has_the_panels_operators_look_for() -> None:
    titles = " | ".join(panel["title"] for panel in panels()).lower()
    for wanted in (
        "request rate",
        "error ratio",
        "p50 / p95 / p99",
        "time to first token",
        "overhead",
        "upstream attempt latency",
        "tokens/s by type",
        "spend (usd/h) by provider and model",
        "deployment state",
        "cooldowns",
        "in-flight",
        "refusals",
        "usage queue depth",
        "usage records written",
        "usage spill",
        "usage store errors",
        "redis fail-open",
    ):
        assert wanted in titles, wanted


def test_rates_use_grafanas_rate_interval() -> None:
    for panel in panels():
        for target in panel["targets"]:
            for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                assert window in ("$__rate_interval", "$__range"), (panel["title"], window)


def test_every_metric_the_dashboard_names_is_in_the_spec_table() -> None:
    queries = [expr for _, expr in dashboard_queries()]
    assert not unknown_metrics(queries)
    names = {name for expr in queries for name in re.findall(r"\b[a-z_]+(?=\{)", expr)}
    assert names - {n for expr in queries for n in METRIC_NAME.findall(expr)} <= PROMETHEUS_SERIES


def test_the_spec_table_parser_catches_a_made_up_metric() -> None:
    assert unknown_metrics(["rate(modelway_made_up_total[1m])"]) == {"modelway_made_up_total"}
    assert not unknown_metrics(["modelway_request_duration_seconds_bucket"])


def test_every_dashboard_query_is_promql_prometheus_accepts(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query_{number}", "expr": expr}
        for number, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run_promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Prometheus: alert rules and config


def test_the_alert_rules_pass_promtool_check_rules() -> None:
    checked = run_promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    tested = run_promtool("test", "rules", "alerts-test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_shown_firing_by_the_promtool_unit_tests() -> None:
    """An alert no case expects to fire could never fire, and nothing would say so."""
    loaded = yaml.safe_load((PROMETHEUS / "alerts-test.yml").read_text())
    cases = [case for test in loaded["tests"] for case in test.get("alert_rule_test", [])]
    fired = {case["alertname"] for case in cases if case.get("exp_alerts")}
    named = {rule["alert"] for rule in alert_rules()}
    assert named - fired == set(), "alerts no promtool case shows firing"
    assert {case["alertname"] for case in cases} <= named


def test_every_quantile_alert_threshold_is_below_its_histograms_top_bucket() -> None:
    """histogram_quantile never returns more than the top finite bucket bound: a threshold
    at or above it can never be crossed."""
    buckets = {
        "modelway_request_duration_seconds": REQUEST_BUCKETS,
        "modelway_upstream_duration_seconds": REQUEST_BUCKETS,
        "modelway_time_to_first_token_seconds": TTFT_BUCKETS,
        "modelway_overhead_seconds": OVERHEAD_BUCKETS,
    }
    histograms = {name for name, kind in spec_metrics().items() if kind == "histogram"}
    assert histograms == set(buckets), "a histogram's buckets are missing here"
    checked = 0
    for rule in alert_rules():
        expr = " ".join(rule["expr"].split())
        if "histogram_quantile" not in expr:
            continue
        (name,) = {found.removesuffix("_bucket") for found in METRIC_NAME.findall(expr)}
        threshold = re.fullmatch(r"histogram_quantile\(.*\) > ([0-9.]+)", expr)
        assert threshold, f"{rule['alert']}: not `histogram_quantile(...) > N`"
        assert float(threshold.group(1)) < max(buckets[name]), rule["alert"]
        checked += 1
    assert checked >= 3


def test_every_alert_waits_says_why_and_names_only_spec_metrics() -> None:
    rules = alert_rules()
    assert len(rules) >= 8
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert not unknown_metrics([rule["expr"] for rule in rules])
    named = {rule["alert"] for rule in rules}
    for wanted in (
        "ModelwayHighErrorRatio",
        "ModelwayLatencyP95High",
        "ModelwayDeploymentCooling",
        "ModelwayUsageStoreErrors",
        "ModelwayUsageSpillGrowing",
        "ModelwayRedisFailOpen",
        "ModelwayBudgetRefusalsSpike",
    ):
        assert wanted in named


def test_the_prometheus_config_passes_promtool_check_config(tmp_path: Path) -> None:
    """On a copy whose container paths point at the repository's rules and a token file."""
    token = tmp_path / "token"
    token.write_text("a-metrics-token")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "/etc/prometheus/alerts.yml" in config
    assert "/run/secrets/modelway_metrics_token" in config
    config = config.replace("/etc/prometheus/alerts.yml", str(PROMETHEUS / "alerts.yml"))
    config = config.replace("/run/secrets/modelway_metrics_token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    checked = run_promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    job = yaml.safe_load(config)["scrape_configs"][0]
    assert job["job_name"] == "modelway"  # the name the dashboard and the alerts use
    assert job["authorization"]["credentials_file"] == str(token)


# Compose and Grafana provisioning


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_runs_prometheus_and_grafana_beside_the_gateways() -> None:
    services = compose()["services"]
    for kept in ("gateway-1", "gateway-2", "lb", "postgres", "redis"):
        assert kept in services
    mounts: dict[str, str] = {}
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source, target, *_ = volume.split(":")
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), volume
                mounts[target] = source
    assert mounts["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == "./prometheus/alerts.yml"
    assert mounts["/var/lib/grafana/dashboards"] == "./grafana/dashboards"
    assert "modelway_metrics_token" in services["prometheus"]["secrets"]
    # No credential in the file: each comes from the environment.
    assert compose()["secrets"]["modelway_metrics_token"] == {"environment": "MODELWAY_MASTER_KEY"}
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password.startswith("${GRAFANA_ADMIN_PASSWORD")
    for name in ("prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"]
    boards = yaml.safe_load((provisioning / "dashboards" / "modelway.yaml").read_text())
    (provider,) = boards["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.parametrize("variable", ["$alias", "${provider}", "$__rate_interval"])
def test_grafana_variables_are_substituted(variable: str) -> None:
    assert "$" not in concrete(f'rate(m{{a=~"{variable}"}}[$__rate_interval])')
