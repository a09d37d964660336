"""Data color themes endpoints: thin handlers over `app.themes.service`."""

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.auth.dependencies import GrantTarget, TeamAccess, scoped
from app.db import SessionDep
from app.pagination import PageDep
from app.schemas import Paginated
from app.themes import service
from app.themes.schemas import DataColorTheme, DataColorThemeCreate, DataColorThemeUpdate
from app.validation import MAX_INT32

router = APIRouter(prefix="/data_color_themes", tags=["data_color_themes"])

ProjectWrite = Annotated[TeamAccess, scoped("project:write")]
# Reads are also open to a sharing grant of one of the team's dashboards (a shared page draws its themes).
ProjectReadOrShared = Annotated[TeamAccess, scoped("project:read", grants=GrantTarget.TEAM_THEMES)]
# Ids are PostgreSQL integers: a larger number matches no theme (404) rather than overflowing the query.
ThemeId = Annotated[
    int, Path(le=MAX_INT32, description="A unique integer value identifying this data color theme.")
]


@router.get("/", name="data_color_themes_list")
async def list_themes(
    session: SessionDep, access: ProjectReadOrShared, page: PageDep
) -> Paginated[DataColorTheme]:
    """List the team's themes and the global ones."""
    return await service.list_themes(session, access, page)


@router.post("/", name="data_color_themes_create", status_code=status.HTTP_201_CREATED)
async def create_theme(
    data: DataColorThemeCreate, session: SessionDep, access: ProjectWrite
) -> DataColorTheme:
    """Create a theme for the team."""
    return await service.create_theme(session, access, data)


@router.get("/{id}/", name="data_color_themes_retrieve")
async def retrieve_theme(id: ThemeId, session: SessionDep, access: ProjectReadOrShared) -> DataColorTheme:
    """Retrieve one of the team's themes or a global theme."""
    return await service.retrieve_theme(session, access, id)


@router.patch("/{id}/", name="data_color_themes_partial_update")
async def partial_update_theme(
    id: ThemeId, data: DataColorThemeUpdate, session: SessionDep, access: ProjectWrite
) -> DataColorTheme:
    """Change a theme's name or colors (global themes are read-only)."""
    return await service.update_theme(session, access, id, data)


@router.put("/{id}/", name="data_color_themes_update")
async def update_theme(
    id: ThemeId, data: DataColorThemeCreate, session: SessionDep, access: ProjectWrite
) -> DataColorTheme:
    """Replace a theme's name and colors (global themes are read-only)."""
    return await service.update_theme(
        session, access, id, DataColorThemeUpdate(name=data.name, colors=data.colors)
    )


@router.delete(
    "/{id}/",
    name="data_color_themes_destroy",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_theme(id: ThemeId, session: SessionDep, access: ProjectWrite) -> Response:
    """Delete a theme for good; dashboards that used it get `data_color_theme_id: null`."""
    await service.delete_theme(session, access, id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
