"""Tags of dashboards and insights: `tag` rows per team, linked by `tagged_item` (PostHog's model).

Names arrive trimmed, lower-cased and de-duplicated (the request schemas do that).
"""

from typing import Any

from sqlalchemy import ScalarSelect, delete, exists, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.models import Tag, TaggedItem


def tag_names(link: InstrumentedAttribute[int | None], owner_id: Any) -> ScalarSelect[list[str]]:
    """A correlated column: the sorted tag names of the object whose id is `owner_id` (NULL when none),
    where `link` is `TaggedItem.dashboard_id` or `TaggedItem.insight_id`."""
    return (
        select(func.array_agg(aggregate_order_by(Tag.name, Tag.name)))
        .select_from(TaggedItem)
        .join(Tag, Tag.id == TaggedItem.tag_id)
        .where(link == owner_id)
        .scalar_subquery()
    )


async def set_tags(
    session: AsyncSession,
    team_id: int,
    link: InstrumentedAttribute[int | None],
    owner_id: int,
    names: list[str],
) -> None:
    """Replace an object's tags; tags no longer used anywhere in the team are deleted."""
    column = link.key
    if names:
        await session.execute(
            insert(Tag).values([{"team_id": team_id, "name": n} for n in names]).on_conflict_do_nothing()
        )
        await session.execute(
            insert(TaggedItem)
            .from_select(
                ["tag_id", column],
                select(Tag.id, literal(owner_id)).where(Tag.team_id == team_id, Tag.name.in_(names)),
            )
            .on_conflict_do_nothing()
        )
    stale = select(Tag.id).where(Tag.team_id == team_id, Tag.name.not_in(names))
    await session.execute(delete(TaggedItem).where(link == owner_id, TaggedItem.tag_id.in_(stale)))
    await session.execute(
        delete(Tag).where(Tag.team_id == team_id, ~exists().where(TaggedItem.tag_id == Tag.id))
    )
