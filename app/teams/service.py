"""Team settings: what queries read of a team (timezone, week start, test-account filters)."""

from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.errors import ValidationFailed
from app.models import Team as TeamModel
from app.query.base import QueryError
from app.query.schema import check_property_node, parse_property_nodes
from app.teams import repository
from app.teams.schemas import Team, TeamUpdate


async def to_schema(session: AsyncSession, team: TeamModel) -> Team:
    return Team(
        ingested_event=await repository.has_events(session, team.id),
        id=team.id,
        uuid=team.uuid,
        organization=team.organization_id,
        project_id=team.id,
        api_token=team.api_token,
        name=team.name,
        created_at=team.created_at,
        timezone=team.timezone,
        test_account_filters=team.test_account_filters or [],
        week_start_day=team.week_start_day,
    )


async def retrieve_team(session: AsyncSession, access: TeamAccess) -> Team:
    return await to_schema(session, access.team)


def check_test_account_filters(filters: list[dict[str, object]]) -> None:
    """Each filter one a query could apply (event or person properties, a known operator): 400 otherwise,
    now rather than as an error on every query that filters test accounts."""
    try:
        for node in parse_property_nodes(filters):
            check_property_node(node)
    except QueryError as exc:
        raise ValidationFailed(exc.message, attr="test_account_filters") from None
    except PydanticCustomError as exc:
        raise ValidationFailed(exc.message(), attr="test_account_filters") from None


async def update_team(session: AsyncSession, access: TeamAccess, data: TeamUpdate) -> Team:
    values = data.model_dump(exclude_unset=True)
    for name in ("name", "timezone", "test_account_filters"):
        if name in values and values[name] is None:
            raise ValidationFailed("This field may not be null.", attr=name, code="null")
    if "test_account_filters" in values:
        check_test_account_filters(values["test_account_filters"])
    if not values:
        return await to_schema(session, access.team)
    return await to_schema(session, await repository.update_team(session, access.team.id, values))
