"""Names people give what the store holds: keys, and teams (which keys' ``owner_team`` and
usage records' ``team`` hold). Each is shown in tables and written in request lines, so
it is bounded and printable; a team's name is also a path segment of the admin API."""

from __future__ import annotations

import re

from modelway.errors import BadRequest

#: The longest name a key or a team may have.
MAX_NAME = 200
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Path segments a URL parser resolves away (``/teams/..`` is ``/``), even percent-encoded.
_DOT_SEGMENTS = frozenset({".", ".."})


def check_key_name(name: str) -> None:
    """BadRequest unless ``name`` may name a key: not blank, bounded, no control characters."""
    if not name.strip():
        raise BadRequest("a key needs a name")
    if len(name) > MAX_NAME or _CONTROL.search(name):
        raise BadRequest(f"a key's name: at most {MAX_NAME} characters, none of them control ones")


def check_team_name(name: str, *, field: str = "name") -> None:
    """BadRequest (naming ``field``) unless ``name`` may name a team: as a key's name, and
    one path segment of ``/admin/api/teams/{name}`` (no ``/``, not ``.`` or ``..``), with no
    space around it (``" ml"`` and ``"ml"`` would look alike in every table)."""
    if not name.strip():
        raise BadRequest(f"{field}: a team needs a name")
    if name != name.strip():
        raise BadRequest(f"{field}: a team's name has no space at its start or end")
    if len(name) > MAX_NAME or _CONTROL.search(name):
        raise BadRequest(
            f"{field}: a team's name has at most {MAX_NAME} characters, none of them control ones"
        )
    if "/" in name or name in _DOT_SEGMENTS:
        raise BadRequest(f"{field}: a team's name has no '/' and is not '.' or '..'")
