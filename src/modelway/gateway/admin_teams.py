"""Teams and accounts in the admin API: ``/admin/api/teams`` and ``/admin/api/users``.

A team's budget holds for all its keys together (a key belongs to the team its
``owner_team`` names) and is enforced at admission like a key's (``team_budgets``);
a change here holds on this worker at once, on the others within 5 s. Accounts made
here may be admins (``is_admin``: they can sign in to the dashboard); a password is
stored only as an Argon2id hash and never shown.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import NotFound
from modelway.gateway.admin_api import Label, decode_body, json_response
from modelway.gateway.admin_guard import admin_only
from modelway.gateway.http import check_nesting, read_body
from modelway.gateway.state import GatewayState
from modelway.limits.budgets import period_starts
from modelway.store import TeamRecord, UserRecord
from modelway.store.records import BudgetPeriod

Dollars = Annotated[float, msgspec.Meta(ge=0)]
Email = Annotated[str, msgspec.Meta(max_length=320)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]


class NewTeam(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/api/teams``."""

    name: Label
    budget_usd: Dollars | None = None
    budget_period: BudgetPeriod = "month"
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class TeamChanges(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /admin/api/teams/{name}``: only the fields sent change; ``null`` clears."""

    budget_usd: Dollars | UnsetType | None = UNSET
    budget_period: BudgetPeriod | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET


class NewMember(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/api/teams/{name}/members``: an existing account, by email."""

    email: Email


class NewUser(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/api/users``."""

    email: Email
    password: Password
    is_admin: bool = False

    def __repr__(self) -> str:  # never the password
        return f"NewUser(email={self.email!r}, is_admin={self.is_admin!r})"


class UserChanges(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /admin/api/users/{id}``: a new password and/or whether it is an admin."""

    is_admin: bool | None = None
    password: Password | None = None

    def __repr__(self) -> str:  # never the password
        return f"UserChanges(is_admin={self.is_admin!r})"


def _team_view(team: TeamRecord, figures: dict[str, tuple[int, float]]) -> dict[str, Any]:
    key_count, spend = figures.get(team.name, (0, 0.0))
    view: dict[str, Any] = msgspec.to_builtins(team)
    view["members"] = [msgspec.to_builtins(member) for member in team.members]
    return {**view, "key_count": key_count, "spend_usd": spend}


async def _figures(state: GatewayState) -> dict[str, tuple[int, float]]:
    return await state.store.teams.figures(period_starts(time.time()))


async def _one_team(state: GatewayState, name: str) -> dict[str, Any]:
    team = await state.store.teams.get(name)
    if team is None:
        raise NotFound(f"no team named {name!r}")
    return _team_view(team, await _figures(state))


async def _budgets_changed(state: GatewayState) -> None:
    """This worker applies team budgets at once; the others within ``REFRESH_SECONDS``."""
    accounts = state.calls.accounts
    await accounts.team_budgets.refresh(state.store, accounts.spending.seed)


@admin_only
async def get_teams(request: Request) -> Response:
    """Every team with its members, live keys and spend this budget period."""
    state: GatewayState = request.app.state.gateway
    figures = await _figures(state)
    teams = [_team_view(team, figures) for team in await state.store.teams.list()]
    return json_response({"teams": teams})


@admin_only
async def post_team(request: Request) -> Response:
    """Create a team."""
    state: GatewayState = request.app.state.gateway
    new = decode_body(await read_body(request, state.body_limits), NewTeam)
    name = new.name.strip()  # the store checks the rest (``store.names``), for the CLI too
    check_nesting("metadata", new.metadata)
    await state.store.teams.create(
        name, budget_usd=new.budget_usd, budget_period=new.budget_period, metadata=new.metadata
    )
    await _budgets_changed(state)
    return json_response(await _one_team(state, name), status=201)


@admin_only
async def get_team(request: Request) -> Response:
    """One team."""
    state: GatewayState = request.app.state.gateway
    return json_response(await _one_team(state, request.path_params["name"]))


@admin_only
async def patch_team(request: Request) -> Response:
    """Change a team's budget or metadata."""
    state: GatewayState = request.app.state.gateway
    name = request.path_params["name"]
    body = decode_body(await read_body(request, state.body_limits), TeamChanges)
    changes = {
        field: getattr(body, field)
        for field in body.__struct_fields__
        if getattr(body, field) is not UNSET
    }
    if "metadata" in changes:
        changes["metadata"] = changes["metadata"] or {}
        check_nesting("metadata", changes["metadata"])
    if not await state.store.teams.update(name, changes):
        raise NotFound(f"no team named {name!r}")
    await _budgets_changed(state)
    return json_response(await _one_team(state, name))


@admin_only
async def delete_team(request: Request) -> Response:
    """Delete a team and its memberships; its keys keep their ``owner_team``, unbudgeted."""
    state: GatewayState = request.app.state.gateway
    name = request.path_params["name"]
    if not await state.store.teams.delete(name):
        raise NotFound(f"no team named {name!r}")
    await _budgets_changed(state)
    return Response(status_code=204)


@admin_only
async def post_member(request: Request) -> Response:
    """Put an account (by email) in a team; the team afterwards."""
    state: GatewayState = request.app.state.gateway
    name = request.path_params["name"]
    new = decode_body(await read_body(request, state.body_limits), NewMember)
    user = await state.store.users.find(new.email)
    if user is None:
        raise NotFound("no account with that email")
    if await state.store.teams.get(name) is None:
        raise NotFound(f"no team named {name!r}")
    await state.store.teams.add_member(name, user.id)
    return json_response(await _one_team(state, name))


@admin_only
async def delete_member(request: Request) -> Response:
    """Take an account out of a team; the team afterwards."""
    state: GatewayState = request.app.state.gateway
    name, user_id = request.path_params["name"], request.path_params["user_id"]
    if not await state.store.teams.remove_member(name, user_id):
        raise NotFound(f"no account {user_id!r} in team {name!r}")
    return json_response(await _one_team(state, name))


def _user_view(user: UserRecord, teams: list[str]) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "is_admin": user.is_admin,
        "teams": teams,
        "created_at": user.created_at,
    }


async def _one_user(state: GatewayState, user_id: str) -> dict[str, Any]:
    for user, teams in await state.store.users.list_with_teams():
        if user.id == user_id:
            return _user_view(user, teams)
    raise NotFound(f"no account with id {user_id!r}")


@admin_only
async def get_users(request: Request) -> Response:
    """Every account with its teams; never a password or its hash."""
    state: GatewayState = request.app.state.gateway
    users = [_user_view(user, teams) for user, teams in await state.store.users.list_with_teams()]
    return json_response({"users": users})


@admin_only
async def post_user(request: Request) -> Response:
    """Create an account (an admin one with ``is_admin``)."""
    state: GatewayState = request.app.state.gateway
    new = decode_body(await read_body(request, state.body_limits), NewUser)
    user = await state.store.users.register(new.email, new.password, is_admin=new.is_admin)
    return json_response(_user_view(user, []), status=201)


@admin_only
async def patch_user(request: Request) -> Response:
    """Change an account's password or admin right; its dashboard sessions end."""
    state: GatewayState = request.app.state.gateway
    user_id = request.path_params["user_id"]
    body = decode_body(await read_body(request, state.body_limits), UserChanges)
    if not await state.store.users.update(user_id, is_admin=body.is_admin, password=body.password):
        raise NotFound(f"no account with id {user_id!r}")
    if body.password is not None or body.is_admin is False:
        await state.store.admin_sessions.close_user(user_id)
    return json_response(await _one_user(state, user_id))


@admin_only
async def delete_user(request: Request) -> Response:
    """Delete an account, its memberships and its sessions, and revoke the keys it owns
    (``owner_user`` is its email): at once on this worker, and on the others at once with
    Redis, else within 5 s (``key_changes``)."""
    state: GatewayState = request.app.state.gateway
    user_id = request.path_params["user_id"]
    revoked = await state.store.users.delete(user_id)
    if revoked is None:
        raise NotFound(f"no account with id {user_id!r}")
    await state.auth.key_changes.changed(*revoked)
    return Response(status_code=204)


ROUTES = [
    Route("/admin/api/teams", get_teams, methods=["GET"]),
    Route("/admin/api/teams", post_team, methods=["POST"]),
    Route("/admin/api/teams/{name}", get_team, methods=["GET"]),
    Route("/admin/api/teams/{name}", patch_team, methods=["PATCH"]),
    Route("/admin/api/teams/{name}", delete_team, methods=["DELETE"]),
    Route("/admin/api/teams/{name}/members", post_member, methods=["POST"]),
    Route("/admin/api/teams/{name}/members/{user_id}", delete_member, methods=["DELETE"]),
    Route("/admin/api/users", get_users, methods=["GET"]),
    Route("/admin/api/users", post_user, methods=["POST"]),
    Route("/admin/api/users/{user_id}", patch_user, methods=["PATCH"]),
    Route("/admin/api/users/{user_id}", delete_user, methods=["DELETE"]),
]
