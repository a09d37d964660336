"""Queries of the team's own dashboard templates (the built-in ones are code: `app.templates.builtin`)."""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DashboardTemplate


@dataclass(frozen=True)
class ListFilters:
    scope: str | None = None
    search: str | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(team_id: int, filters: ListFilters) -> list[ColumnElement[bool]]:
    conditions = [DashboardTemplate.team_id == team_id, DashboardTemplate.deleted.isnot(True)]
    if filters.scope in ("global", "feature_flag"):
        conditions.append(DashboardTemplate.scope == filters.scope)
    if filters.search:
        pattern = f"%{_escape_like(filters.search)}%"
        conditions.append(
            or_(
                DashboardTemplate.template_name.ilike(pattern),
                DashboardTemplate.dashboard_description.ilike(pattern),
                DashboardTemplate.tags.contains([filters.search]),
            )
        )
    return conditions


def _live(team_id: int) -> Select[DashboardTemplate]:
    return select(DashboardTemplate).where(
        DashboardTemplate.team_id == team_id, DashboardTemplate.deleted.isnot(True)
    )


async def count_templates(session: AsyncSession, team_id: int, filters: ListFilters) -> int:
    query = select(func.count()).select_from(DashboardTemplate).where(*_conditions(team_id, filters))
    return int((await session.execute(query)).scalar_one())


async def list_templates(
    session: AsyncSession, team_id: int, filters: ListFilters, limit: int, offset: int
) -> list[DashboardTemplate]:
    query = (
        select(DashboardTemplate)
        .where(*_conditions(team_id, filters))
        .order_by(DashboardTemplate.created_at, DashboardTemplate.template_name, DashboardTemplate.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(query)).scalars())


async def get_template(session: AsyncSession, team_id: int, template_id: UUID) -> DashboardTemplate | None:
    query = _live(team_id).where(DashboardTemplate.id == template_id)
    return (await session.execute(query)).scalar_one_or_none()


async def get_template_by_name(session: AsyncSession, team_id: int, name: str) -> DashboardTemplate | None:
    query = _live(team_id).where(DashboardTemplate.template_name == name).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def name_taken(session: AsyncSession, team_id: int, name: str, other_than: UUID | None = None) -> bool:
    """Whether another template of the team, deleted ones included (they keep their name), has this name."""
    query = select(DashboardTemplate.id).where(
        DashboardTemplate.team_id == team_id, DashboardTemplate.template_name == name
    )
    if other_than is not None:
        query = query.where(DashboardTemplate.id != other_than)
    return (await session.execute(query.limit(1))).first() is not None
