"""Where the gateway's log lines go and how many: ``logging:`` in ``modelway.yaml``.

Each worker process calls ``configure_logging`` once, when it builds its app: the
``modelway`` loggers write to stderr at ``logging.level``. Embedding the gateway
(``create_app`` in a test or another program) leaves logging as the host set it up.
``logging.log_bodies`` asks for each request body to be logged (``log_body``); it is
off by default because bodies are the users' conversations.
"""

from __future__ import annotations

import logging
import sys

from modelway.config import LoggingSettings

#: A body logged with ``log_bodies`` is cut after this many bytes.
BODY_LOG_LIMIT = 64 * 1024

_HANDLER_NAME = "modelway-stderr"
_bodies = logging.getLogger("modelway.bodies")


def configure_logging(settings: LoggingSettings) -> None:
    """Send the ``modelway`` loggers to stderr at ``settings.level`` (again: replaced)."""
    root = logging.getLogger("modelway")
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    root.propagate = False


def log_body(request_id: str, path: str, raw: bytes) -> None:
    """One request body, at info level under ``modelway.bodies`` (cut at the limit)."""
    shown = raw[:BODY_LOG_LIMIT].decode("utf-8", errors="replace")
    cut = f" (first {BODY_LOG_LIMIT} of {len(raw)} bytes)" if len(raw) > BODY_LOG_LIMIT else ""
    _bodies.info("%s %s body%s: %s", request_id, path, cut, shown)
