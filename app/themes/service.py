"""Data color theme use cases. Global themes are readable by every team and writable by none."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.errors import NotFound, PermissionDenied
from app.models import DataColorTheme as ThemeModel
from app.pagination import Page
from app.schemas import Paginated, UserBasic
from app.themes import repository
from app.themes.schemas import DataColorTheme, DataColorThemeCreate, DataColorThemeUpdate

GLOBAL_READ_ONLY = "Only staff users can edit global themes."


def to_schema(theme: ThemeModel) -> DataColorTheme:
    return DataColorTheme(
        id=theme.id,
        name=theme.name,
        colors=theme.colors,
        is_global=theme.team_id is None,
        created_at=theme.created_at,
        created_by=UserBasic.of(theme.created_by),
    )


async def list_themes(session: AsyncSession, access: TeamAccess, page: Page) -> Paginated[DataColorTheme]:
    themes, count = await repository.list_themes(session, access.team.id, page.limit, page.offset)
    nxt, prev = page.links(count)
    return Paginated[DataColorTheme](
        count=count, next=nxt, previous=prev, results=[to_schema(t) for t in themes]
    )


async def _get(
    session: AsyncSession, access: TeamAccess, theme_id: int, *, writing: bool = False
) -> ThemeModel:
    theme = await repository.get_theme(session, access.team.id, theme_id)
    if theme is None:
        raise NotFound()
    if writing and theme.team_id is None:
        raise PermissionDenied(GLOBAL_READ_ONLY)
    return theme


async def retrieve_theme(session: AsyncSession, access: TeamAccess, theme_id: int) -> DataColorTheme:
    return to_schema(await _get(session, access, theme_id))


async def create_theme(
    session: AsyncSession, access: TeamAccess, data: DataColorThemeCreate
) -> DataColorTheme:
    theme = ThemeModel(
        team_id=access.team.id, name=data.name, colors=data.colors, created_by_id=access.user.id
    )
    session.add(theme)
    await session.flush()
    await session.refresh(theme, ["created_at"])
    theme.created_by = access.user
    return to_schema(theme)


async def update_theme(
    session: AsyncSession, access: TeamAccess, theme_id: int, data: DataColorThemeUpdate
) -> DataColorTheme:
    theme = await _get(session, access, theme_id, writing=True)
    if "name" in data.model_fields_set and data.name is not None:
        theme.name = data.name
    if "colors" in data.model_fields_set and data.colors is not None:
        theme.colors = data.colors
    await session.flush()
    return to_schema(theme)


async def delete_theme(session: AsyncSession, access: TeamAccess, theme_id: int) -> None:
    """Hard delete; dashboards using the theme get `data_color_theme_id: null` (ON DELETE SET NULL)."""
    theme = await _get(session, access, theme_id, writing=True)
    await session.delete(theme)
    await session.flush()


# A share's page draws with any of its team's themes; a team has a handful.
SHARED_THEMES_LIMIT = 1000


async def visible_themes(session: AsyncSession, team_id: int) -> list[DataColorTheme]:
    """The team's themes and the global ones, for a shared dashboard's exported data."""
    return [to_schema(t) for t in await repository.all_visible(session, team_id, SHARED_THEMES_LIMIT)]
