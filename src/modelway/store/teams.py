"""Teams: a name keys' ``owner_team`` holds, a budget for all its keys together, members.

Spend is summed from usage records in one grouped query per list (never one per row),
counted from the start of each team's budget period, which the caller passes in. A team
need not be made here to exist: a key's ``owner_team`` and the usage it records name it
too (``names``).
"""

from __future__ import annotations

import builtins
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelway.errors import BadRequest, NotFound
from modelway.store.engine import Database
from modelway.store.names import check_team_name
from modelway.store.records import BudgetPeriod, TeamMember, TeamRecord
from modelway.store.rollups import dimension_bit
from modelway.store.tables import (
    api_keys,
    team_members,
    teams,
    usage_hourly,
    usage_records,
    users,
)

#: Columns ``update`` may change (the name is the team's identity: keys and records hold it).
EDITABLE = frozenset({"budget_usd", "budget_period", "metadata"})


def period_start_of(period: ColumnElement[Any], starts: Mapping[str, float]) -> ColumnElement[Any]:
    """SQL for the epoch second a row's budget period began (``starts``: day, month)."""
    return case((period == "day", starts["day"]), (period == "month", starts["month"]), else_=0.0)


class TeamRepository:
    """Create, list, change and delete teams and their members."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def create(
        self,
        name: str,
        *,
        budget_usd: float | None = None,
        budget_period: BudgetPeriod = "month",
        metadata: Mapping[str, Any] | None = None,
    ) -> TeamRecord:
        """A new team; BadRequest if one has that name, or the name is not one (``names``)."""
        check_team_name(name)
        record = TeamRecord(
            name=name,
            budget_usd=budget_usd,
            budget_period=budget_period,
            metadata=dict(metadata or {}),
            created_at=time.time(),
        )
        values = {field: getattr(record, field) for field in teams.c.keys()}  # noqa: SIM118 (column names)
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(teams).values(values))
        except IntegrityError:
            raise BadRequest(f"a team named {name!r} already exists") from None
        return record

    async def list(self) -> builtins.list[TeamRecord]:
        """Every team by name, with its members."""
        return await self._read(None)

    async def get(self, name: str) -> TeamRecord | None:
        """One team with its members, or None."""
        found = await self._read(name)
        return found[0] if found else None

    async def update(self, name: str, changes: Mapping[str, Any]) -> bool:
        """Change a team's budget or metadata; False if there is no such team."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"teams cannot change {sorted(unknown)}")
        if not changes:
            return await self.get(name) is not None
        statement = update(teams).where(teams.c.name == name).values(dict(changes))
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return result.rowcount > 0

    async def delete(self, name: str) -> bool:
        """Delete a team and its memberships (its keys keep the name); False if none such."""
        async with self._engine.begin() as connection:
            result = await connection.execute(delete(teams).where(teams.c.name == name))
        return result.rowcount > 0

    async def add_member(self, name: str, user_id: str) -> None:
        """Put an account in a team (again is harmless); NotFound for an unknown team."""
        async with self._engine.begin() as connection:
            exists = await connection.execute(
                select(team_members.c.user_id).where(
                    team_members.c.team == name, team_members.c.user_id == user_id
                )
            )
            if exists.first() is not None:
                return
            try:
                await connection.execute(insert(team_members).values(team=name, user_id=user_id))
            except IntegrityError:
                raise NotFound(f"no team named {name!r} or no account {user_id!r}") from None

    async def remove_member(self, name: str, user_id: str) -> bool:
        """Take an account out of a team; False if it was not in it."""
        statement = delete(team_members).where(
            team_members.c.team == name, team_members.c.user_id == user_id
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return result.rowcount > 0

    async def budgets(self) -> builtins.list[tuple[str, float, BudgetPeriod]]:
        """Every team with a USD budget: name, budget, period."""
        query = select(teams.c.name, teams.c.budget_usd, teams.c.budget_period).where(
            teams.c.budget_usd.is_not(None)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [(row.name, row.budget_usd, row.budget_period) for row in rows]

    async def figures(self, starts: Mapping[str, float]) -> dict[str, tuple[int, float]]:
        """Per team: its live keys, and what they spent this budget period (two queries)."""
        since = period_start_of(teams.c.budget_period, starts)
        spend_query = (
            select(teams.c.name, func.coalesce(func.sum(usage_records.c.cost_usd), 0.0))
            .select_from(
                teams.join(
                    usage_records,
                    and_(usage_records.c.team == teams.c.name, usage_records.c.time >= since),
                )
            )
            .group_by(teams.c.name)
        )
        keys_query = (
            select(api_keys.c.owner_team, func.count())
            .where(api_keys.c.owner_team.is_not(None), api_keys.c.revoked_at.is_(None))
            .group_by(api_keys.c.owner_team)
        )
        async with self._engine.connect() as connection:
            spend: dict[str, float] = {
                name: total for name, total in await connection.execute(spend_query)
            }
            keys: dict[str, int] = {
                name: count for name, count in await connection.execute(keys_query)
            }
        names = set(spend) | set(keys)
        return {name: (int(keys.get(name, 0)), float(spend.get(name, 0.0))) for name in names}

    async def names(self, *, text: str | None = None, limit: int) -> builtins.list[str]:
        """Team names from every place one is written: the teams made here, keys'
        ``owner_team`` and the usage roll-ups; sorted, at most ``limit``.

        ``text`` matches a part of the name in any case. Each place gives at most ``limit``
        distinct names, read in the order of its index on the name (no table row is read).
        """
        team_level = usage_hourly.c.dims == dimension_bit("team")
        places: builtins.list[tuple[ColumnElement[Any], builtins.list[ColumnElement[bool]]]] = [
            (teams.c.name, []),
            (api_keys.c.owner_team, [api_keys.c.owner_team.is_not(None)]),
            (usage_hourly.c.team, [team_level, usage_hourly.c.team != ""]),
        ]
        found: set[str] = set()
        async with self._engine.connect() as connection:
            for column, conditions in places:
                if text:
                    conditions = [
                        *conditions,
                        func.lower(column).contains(text.lower(), autoescape=True),
                    ]
                query = select(column).where(*conditions).distinct().order_by(column).limit(limit)
                found.update(name for (name,) in await connection.execute(query))
        return sorted(found)[:limit]

    async def _read(self, name: str | None) -> builtins.list[TeamRecord]:
        query = select(teams).order_by(teams.c.name)
        members_query = (
            select(team_members.c.team, users.c.id, users.c.email)
            .join(users, users.c.id == team_members.c.user_id)
            .order_by(users.c.email)
        )
        if name is not None:
            query = query.where(teams.c.name == name)
            members_query = members_query.where(team_members.c.team == name)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
            member_rows = (await connection.execute(members_query)).all() if rows else []
        members: dict[str, builtins.list[TeamMember]] = defaultdict(builtins.list)
        for row in member_rows:
            members[row.team].append(TeamMember(id=row.id, email=row.email))
        return [
            TeamRecord(
                name=row.name,
                budget_usd=row.budget_usd,
                budget_period=row.budget_period,
                metadata=row._mapping["metadata"],
                created_at=row.created_at,
                members=tuple(members.get(row.name, ())),
            )
            for row in rows
        ]
