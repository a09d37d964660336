"""Dashboard template use cases: the team's own templates (rows) and the built-in ones (code), and what a
dashboard made from a template takes from it (`TemplateContent`, `resolve`, `fill_variables`)."""

import copy
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import DashboardTemplate as TemplateModel
from app.pagination import Page
from app.schemas import Paginated
from app.templates import builtin, repository
from app.templates.builtin import BuiltinTemplate
from app.templates.repository import ListFilters
from app.templates.schemas import DashboardTemplate, DashboardTemplateWrite

# PostHog's answers: its permission class refuses edits of global templates to anyone but staff, its
# serializer refuses a template without tiles, and DRF words the unique (template_name, team) check so.
GLOBAL_READ_ONLY = "You don't have edit permissions for this dashboard template."
NO_TILES = "You need to provide tiles for the template."
NAME_TAKEN = "The fields template_name, team must make a unique set."


def _builtin_schema(template: BuiltinTemplate) -> DashboardTemplate:
    return DashboardTemplate(
        id=template.id,
        template_name=template.template_name,
        dashboard_description=template.dashboard_description,
        dashboard_filters=template.dashboard_filters,
        tags=template.tags,
        tiles=template.tiles,
        variables=template.variables,
        deleted=False,
        created_at=None,
        created_by=None,
        image_url=None,
        team_id=None,
        scope="global",
        availability_contexts=template.availability_contexts,
    )


def to_schema(template: TemplateModel) -> DashboardTemplate:
    return DashboardTemplate(
        id=template.id,
        template_name=template.template_name,
        dashboard_description=template.dashboard_description,
        dashboard_filters=template.dashboard_filters,
        tags=template.tags,
        tiles=template.tiles,
        variables=template.variables,
        deleted=template.deleted,
        created_at=template.created_at,
        created_by=template.created_by_id,
        image_url=template.image_url,
        team_id=template.team_id,
        scope=template.scope,
        availability_contexts=template.availability_contexts,
    )


def _builtin_matches(template: BuiltinTemplate, filters: ListFilters) -> bool:
    if filters.scope == "feature_flag":
        return False
    if not filters.search:
        return True
    needle = filters.search.lower()
    return (
        needle in template.template_name.lower()
        or needle in template.dashboard_description.lower()
        or filters.search in template.tags
    )


async def list_templates(
    session: AsyncSession, access: TeamAccess, page: Page, filters: ListFilters
) -> Paginated[DashboardTemplate]:
    """The built-in templates first, then the team's own (oldest first, then by name)."""
    builtins = [t for t in builtin.LISTED if _builtin_matches(t, filters)]
    own_count = await repository.count_templates(session, access.team.id, filters)
    count = len(builtins) + own_count
    results = [_builtin_schema(t) for t in builtins[page.offset : page.offset + page.limit]]
    room = page.limit - len(results)
    if room > 0:
        own_offset = max(page.offset - len(builtins), 0)
        rows = await repository.list_templates(session, access.team.id, filters, room, own_offset)
        results.extend(to_schema(row) for row in rows)
    nxt, prev = page.links(count)
    return Paginated[DashboardTemplate](count=count, next=nxt, previous=prev, results=results)


def _parse_id(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except ValueError:
        return None


async def _get(session: AsyncSession, access: TeamAccess, raw_id: str) -> TemplateModel | BuiltinTemplate:
    template_id = _parse_id(raw_id)
    if template_id is None:
        raise NotFound()
    found = builtin.BY_ID.get(template_id)
    if found is not None and found.listed:
        return found
    row = await repository.get_template(session, access.team.id, template_id)
    if row is None:
        raise NotFound()
    return row


async def retrieve_template(session: AsyncSession, access: TeamAccess, raw_id: str) -> DashboardTemplate:
    found = await _get(session, access, raw_id)
    return _builtin_schema(found) if isinstance(found, BuiltinTemplate) else to_schema(found)


_FIELDS = (
    "template_name",
    "dashboard_description",
    "dashboard_filters",
    "tags",
    "tiles",
    "variables",
    "deleted",
    "image_url",
    "scope",
    "availability_contexts",
)


async def _flush_named(session: AsyncSession, template: TemplateModel) -> None:
    """Write the template; a name another of the team's templates holds (checked first, and by the unique
    constraint for concurrent requests) is a 400."""
    name = template.template_name
    if name is not None and await repository.name_taken(session, template.team_id or 0, name, template.id):
        raise ValidationFailed(NAME_TAKEN, code="unique")
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise ValidationFailed(NAME_TAKEN, code="unique") from None


async def create_template(
    session: AsyncSession, access: TeamAccess, data: DashboardTemplateWrite
) -> DashboardTemplate:
    if not data.tiles:
        raise ValidationFailed(NO_TILES)
    template = TemplateModel(team_id=access.team.id, created_by_id=access.user.id)
    for name in _FIELDS:
        if name in data.model_fields_set:
            setattr(template, name, getattr(data, name))
    template.scope = data.scope or "team"  # PostHog's default scope
    session.add(template)
    await _flush_named(session, template)
    await session.refresh(template, ["created_at", "deleted"])
    return to_schema(template)


async def update_template(
    session: AsyncSession, access: TeamAccess, raw_id: str, data: DashboardTemplateWrite
) -> DashboardTemplate:
    """PATCH and PUT: the fields given replace the stored ones; `deleted: true` soft-deletes."""
    template = await _get(session, access, raw_id)
    if isinstance(template, BuiltinTemplate):
        raise PermissionDenied(GLOBAL_READ_ONLY)
    for name in _FIELDS:
        if name in data.model_fields_set:
            setattr(template, name, getattr(data, name))
    await _flush_named(session, template)
    return to_schema(template)


# --- templates applied to dashboards ------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateContent:
    """What a dashboard takes from a template."""

    name: str | None
    description: str
    filters: dict[str, Any]
    tiles: list[Any]
    tags: list[str]
    variables: list[Any]


def _tags(tags: Any) -> list[str]:
    """Tags as dashboards keep them: trimmed, lower-cased, de-duplicated."""
    names = [t.strip().lower() for t in tags or () if isinstance(t, str)]
    return list(dict.fromkeys(t[:255] for t in names if t))


def content_of(template: TemplateModel | BuiltinTemplate | dict[str, Any]) -> TemplateContent:
    """A template row, a built-in one, or a template's JSON (already checked against the JSON schema)."""
    if isinstance(template, dict):
        return TemplateContent(
            name=template["template_name"],
            description=template["dashboard_description"],
            filters=template["dashboard_filters"],
            tiles=template["tiles"],
            tags=_tags(template.get("tags")),
            variables=list(template.get("variables") or []),
        )
    filters = template.dashboard_filters
    variables = template.variables
    return TemplateContent(
        name=template.template_name,
        description=template.dashboard_description or "",
        filters=dict(filters) if isinstance(filters, dict) else {},
        tiles=list(template.tiles) if isinstance(template.tiles, list) else [],
        tags=_tags(template.tags),
        variables=list(variables) if isinstance(variables, list) else [],
    )


async def resolve(session: AsyncSession, team_id: int, key: str) -> TemplateContent | None:
    """`use_template`: a built-in key (`DEFAULT_APP`, `WEBSITE_TRAFFIC`), a template id, or a template name
    (the team's own first, then the built-ins'); None when nothing matches."""
    found: TemplateModel | BuiltinTemplate | None = builtin.BY_KEY.get(key)
    template_id = _parse_id(key) if found is None else None
    if template_id is not None:
        found = builtin.BY_ID.get(template_id)
        if found is not None and not found.listed:
            found = None
        if found is None:
            found = await repository.get_template(session, team_id, template_id)
    if found is None:
        found = await repository.get_template_by_name(session, team_id, key)
    if found is None:
        found = builtin.BY_NAME.get(key)
    return None if found is None else content_of(found)


def unlisted_template(tag: str) -> TemplateContent | None:
    """The template `create_unlisted_dashboard` makes a dashboard from, by its tag."""
    found = builtin.BY_UNLISTED_TAG.get(tag)
    return None if found is None else content_of(found)


# --- template variables -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def _variable_values(variables: list[Any], given: dict[str, Any]) -> dict[str, Any]:
    """Each declared variable's value: the one given, else its non-empty `default`; a required variable
    with neither is a 400, and so is a value given for a variable the template does not declare."""
    declared = {v["id"]: v for v in variables if isinstance(v, dict) and isinstance(v.get("id"), str)}
    for name in given:
        if name not in declared:
            raise ValidationFailed(f"Unknown template variable: {name}", attr="template_variables")
    values: dict[str, Any] = {}
    for name, variable in declared.items():
        if name in given:
            values[name] = given[name]
        elif variable.get("default") not in (None, {}, ""):
            values[name] = variable["default"]
        elif variable.get("required"):
            raise ValidationFailed(
                f"Missing value for required template variable: {name}", attr="template_variables"
            )
    return values


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole is not None and whole.group(1) in values:
        # The whole string is the placeholder: it becomes the value, whatever its JSON type.
        return copy.deepcopy(values[whole.group(1)])

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)  # not a variable (HogQL's `{filters}`, a JSON-looking string)
        found = values[name]
        if isinstance(found, bool) or not isinstance(found, str | int | float):
            raise ValidationFailed(
                f"Template variable {name} is placed inside text: its value must be a string or a number.",
                attr="template_variables",
            )
        return str(found)

    return _PLACEHOLDER.sub(one, value)


def fill_variables(content: TemplateContent, given: dict[str, Any] | None) -> list[Any]:
    """The template's tiles with each `{VARIABLE_ID}` placeholder of a declared variable replaced, walking
    the parsed JSON (never its text): a string that is only the placeholder becomes the value itself (an
    event object, a number); a placeholder inside a longer string takes a string or number value."""
    values = _variable_values(content.variables, given or {})
    return _fill(content.tiles, values) if values else content.tiles
