"""What keeps a browser from being turned against the gateway: Host, origin, content type.

A browser on the operator's machine or network can reach the gateway when an attacker's
page cannot, and it will send requests for that page:

- **DNS rebinding.** A page at ``http://attacker.example:8080`` whose name then resolves
  to 127.0.0.1 is same-origin with the gateway and reads its answers. Its requests still
  say ``Host: attacker.example:8080``. An open gateway (no key to stop the page) answers
  only host names it knows (``HostPolicy``): 421 otherwise.
- **Cross-site requests (CSRF).** Any page may send a "simple" POST (``text/plain``, a
  form) anywhere without asking first; it cannot read the answer, but the request acts:
  it connects a provider, creates chats, spends the operator's provider credit. Refused
  (403) where no key stands in the way: every state-changing request while the gateway
  is open, and always on the web chat's API (``BROWSER_PATHS``), whose only callers are
  the gateway's own pages. API clients (SDKs, curl) send no ``Origin`` and are not
  affected; with keys, the rest of the API needs a key a page cannot borrow.
- The web chat's API takes only JSON (415 otherwise): a page of another origin cannot
  send ``Content-Type: application/json`` without the browser asking the gateway first
  (a CORS preflight, which the gateway never grants).

Which request is cross-origin is decided as Go's ``net/http.CrossOriginProtection``
decides it: ``Sec-Fetch-Site`` when the browser sends it (every current one does; only
``same-origin`` and ``none`` pass, and a reverse proxy that rewrites ``Host`` cannot
confuse it), else ``Origin`` against ``Host``; a request with neither is no browser's.
Both entries use ``Gateway.refused``: the ASGI app for every request, the RSGI worker
for the chat calls it serves itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from modelway.calls.relay import Headers
from modelway.errors import (
    CrossSiteRequest,
    MisdirectedRequest,
    ModelwayError,
    UnsupportedMediaType,
)

#: Methods that change nothing; everything else may.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The API the gateway's own pages call: never from another origin, always JSON. (The
#: admin API takes the master key as a header, or a session cookie whose requests its
#: own guard checks for a CSRF token and origin (``admin_guard``).)
BROWSER_PATHS = ("/chat/api/",)
#: Self-service sign-up: no key is needed to open an account, so a page of another site
#: could open accounts from its visitors' browsers (each one counting against the
#: visitor's address's budget of failed key checks): cross-site requests are refused.
SIGNUP_PATHS = ("/auth/",)
#: Bind addresses that mean "every interface".
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
#: ``Sec-Fetch-Site`` values of a request the page's own origin (or the user) made.
_SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})
#: Distinct ``Host`` values whose decision is remembered (they are few in practice).
_HOST_DECISIONS = 256
_SHOWN_CHARS = 100


def host_name(host: str) -> str:
    """The name in a ``Host`` value or an address: no port, brackets or final dot, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


class HostPolicy:
    """Which ``Host`` names an open gateway answers to.

    Loopback names always (``localhost``, 127.0.0.0/8, ``[::1]``, any port); the names in
    ``server.allowed_hosts`` (``*``: any); the address ``modelway serve`` was bound to
    when it is one address; any IP address when it was bound to every interface
    (``0.0.0.0`` or ``::``, which an open gateway allows only with ``--insecure``). An
    address is safe to answer to: rebinding needs a name the attacker owns.
    """

    def __init__(self, allowed_hosts: Iterable[str], bind_host: str) -> None:
        names = {host_name(name) for name in allowed_hosts}
        self._any_name = "*" in names
        self._any_address = bind_host.strip() in WILDCARD_HOSTS
        if not self._any_address:
            names.add(host_name(bind_host))
        self._names = frozenset(names | {"localhost"})
        self._decided: dict[str | None, bool] = {}

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header is answered (no header: no browser)."""
        decided = self._decided.get(host)
        if decided is None:
            decided = self._decide(host)
            if len(self._decided) < _HOST_DECISIONS:  # full: new names are decided each time
                self._decided[host] = decided
        return decided

    def _decide(self, host: str | None) -> bool:
        if host is None or self._any_name:
            return True
        name = host_name(host)
        if name in self._names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return address.is_loopback or self._any_address


class BrowserGuard:
    """The checks every request passes before any route sees it (module docstring)."""

    def __init__(self, hosts: HostPolicy) -> None:
        self.hosts = hosts

    def refusal(
        self, method: str, path: str, headers: Headers, open_mode: bool
    ) -> ModelwayError | None:
        """Why this request is refused, or None; ``open_mode``: no key is needed to call."""
        if open_mode and not self.hosts.allows(headers.get("host")):
            return MisdirectedRequest(_misdirected(headers.get("host") or ""))
        if method in SAFE_METHODS:
            return None
        browser_api = path.startswith(BROWSER_PATHS)
        if not (browser_api or open_mode or path.startswith(SIGNUP_PATHS)):
            return None  # the caller's key is the credential, and no page has it ambiently
        if cross_origin(headers):
            origin = headers.get("origin") or "another site"
            return CrossSiteRequest(
                f"cross-site request refused: {method} {path} from {_shown(origin)}. "
                "The gateway takes state-changing requests only from its own pages"
                + (
                    " while it runs with no key (open mode)"
                    if open_mode and not browser_api
                    else ""
                )
                + "; API clients send no Origin header."
            )
        if browser_api and method != "DELETE" and not _is_json(headers.get("content-type")):
            return UnsupportedMediaType(
                f"{method} {path} takes a JSON body: send Content-Type: application/json"
            )
        return None


def cross_origin(headers: Headers) -> bool:
    """Whether a browser sent this request for a page of another origin (module docstring)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in _SAME_ORIGIN_SITES
    origin = headers.get("origin")
    if origin is None:
        return False  # no browser sent it (they all send Origin on a cross-origin POST)
    host = headers.get("host")
    _, separator, authority = origin.strip().lower().partition("://")
    # "null" (a sandboxed frame, a file: page) has no authority and is never same-origin.
    return not separator or host is None or authority != host.strip().lower()


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _misdirected(host: str) -> str:
    return (
        f"this gateway runs with no key (open mode) and answers only to loopback host "
        f"names (localhost, 127.0.0.1, [::1]), not to {_shown(host)!r}: a web page could "
        "otherwise reach it through a name of its own (DNS rebinding). To use that name, "
        "add it to server.allowed_hosts in modelway.yaml, or set MODELWAY_MASTER_KEY."
    )


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
