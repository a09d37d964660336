"""Dashboards made from templates: `use_template` on create, `create_from_template_json` and
`create_unlisted_dashboard`. What a template is lives in `app.templates`; here its content becomes a
dashboard's fields and tiles (an insight with `is_sample: true` per `INSIGHT` tile, a text per `TEXT`
tile; other tile types are skipped, as PostHog)."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.dashboards import placement
from app.dashboards.layout import Placer
from app.dashboards.schemas import CreationMode, DashboardWrite, TextEdit, TileEdit
from app.errors import AppError, ValidationFailed, validation_error_from_pydantic
from app.insights.schemas import InsightWrite
from app.insights.service import new_short_id
from app.models import Dashboard as DashboardModel
from app.models import DashboardTile, Insight, Text
from app.query.service import validate_for_save
from app.templates import service as templates
from app.templates.service import TemplateContent
from app.validation import SafeStr, SafeStr400


class TemplateJsonCreate(BaseModel):
    """The body of `create_from_template_json`."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    template: Any = Field(
        description="A dashboard template, as `dashboard_templates/json_schema/` describes."
    )
    creation_context: SafeStr | None = None
    create_in_folder: SafeStr400 | None = Field(default=None, alias="_create_in_folder")


class UnlistedCreate(BaseModel):
    """The body of `create_unlisted_dashboard`."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"tag": "llm-analytics"}]})

    tag: Any = Field(default=None, description="The template's tag: `llm-analytics`.")


INVALID_TEMPLATE = "Invalid template provided: {}"


async def template_for_create(
    session: AsyncSession, access: TeamAccess, data: DashboardWrite
) -> tuple[TemplateContent, list[Any]] | None:
    """The template `use_template` names and its tiles with `template_variables` filled in; None without
    `use_template`. A 400 for an unknown template, or for variables without a template."""
    if not data.use_template:
        if data.template_variables is not None:
            raise ValidationFailed("`template_variables` needs `use_template`.", attr="template_variables")
        return None
    content = await templates.resolve(session, access.team.id, data.use_template)
    if content is None:
        raise ValidationFailed(INVALID_TEMPLATE.format(data.use_template), attr="use_template")
    return content, templates.fill_variables(content, data.template_variables)


def apply_to_new(dashboard: DashboardModel, content: TemplateContent, data: DashboardWrite) -> list[str]:
    """A new dashboard's fields from its template, under what the request gave (its name, description and
    filters win, key by key for filters); the tags to give it."""
    dashboard.creation_mode = CreationMode.TEMPLATE
    dashboard.name = data.name or content.name
    if not data.description:
        dashboard.description = content.description
    dashboard.filters = {**content.filters, **(data.filters or {})}
    return data.tags if data.tags is not None else content.tags


def new_dashboard(access: TeamAccess, content: TemplateContent, mode: CreationMode) -> DashboardModel:
    """A dashboard of the template's name, description and filters (`create_from_template_json`,
    `create_unlisted_dashboard`)."""
    filters = dict(content.filters)
    if mode is CreationMode.UNLISTED:
        filters["__template_version"] = 1
    return DashboardModel(
        team_id=access.team.id,
        created_by_id=access.user.id,
        name=content.name,
        description=content.description or "",
        filters=filters,
        creation_mode=mode,
    )


def _prefixed(exc: ValidationError, prefix: str) -> AppError:
    return validation_error_from_pydantic(
        [{**err, "loc": (prefix, *err["loc"])} for err in exc.errors(include_url=False)]
    )


async def add_template_tiles(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, tiles: list[Any], attr: str
) -> None:
    """The template's tiles on the new dashboard `dashboard_id`: `INSIGHT` and `TEXT` tiles (any letter
    case), checked one by one (a 400 naming `<attr>__<index>__<field>`) before anything is written."""
    now = datetime.now(UTC)
    made: list[tuple[Insight | Text, TileEdit]] = []
    for index, tile in enumerate(tiles):
        where = f"{attr}__{index}"
        if not isinstance(tile, dict):
            raise ValidationFailed("Each tile must be an object.", attr=where)
        kind = str(tile.get("type", "")).upper()
        if kind not in ("INSIGHT", "TEXT"):
            continue  # PostHog logs and skips other types (buttons, widgets)
        try:
            given = {k: tile[k] for k in ("color", "layouts") if tile.get(k) is not None}
            display = TileEdit.model_validate(given)
            if kind == "TEXT":
                body = TextEdit.model_validate({"body": tile.get("body")}).body
                made.append((Text(team_id=access.team.id, body=body, created_by_id=access.user.id), display))
                continue
            fields = InsightWrite.model_validate(
                {k: tile[k] for k in ("name", "description", "query", "filters") if tile.get(k) is not None}
            )
        except ValidationError as exc:
            raise _prefixed(exc, where) from None
        try:
            await validate_for_save(fields.query, access.team.timezone)
        except ValidationFailed as exc:
            raise ValidationFailed(exc.detail, attr=f"{where}__{exc.attr}", code=exc.code) from None
        insight = Insight(
            team_id=access.team.id,
            short_id=new_short_id(),
            name=fields.name,
            description=fields.description or "",
            query=fields.query,
            filters=fields.filters or {},
            is_sample=True,
            created_by_id=access.user.id,
            last_modified_by_id=access.user.id,
            last_modified_at=now,
        )
        made.append((insight, display))
    if not made:
        return
    # The dashboard is this transaction's own: no other request places tiles on it.
    placement.check_new_tiles(len(made), attr)
    placement.check_room(None, len(made), attr)
    session.add_all(content for content, _ in made)
    await session.flush()
    placer = Placer(display.layouts for _, display in made if display.layouts)
    session.add_all(
        DashboardTile(
            dashboard_id=dashboard_id,
            insight_id=content.id if isinstance(content, Insight) else None,
            text_id=content.id if isinstance(content, Text) else None,
            layouts=dict(display.layouts) if display.layouts else placer.place(),
            color=display.color,
            deleted=False,
        )
        for content, display in made
    )
    await session.flush()
