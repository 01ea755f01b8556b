"""Self-service sign-up: an account (email + password), then keys it owns.

Off unless ``server.signup`` is true in the config; then ``/auth/register`` and
``/auth/keys`` answer 404. Passwords are stored as Argon2id hashes by the store; a
key made here belongs to the account (``owner_user`` is its email) and its plaintext
is in the answer only.

Both endpoints run Argon2 for an unauthenticated caller, so both spend the client
address's budget of failed key checks (``key_attempts``), shared with API keys and
admin sign-ins: a wrong password at ``/auth/keys`` counts as one failure, and every
registration counts as one whatever its answer. Past the limit, 429 with
``Retry-After`` before any Argon2 run.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import AuthenticationError, NotFound
from modelway.gateway.admin_api import Label, NewKey, create_key, decode_body, json_response
from modelway.gateway.auth import peer_host
from modelway.gateway.http import answers_errors, read_body
from modelway.gateway.state import GatewayState
from modelway.store.users import WRONG_CREDENTIALS

SIGNUP_OFF = "self-service sign-up is off on this gateway (server.signup in modelway.yaml)"
#: Accounts post small bodies; a password is at most a kilobyte.
MAX_BODY_BYTES = 16 * 1024


class Registration(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /auth/register``."""

    email: str
    password: str

    def __repr__(self) -> str:  # never the password, in any log or error
        return f"Registration(email={self.email!r})"


class KeyRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /auth/keys``: an account's credentials and a name for the new key."""

    email: str
    password: str
    name: Label

    def __repr__(self) -> str:  # never the password, in any log or error
        return f"KeyRequest(email={self.email!r}, name={self.name!r})"


def _signup_state(request: Request) -> GatewayState:
    """The gateway's state; ``NotFound`` while sign-up is off."""
    state: GatewayState = request.app.state.gateway
    if not state.config.server.signup:
        raise NotFound(SIGNUP_OFF)
    return state


async def _read(request: Request, state: GatewayState) -> bytes:
    return await read_body(request, state.body_limits._replace(max_bytes=MAX_BODY_BYTES))


@answers_errors
async def register(request: Request) -> Response:
    """Open an account; the answer is the account (id, email), never the password."""
    state = _signup_state(request)
    body = decode_body(await _read(request, state), Registration)
    user = await state.auth.attempts.spend(
        peer_host(request.scope), lambda: state.store.users.register(body.email, body.password)
    )
    return json_response(user, status=201)


@answers_errors
async def new_key(request: Request) -> Response:
    """A new key owned by the account these credentials open (wrong ones: 401)."""
    state = _signup_state(request)
    body = decode_body(await _read(request, state), KeyRequest)
    user = await state.auth.attempts.attempt(
        peer_host(request.scope), lambda: state.store.users.authenticate(body.email, body.password)
    )
    try:
        created = await create_key(
            state.store, NewKey(name=body.name, owner_user=user.email), account=user.id
        )
    except NotFound:  # deleted while its password was checked
        raise AuthenticationError(WRONG_CREDENTIALS) from None
    if await state.store.users.get(user.id) is None:
        # Deleted as the key was stored (SQLite has no row lock to hold it off): the
        # deletion revoked the keys it owned then, not this one, which must not work.
        await state.store.keys.revoke(created["id"])
        raise AuthenticationError(WRONG_CREDENTIALS)
    return json_response(created, status=201)


ROUTES = [
    Route("/auth/register", register, methods=["POST"]),
    Route("/auth/keys", new_key, methods=["POST"]),
]
