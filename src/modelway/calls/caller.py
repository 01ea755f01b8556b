"""Who is calling: the principal every metered call is admitted and recorded for."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import NamedTuple

from modelway.errors import PermissionDenied
from modelway.store.records import KeyRecord


class Caller(NamedTuple):
    """The principal behind a call, as limits, budgets and usage records see it."""

    key_id: str | None
    name: str
    user: str | None = None
    team: str | None = None
    is_master: bool = False
    key: KeyRecord | None = None

    def may_use(self, model: str) -> bool:
        """Whether the key's model globs allow ``model`` (no globs: every model)."""
        allowed = self.key.models if self.key is not None else ()
        return not allowed or any(fnmatchcase(model, glob) for glob in allowed)

    def check_model(self, model: str) -> None:
        """``PermissionDenied`` unless the key's model globs allow ``model``."""
        if not self.may_use(model):
            raise PermissionDenied(f"this key may not use model {model!r}")


#: An open gateway's caller, and the library's and the terminal chat's: no key, no limits.
ANONYMOUS = Caller(key_id=None, name="anonymous")
MASTER = Caller(key_id=None, name="master", is_master=True)
#: Who a request refused for its key was (no key, a wrong one): recorded as nobody's.
UNAUTHENTICATED = Caller(key_id=None, name="unauthenticated")
