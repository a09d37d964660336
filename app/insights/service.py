"""Insight use cases. Results come from the one rendering path (`app.query.render`)."""

import secrets
import string
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess, require_scopes
from app.dashboards import placement
from app.dashboards import repository as dashboards_repository
from app.dashboards.access import access_for
from app.dashboards.schemas import PrivilegeLevel, RestrictionLevel
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.insights import repository
from app.insights.repository import InsightRow, ListFilters
from app.insights.schemas import DashboardTileBasic, Insight, InsightWrite
from app.models import DashboardTile, TaggedItem
from app.models import Insight as InsightModel
from app.pagination import Page
from app.query import cache
from app.query.render import RefreshMode, Rendered, TeamInfo
from app.query.saved import cache_keys, render_saved
from app.query.service import validate_for_save
from app.schemas import Paginated, UserBasic, trusted
from app.tags import set_tags

_SHORT_ID_ALPHABET = string.ascii_letters + string.digits


CANNOT_EDIT_INSIGHT = (
    "This insight is on a dashboard that can only be edited by its owner, team members invited to editing "
    "the dashboard, and project admins."
)


def new_short_id() -> str:
    return "".join(secrets.choice(_SHORT_ID_ALPHABET) for _ in range(8))


def _team(access: TeamAccess) -> TeamInfo:
    return TeamInfo.of(access.team)


def to_schema(
    row: InsightRow, access: TeamAccess, rendered: Rendered | None, *, raw_result: bool = False
) -> Insight:
    """The insight's payload (from the ORM object or its plain columns). With `raw_result`, a result read
    from the cache stays JSON text (`raw_result`) for a serializer that passes it through; otherwise it is
    decoded."""
    i = row.insight
    tiles = [trusted(DashboardTileBasic, t) for t in row.tiles]
    result = rendered.result if rendered else None
    raw = result if raw_result and isinstance(result, cache.RawJSON) else None
    # Every value is already of its field's type (the database's or ours): built without validation.
    insight = trusted(
        Insight,
        dict(
            id=i.id,
            short_id=i.short_id,
            name=i.name,
            derived_name=i.derived_name,
            query=i.query,
            # As PostHog: with a query, the legacy filters are reported empty.
            filters={} if i.query is not None else (i.filters or {}),
            order=i.order,
            deleted=i.deleted,
            dashboards=sorted({t.dashboard_id for t in tiles}),
            dashboard_tiles=tiles,
            last_refresh=rendered.last_refresh if rendered else None,
            cache_target_age=rendered.cache_target_age if rendered else None,
            next_allowed_client_refresh=rendered.next_allowed_client_refresh if rendered else None,
            result=None if raw is not None else cache.decoded(result),
            hasMore=rendered.has_more if rendered else None,
            # What a kind answers besides its results (SQL insights: `columns`, `types`, `hogql`).
            columns=(rendered.extra or {}).get("columns") if rendered else None,
            types=(rendered.extra or {}).get("types") if rendered else None,
            hogql=(rendered.extra or {}).get("hogql") if rendered else None,
            created_at=i.created_at,
            created_by=UserBasic.of(i.created_by),
            description=i.description,
            updated_at=i.updated_at,
            tags=row.tags,
            favorited=i.favorited,
            saved=i.saved,
            last_modified_at=i.last_modified_at,
            last_modified_by=UserBasic.of(i.last_modified_by),
            is_sample=i.is_sample,
            # No paywall: the restriction of the insight's dashboards decides (`with_access`).
            effective_restriction_level=row.restriction_level,
            effective_privilege_level=PrivilegeLevel.CAN_EDIT if row.can_edit else PrivilegeLevel.CAN_VIEW,
            user_access_level="editor" if row.can_edit else "viewer",
            timezone=access.team.timezone,
            is_cached=rendered.is_cached if rendered else False,
            error=rendered.error if rendered else None,
        ),
    )
    insight._raw_result = raw
    return insight


async def _render(
    session: AsyncSession, access: TeamAccess, row: InsightRow, mode: RefreshMode
) -> Rendered | None:
    if row.insight.query is None:
        return None
    return await render_saved(session, _team(access), row.insight.query, mode, saved=True)


async def list_insights(
    session: AsyncSession, access: TeamAccess, page: Page, filters: ListFilters, *, basic: bool
) -> Paginated[Insight]:
    rows, count = await repository.list_insights(session, access.team.id, filters, page.limit, page.offset)
    await with_access(session, access, rows)
    team = _team(access)
    rendered: dict[int, Rendered] = {}
    if not basic:
        # Every cached result of the page in one statement; the list never computes.
        keys = cache_keys(team, {row.insight.id: row.insight.query for row in rows})
        hits = await cache.read_many(await session.connection(), list(keys.values()), saved=True)
        for row in rows:
            if row.insight.query is not None:
                rendered[row.insight.id] = await render_saved(
                    session,
                    team,
                    row.insight.query,
                    RefreshMode.FORCE_CACHE,
                    saved=True,
                    prefetched=hits,
                    key=keys.get(row.insight.id),
                )
    nxt, prev = page.links(count)
    results = [to_schema(row, access, rendered.get(row.insight.id)) for row in rows]
    return Paginated[Insight](count=count, next=nxt, previous=prev, results=results)


async def _get(session: AsyncSession, access: TeamAccess, insight_id: int, **kw: bool) -> InsightRow:
    row = await repository.get_insight(session, access.team.id, insight_id, **kw)
    if row is None:
        raise NotFound()
    await with_access(session, access, [row])
    return row


async def with_access(session: AsyncSession, access: TeamAccess, rows: Sequence[InsightRow]) -> None:
    """Whether the caller may edit each insight: only if it may edit every restricted dashboard the insight
    is on (PostHog's effective privilege). One statement for all rows; none when no row is restricted."""
    if access.grant is not None:
        # Shared context: nothing may be edited.
        for r in rows:
            r.can_edit = False
        return
    restricted = [r for r in rows if r.restriction_level >= RestrictionLevel.ONLY_COLLABORATORS_CAN_EDIT]
    if not restricted:
        return
    ids = sorted({t["dashboard_id"] for r in restricted for t in r.tiles})
    found = await dashboards_repository.get_dashboards(session, access.team.id, ids, access.user.id)
    editable = {d.dashboard.id: access_for(d, access).can_edit for d in found}
    for r in restricted:
        r.can_edit = all(editable.get(t["dashboard_id"], True) for t in r.tiles)


async def retrieve_insight(
    session: AsyncSession, access: TeamAccess, insight_id: int, mode: RefreshMode
) -> Insight:
    row = await _get(session, access, insight_id)
    return to_schema(row, access, await _render(session, access, row, mode))


async def _sync_dashboards(
    session: AsyncSession, access: TeamAccess, insight_id: int, wanted: list[int]
) -> None:
    """Put the insight on exactly `wanted` dashboards: new tiles, revived tiles, soft-deleted tiles."""
    wanted = list(dict.fromkeys(wanted))
    tiles = await repository.tiles_of(session, insight_id)
    live = {t.dashboard_id for t in tiles if not t.deleted}
    touched = set(wanted) ^ live
    rows = {
        r.dashboard.id: r
        for r in await dashboards_repository.get_dashboards(
            session, access.team.id, sorted(touched), access.user.id
        )
    }
    for dashboard_id in wanted:
        if dashboard_id not in live and dashboard_id not in rows:
            raise ValidationFailed(
                f'Invalid pk "{dashboard_id}" - object does not exist.',
                attr="dashboards",
                code="does_not_exist",
            )
    for dashboard_id in touched:
        row = rows.get(dashboard_id)
        if row is not None and not access_for(row, access).can_edit:
            raise PermissionDenied(f"You don't have edit permissions for dashboard {dashboard_id}.")
    by_dashboard = {t.dashboard_id: t for t in tiles}
    revive = [d for d in wanted if d in by_dashboard and d not in live]
    new_on = [d for d in wanted if d not in by_dashboard]
    placement.check_new_tiles(len(new_on), "dashboards")
    # Each dashboard gaining the insight's tile must have room for it; each new tile takes the first free
    # slot of its dashboard (DESIGN.md, "New tiles get a place").
    placers = await placement.make_room(session, dict.fromkeys([*revive, *new_on], 1), "dashboards")
    await repository.set_tiles_deleted(session, [by_dashboard[d].id for d in revive], False)
    remove = [
        t.id for t in tiles if not t.deleted and t.dashboard_id not in wanted and t.dashboard_id in rows
    ]
    await repository.set_tiles_deleted(session, remove, True)
    session.add_all(
        DashboardTile(dashboard_id=d, insight_id=insight_id, layouts=placers[d].place(), deleted=False)
        for d in new_on
    )
    await session.flush()


async def create_insight(session: AsyncSession, access: TeamAccess, data: InsightWrite) -> Insight:
    if data.dashboards:
        require_scopes(access, "dashboard:write")  # its tiles change those dashboards
    await validate_for_save(data.query, access.team.timezone)
    now = datetime.now(UTC)
    insight = InsightModel(
        team_id=access.team.id,
        short_id=new_short_id(),
        name=data.name,
        derived_name=data.derived_name,
        description=data.description or "",
        query=data.query,
        filters=data.filters or {},
        order=data.order,
        deleted=bool(data.deleted),
        saved=bool(data.saved),
        favorited=bool(data.favorited),
        created_by_id=access.user.id,
        last_modified_by_id=access.user.id,
        last_modified_at=now,
    )
    session.add(insight)
    await session.flush()
    if data.tags:
        await set_tags(session, access.team.id, TaggedItem.insight_id, insight.id, data.tags)
    if data.dashboards:
        await _sync_dashboards(session, access, insight.id, data.dashboards)
    row = await _get(session, access, insight.id, include_deleted=True)
    return to_schema(row, access, await _render(session, access, row, RefreshMode.FORCE_CACHE))


_SIMPLE_FIELDS = ("name", "derived_name", "description", "query", "order", "deleted", "saved", "favorited")


async def update_insight(
    session: AsyncSession, access: TeamAccess, insight_id: int, data: InsightWrite
) -> Insight:
    given = data.model_fields_set
    # A deleted insight is reachable only by the PATCH that restores it (as dashboards).
    restoring = "deleted" in given and not data.deleted
    row = await _get(session, access, insight_id, include_deleted=restoring)
    if not row.can_edit:
        raise PermissionDenied(CANNOT_EDIT_INSIGHT)
    if data.dashboards is not None and set(data.dashboards) != {t["dashboard_id"] for t in row.tiles}:
        require_scopes(access, "dashboard:write")  # tiles added to or removed from dashboards
    if "query" in given:
        await validate_for_save(data.query, access.team.timezone)
    insight = row.insight
    assert isinstance(insight, InsightModel)  # `_get` loads the ORM object
    for name in _SIMPLE_FIELDS:
        if name in given:
            setattr(insight, name, getattr(data, name) if name != "description" else (data.description or ""))
    if data.filters:
        insight.filters = data.filters
    insight.last_modified_at = datetime.now(UTC)
    insight.last_modified_by_id = access.user.id
    await session.flush()
    if data.tags is not None:
        await set_tags(session, access.team.id, TaggedItem.insight_id, insight.id, data.tags)
    if data.dashboards is not None:
        await _sync_dashboards(session, access, insight.id, data.dashboards)
    row = await _get(session, access, insight.id, include_deleted=True)
    return to_schema(row, access, await _render(session, access, row, RefreshMode.FORCE_CACHE))
