"""Dashboard use cases. Services take a session, never commit (the request's session dependency does)."""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as auth_repository
from app.auth.dependencies import TeamAccess, require_scopes
from app.dashboards import from_template, placement, repository
from app.dashboards.access import (
    CANNOT_RESTRICT,
    access_for,
    ensure_can_edit,
    ensure_can_manage_collaborators,
)
from app.dashboards.repository import DashboardFullRow, DashboardListRow, DashboardRow, ListFilters
from app.dashboards.schemas import (
    Collaborator,
    CollaboratorCreate,
    CreationMode,
    Dashboard,
    DashboardBasic,
    DashboardUpdate,
    DashboardWrite,
    MoveTile,
    RestrictionLevel,
    Tile,
)
from app.dashboards.tile_edits import apply_tile_edits, copy_dashboard_tiles, creates_tile, duplicate_tiles
from app.dashboards.tiles import compute, plan_tiles, tile_of
from app.dashboards.views import ViewRecorder
from app.errors import ErrorBody, NotFound, PermissionDenied, ValidationFailed
from app.models import ADMIN, DashboardPrivilege, TaggedItem
from app.models import Dashboard as DashboardModel
from app.pagination import Page
from app.query.pool import RenderPool
from app.query.render import RefreshMode, shared_refresh
from app.schemas import Paginated, UserBasic, trusted
from app.tags import set_tags
from app.templates import service as templates
from app.templates.json_schema import validate_template_json
from app.templates.service import TemplateContent
from app.validation import reject_nul


@dataclass(frozen=True)
class Overrides:
    """`filters_override` / `variables_override` query parameters, merged over the stored values."""

    filters: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)


def parse_override(name: str, raw: str | None) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise ValidationFailed(f"Invalid JSON passed in {name} parameter", attr=name)
    try:
        return dict(reject_nul(value))
    except PydanticCustomError as exc:
        raise ValidationFailed(exc.message(), attr=name) from None


NO_OVERRIDES = Overrides()


def shared_context(
    access: TeamAccess, mode: RefreshMode, overrides: Overrides
) -> tuple[RefreshMode, Overrides]:
    """What a request may ask for: a sharing grant's `filters_override`/`variables_override` are ignored and
    its refresh mode is remapped as PostHog does in shared context (`shared_refresh`); a key's are as
    given."""
    if access.grant is None:
        return mode, overrides
    return shared_refresh(mode), NO_OVERRIDES


async def get_dashboard_row(session: AsyncSession, access: TeamAccess, dashboard_id: int) -> DashboardRow:
    """A live dashboard of the team with the caller's rights on it (404 otherwise), for the packages that
    act on a dashboard (sharing)."""
    return await _get(session, access, dashboard_id)


# --- serialization ---------------------------------------------------------------------------------------


_CREATION_MODES = {mode.value: mode for mode in CreationMode}


def _basic_fields(
    row: DashboardRow | DashboardListRow | DashboardFullRow, access: TeamAccess
) -> dict[str, Any]:
    """The list serializer's fields, each already of its field's type: the models are built from them
    without validation (`app.schemas.trusted`)."""
    d = row.dashboard
    rights = access_for(row, access)
    legacy = d.restriction_level > RestrictionLevel.EVERYONE_IN_PROJECT_CAN_EDIT
    shared = access.grant is not None
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "pinned": d.pinned,
        "created_at": d.created_at,
        "created_by": UserBasic.of(d.created_by),
        "last_accessed_at": d.last_accessed_at,
        "last_viewed_at": row.last_viewed_at,
        "is_shared": row.is_shared,
        "deleted": d.deleted,
        "creation_mode": _CREATION_MODES.get(d.creation_mode) or CreationMode(d.creation_mode),
        "tags": row.tags,
        # No paywalls: the stored level (in shared context the effective level is PostHog's fixed 37).
        "restriction_level": RestrictionLevel(d.restriction_level)
        if shared
        else rights.effective_restriction_level,
        "effective_restriction_level": rights.effective_restriction_level,
        "effective_privilege_level": rights.effective_privilege_level,
        # Anonymous in shared context: no access level, as PostHog.
        "user_access_level": None if shared else rights.user_access_level,
        "access_control_version": "v1" if legacy else "v2",
        "last_refresh": d.last_refresh,
        "team_id": d.team_id,
    }


def to_basic(row: DashboardRow | DashboardListRow, access: TeamAccess) -> DashboardBasic:
    return trusted(DashboardBasic, _basic_fields(row, access))


def to_full(
    row: DashboardRow | DashboardFullRow, access: TeamAccess, overrides: Overrides, tiles: list[Tile]
) -> Dashboard:
    d = row.dashboard
    stored_variables = d.variables or {}
    return trusted(
        Dashboard,
        dict(
            **_basic_fields(row, access),
            filters={**(d.filters or {}), **overrides.filters},
            variables={**stored_variables, **overrides.variables},
            breakdown_colors=d.breakdown_colors,
            data_color_theme_id=d.data_color_theme_id,
            persisted_filters=d.filters or None,
            persisted_variables=stored_variables or None,
            tiles=tiles,
        ),
    )


async def _full(
    session: AsyncSession, access: TeamAccess, row: DashboardRow | DashboardFullRow, overrides: Overrides
) -> Dashboard:
    """The dashboard with its tiles' cached results (what write paths answer: they never compute)."""
    plan = await plan_tiles(session, access, row.dashboard, overrides.filters, RefreshMode.FORCE_CACHE)
    return to_full(row, access, overrides, [tile_of(t, access) for t in plan.tiles])


# --- dashboards --------------------------------------------------------------------------------------------


async def list_dashboards(
    session: AsyncSession, access: TeamAccess, page: Page, filters: ListFilters, views: ViewRecorder
) -> Paginated[DashboardBasic]:
    rows, count = await repository.list_dashboards(
        session, access.team.id, access.user.id, filters, page.limit, page.offset
    )
    for row in rows:
        # Views this process noted and has not written yet.
        row.dashboard.last_accessed_at, row.last_viewed_at = views.overlay(
            row.dashboard.id, access.user.id, row.dashboard.last_accessed_at, row.last_viewed_at
        )
    nxt, prev = page.links(count)
    return Paginated[DashboardBasic](
        count=count, next=nxt, previous=prev, results=[to_basic(row, access) for row in rows]
    )


async def _get(session: AsyncSession, access: TeamAccess, dashboard_id: int, **kw: bool) -> DashboardRow:
    row = await repository.get_dashboard(session, access.team.id, dashboard_id, access.user.id, **kw)
    if row is None:
        raise NotFound()
    return row


async def get_viewed(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, views: ViewRecorder
) -> DashboardFullRow:
    """A live dashboard as plain columns (404 otherwise), its view by the caller noted (retrieve and
    `stream_tiles`)."""
    # Plain columns, no ORM object: reading a dashboard changes nothing of it.
    row = await repository.get_dashboard_record(session, access.team.id, dashboard_id, access.user.id)
    if row is None:
        raise NotFound()
    now = datetime.now(UTC)
    # Written after the response, at most once a minute per dashboard and caller (`app.dashboards.views`):
    # this transaction takes no row lock, so concurrent retrieves of one dashboard do not queue.
    views.note(dashboard_id, access.user.id, now)
    row.dashboard.last_accessed_at = now
    row.last_viewed_at = None if access.grant is not None else now  # an anonymous viewer has no view log
    return row


async def end_read_transaction(session: AsyncSession) -> None:
    """Commit the request's read transaction now, giving its connection back to the pool, before the tiles'
    renders open short sessions of their own (DESIGN: the one exception to one transaction per request, for
    read routes that fan out). The session dependency's commit then has nothing left to do."""
    await session.commit()


async def retrieve_dashboard(
    session: AsyncSession,
    access: TeamAccess,
    dashboard_id: int,
    overrides: Overrides,
    views: ViewRecorder,
    pool: RenderPool,
    mode: RefreshMode = RefreshMode.FORCE_CACHE,
    layout_size: str = "sm",
) -> Dashboard:
    """The dashboard with its tiles; without `refresh` their results come from the cache only. Tiles that
    must be computed are computed at the same time, on the worker's render pool. For a sharing grant, in
    shared context: overrides ignored, refresh modes remapped (`shared_context`)."""
    mode, overrides = shared_context(access, mode, overrides)
    row = await get_viewed(session, access, dashboard_id, views)
    plan = await plan_tiles(session, access, row.dashboard, overrides.filters, mode, layout_size)
    if plan.pending:
        await end_read_transaction(session)
        await compute(plan, pool, plan.pending)
    return to_full(row, access, overrides, [tile_of(t, access) for t in plan.tiles])


async def _check_theme(session: AsyncSession, access: TeamAccess, theme_id: int | None) -> None:
    if theme_id is not None and not await repository.theme_visible(session, access.team.id, theme_id):
        raise ValidationFailed(
            f'Invalid pk "{theme_id}" - object does not exist.',
            attr="data_color_theme_id",
            code="does_not_exist",
        )


def _given_or_copied(data: DashboardWrite, source: DashboardModel | None, name: str, default: Any) -> Any:
    """The request's value when given, else the duplicated dashboard's, else the default."""
    if name in data.model_fields_set:
        return getattr(data, name)
    return getattr(source, name) if source is not None else default


async def create_dashboard(
    session: AsyncSession, access: TeamAccess, data: DashboardWrite, overrides: Overrides
) -> Dashboard:
    if data.use_template and data.use_dashboard is not None:
        raise ValidationFailed("`use_dashboard` and `use_template` cannot be used together")
    if data.use_template:
        require_scopes(access, "insight:write")  # the template's insights are new insights
    template = await from_template.template_for_create(session, access, data)
    source: DashboardModel | None = None
    if data.use_dashboard is not None and data.duplicate_tiles:
        require_scopes(access, "insight:write")  # the copies of its insights are new insights
    if data.use_dashboard is not None:
        source_row = await repository.get_dashboard(
            session, access.team.id, data.use_dashboard, access.user.id
        )
        if source_row is None:
            raise ValidationFailed("Invalid value provided", attr="use_dashboard")
        source = source_row.dashboard
    await _check_theme(session, access, data.data_color_theme_id)

    dashboard = DashboardModel(
        team_id=access.team.id,
        created_by_id=access.user.id,
        name=data.name,
        description=data.description or "",
        pinned=bool(data.pinned),
        deleted=bool(data.deleted),
        last_accessed_at=data.last_accessed_at,
        last_refresh=data.last_refresh,
        restriction_level=data.restriction_level or RestrictionLevel.EVERYONE_IN_PROJECT_CAN_EDIT,
        creation_mode=CreationMode.DUPLICATE if source is not None else CreationMode.DEFAULT,
        filters=data.filters or (dict(source.filters) if source is not None else {}),
        variables=data.variables or (dict(source.variables or {}) if source is not None else {}),
        breakdown_colors=_given_or_copied(data, source, "breakdown_colors", default=[]),
        data_color_theme_id=_given_or_copied(data, source, "data_color_theme_id", default=None),
        create_in_folder=data.create_in_folder,
    )
    tags = data.tags if template is None else from_template.apply_to_new(dashboard, template[0], data)
    session.add(dashboard)
    await session.flush()
    if tags:
        await set_tags(session, access.team.id, TaggedItem.dashboard_id, dashboard.id, tags)
    if template is not None:
        await from_template.add_template_tiles(session, access, dashboard.id, template[1], "use_template")
    if source is not None:
        await copy_dashboard_tiles(session, access, source.id, dashboard.id, deep=data.duplicate_tiles)
    row = await _get(session, access, dashboard.id, include_deleted=True)
    return await _full(session, access, row, overrides)


async def update_dashboard(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, data: DashboardUpdate, overrides: Overrides
) -> Dashboard:
    given = data.model_fields_set
    # A deleted dashboard is reachable only by the PATCH that restores it.
    restoring = "deleted" in given and not data.deleted
    row = await _get(session, access, dashboard_id, include_deleted=restoring)
    rights = ensure_can_edit(row, access)
    if "restriction_level" in given and not rights.can_restrict:
        raise PermissionDenied(CANNOT_RESTRICT)
    if "data_color_theme_id" in given:
        await _check_theme(session, access, data.data_color_theme_id)
    # Counted from the body, before anything is read or written: a request of a thousand tiles costs nothing.
    created = sum(1 for item in data.tiles or () if creates_tile(item))
    placement.check_new_tiles(created, "tiles")
    placement.check_new_tiles(created + len(data.duplicate_tiles or ()), "duplicate_tiles")

    d = row.dashboard
    # Restoring brings the dashboard's insights back, `delete_insights` deletes some, duplicated tiles are
    # new insights: each changes insights too.
    if (restoring and d.deleted) or (data.deleted and data.delete_insights) or data.duplicate_tiles:
        require_scopes(access, "insight:write")
    if restoring and d.deleted:
        # PostHog's restore: every tile comes back, those removed one by one before the delete too, and so
        # does every insight on them.
        await repository.set_every_tile_deleted(session, d.id, False)
        await repository.undelete_insights_on(session, d.id)
    elif data.deleted and not d.deleted:
        if data.delete_insights:
            # Before the tiles go: "only on this dashboard" counts this dashboard's live tile.
            await repository.delete_insights_only_on(session, d.id)
        await repository.set_every_tile_deleted(session, d.id, True)
    for name in (
        "name",
        "description",
        "pinned",
        "deleted",
        "last_accessed_at",
        "last_refresh",
        "breakdown_colors",
        "data_color_theme_id",
        "restriction_level",
    ):
        if name in given:
            setattr(d, name, getattr(data, name))
    # As in PostHog, empty filters/variables leave the stored ones alone: they cannot be cleared with {}.
    if data.filters:
        d.filters = data.filters
    if data.variables:
        d.variables = data.variables
    await session.flush()
    if data.tags is not None:
        await set_tags(session, access.team.id, TaggedItem.dashboard_id, d.id, data.tags)
    if data.tiles:
        await apply_tile_edits(session, access, d.id, data.tiles)
    if data.duplicate_tiles:
        await duplicate_tiles(session, access, d.id, data.duplicate_tiles)
    row = await _get(session, access, dashboard_id, include_deleted=True)
    return await _full(session, access, row, overrides)


CANNOT_EDIT_DESTINATION = "You don't have edit permissions for the destination dashboard."
CANNOT_MOVE = "Invalid request data for moving tile."


async def move_tile(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, data: MoveTile, overrides: Overrides
) -> Dashboard:
    """Move a live tile of this dashboard to another of the team's dashboards, keeping its id and layouts;
    answers with this (the source) dashboard, which no longer has the tile (reference §3.8)."""
    row = await _get(session, access, dashboard_id)
    ensure_can_edit(row, access)
    tile = await repository.get_live_tile(session, dashboard_id, data.tile.id)
    if tile is None:
        raise NotFound()
    destination = await repository.get_dashboard(session, access.team.id, data.to_dashboard, access.user.id)
    if destination is None:
        raise NotFound()
    if not access_for(destination, access).can_edit:
        raise PermissionDenied(CANNOT_EDIT_DESTINATION)
    # Concurrent moves of this tile (or edits of either dashboard) wait here for this one to end; then the
    # tile, read again under its row lock, must still be on the source: for the requests that lost the race
    # it is not, and they get the answer for any tile not on the source dashboard.
    await placement.lock(session, [dashboard_id, destination.dashboard.id])
    if await repository.get_live_tile(session, dashboard_id, tile.id, lock=True) is None:
        raise NotFound()
    same_content = await repository.tiles_with_content(
        session, destination.dashboard.id, tile.insight_id, tile.text_id
    )
    if any(not t.deleted for t in same_content):
        raise ValidationFailed(CANNOT_MOVE)
    await placement.make_room(session, {destination.dashboard.id: 1}, "toDashboard")
    # A removed tile of the same content would break "one tile per content and dashboard": it goes for good.
    await repository.hard_delete_tiles(session, [t.id for t in same_content])
    await repository.set_tile_dashboard(session, tile.id, destination.dashboard.id)
    return await _full(session, access, row, overrides)


INHERENT_ACCESS = (
    "Cannot add collaborators that already have inherent access (the dashboard owner or a project admin)."
)

# --- collaborators -----------------------------------------------------------------------------------------


def _collaborator(privilege: DashboardPrivilege) -> Collaborator:
    return Collaborator(
        id=privilege.id,
        dashboard_id=privilege.dashboard_id,
        user=UserBasic.model_validate(privilege.user),
        level=privilege.level,
        added_at=privilege.added_at,
        updated_at=privilege.updated_at,
    )


async def list_collaborators(
    session: AsyncSession, access: TeamAccess, dashboard_id: int
) -> list[Collaborator]:
    await _get(session, access, dashboard_id)
    return [_collaborator(p) for p in await repository.list_collaborators(session, dashboard_id)]


async def add_collaborator(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, data: CollaboratorCreate
) -> Collaborator:
    row = await _get(session, access, dashboard_id)
    ensure_can_manage_collaborators(row, access)
    if row.dashboard.restriction_level <= RestrictionLevel.EVERYONE_IN_PROJECT_CAN_EDIT:
        raise ValidationFailed("Cannot add collaborators to a dashboard on the lowest restriction level.")
    user = await repository.get_user_by_uuid(session, data.user_uuid, active_only=True)
    found = (
        None
        if user is None
        else await auth_repository.get_team_with_membership(session, access.team.id, user.id)
    )
    if user is None or found is None or found[1] is None:
        raise ValidationFailed("Cannot add collaborators that have no access to the project.")
    if user.id == row.dashboard.created_by_id or found[1] >= ADMIN:
        raise ValidationFailed(INHERENT_ACCESS)
    if await repository.get_collaborator(session, dashboard_id, user.id) is not None:
        raise ValidationFailed("User is already a collaborator on this dashboard.")
    privilege = DashboardPrivilege(dashboard_id=dashboard_id, user_id=user.id, level=data.level)
    session.add(privilege)
    await session.flush()
    await session.refresh(privilege, ["added_at", "updated_at"])
    privilege.user = user
    return _collaborator(privilege)


async def remove_collaborator(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, user_uuid: uuid.UUID
) -> None:
    row = await _get(session, access, dashboard_id)
    ensure_can_manage_collaborators(row, access)
    user = await repository.get_user_by_uuid(session, user_uuid)
    privilege = None if user is None else await repository.get_collaborator(session, dashboard_id, user.id)
    if privilege is None:
        raise NotFound()
    await session.delete(privilege)
    await session.flush()


# --- dashboards from templates ---------------------------------------------------------------------------


async def _from_template(
    session: AsyncSession,
    access: TeamAccess,
    content: TemplateContent,
    mode: CreationMode,
    attr: str,
    create_in_folder: str | None = None,
) -> Dashboard:
    dashboard = from_template.new_dashboard(access, content, mode)
    dashboard.create_in_folder = create_in_folder
    session.add(dashboard)
    await session.flush()
    if content.tags:
        await set_tags(session, access.team.id, TaggedItem.dashboard_id, dashboard.id, content.tags)
    await from_template.add_template_tiles(session, access, dashboard.id, content.tiles, attr)
    row = await _get(session, access, dashboard.id, include_deleted=True)
    return await _full(session, access, row, NO_OVERRIDES)


async def create_from_template_json(
    session: AsyncSession, access: TeamAccess, data: from_template.TemplateJsonCreate
) -> Dashboard:
    """A dashboard made from a template's JSON (reference §3.11), all or nothing: a tile that cannot be made
    leaves no dashboard (the request's one transaction rolls back)."""
    require_scopes(access, "insight:write")  # its insights are new insights
    validate_template_json(data.template)
    try:
        template = reject_nul(data.template)
    except PydanticCustomError as exc:
        raise ValidationFailed(exc.message(), attr="template") from None
    content = templates.content_of(template)
    mode, folder = CreationMode.DEFAULT, data.create_in_folder
    return await _from_template(session, access, content, mode, "template__tiles", folder)


TAG_REQUIRED = "tag is required"
UNKNOWN_TAG = "Unknown template tag: {}"
UNLISTED_EXISTS = "Unlisted dashboard with tag '{}' already exists"


async def create_unlisted_dashboard(
    session: AsyncSession, access: TeamAccess, data: from_template.UnlistedCreate
) -> Dashboard:
    """The team's one unlisted dashboard for a template tag (reference §3.11). The team's row is locked until
    the transaction ends, so concurrent calls, from any worker, make one dashboard: the others see it and
    get 409."""
    require_scopes(access, "insight:write")  # its insights are new insights
    tag = data.tag
    if not tag:
        raise ErrorBody(400, TAG_REQUIRED)
    content = templates.unlisted_template(tag) if isinstance(tag, str) else None
    if content is None:
        raise ErrorBody(400, UNKNOWN_TAG.format(tag))
    await repository.lock_team(session, access.team.id)
    if await repository.unlisted_dashboard_exists(session, access.team.id, tag):
        raise ErrorBody(409, UNLISTED_EXISTS.format(tag))
    return await _from_template(session, access, content, CreationMode.UNLISTED, "tag")
