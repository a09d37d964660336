"""Request and response schemas of the dashboards resource, field for field as PostHog documents them."""

import uuid
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.insights.schemas import DashboardTileBasic, Insight
from app.query.text import result_lines, table_lines
from app.schemas import UserBasic
from app.validation import BodyId, SafeStr, SafeStr400, TagList, reject_nul


class RestrictionLevel(IntEnum):
    EVERYONE_IN_PROJECT_CAN_EDIT = 21
    ONLY_COLLABORATORS_CAN_EDIT = 37


class PrivilegeLevel(IntEnum):
    CAN_VIEW = 21
    CAN_EDIT = 37


class CreationMode(StrEnum):
    DEFAULT = "default"
    TEMPLATE = "template"
    DUPLICATE = "duplicate"
    UNLISTED = "unlisted"


class DashboardBasic(BaseModel):
    """The list serializer: every field read-only, no tiles, filters or variables."""

    id: int
    name: str | None
    description: str
    pinned: bool
    created_at: datetime
    created_by: UserBasic | None
    last_accessed_at: datetime | None
    last_viewed_at: datetime | None
    is_shared: bool
    deleted: bool
    creation_mode: CreationMode
    tags: list[str]
    restriction_level: RestrictionLevel
    effective_restriction_level: RestrictionLevel
    effective_privilege_level: PrivilegeLevel
    user_access_level: str | None = Field(
        description="The effective access level the user has for this object"
    )
    access_control_version: str
    last_refresh: datetime | None
    team_id: int

    def to_text(self) -> str:
        flags = " [pinned]" if self.pinned else ""
        tags = f"  tags: {', '.join(self.tags)}" if self.tags else ""
        return f"#{self.id}  {self.name or '(untitled)'}{flags}{tags}"


class TextContent(BaseModel):
    """The `text` of a text tile."""

    id: int
    body: str | None
    created_by: UserBasic | None
    last_modified_at: datetime
    last_modified_by: UserBasic | None
    team: int
    dashboard_tiles: list[DashboardTileBasic]


class Tile(BaseModel):
    """One element of a dashboard's `tiles` (reference §2.3)."""

    id: int
    insight: Insight | None
    text: TextContent | None
    layouts: dict[str, Any]
    color: str | None
    filters_overrides: dict[str, Any] | None
    show_description: bool | None
    transparent_background: bool | None
    order: int
    last_refresh: datetime | None
    is_cached: bool
    # Present only when the insight cannot render: `{type, message}` naming what failed.
    error: dict[str, str] | None = Field(default=None, exclude_if=lambda value: value is None)

    def to_text(self) -> str:
        if self.text is not None:
            return f"[text] {(self.text.body or '').strip()}"
        insight = self.insight
        title = (insight.name or insight.derived_name or "(untitled)") if insight else "(empty)"
        if self.error is not None:
            return f"{title}: error: {self.error.get('message', '')}"
        if insight is not None and insight.columns is not None:
            lines: list[str] | None = table_lines(insight.columns, insight.result)
        else:
            lines = result_lines(insight.result if insight else None)
        if lines is not None:
            return "\n".join([f"{title}:", *(f"  {line}" for line in lines)])
        return f"{title}: {_latest_numbers(insight.result if insight else None)}"


def _percent(count: Any, first: Any) -> str:
    return (
        f"{count / first * 100:.1f}%" if isinstance(count, int) and isinstance(first, int) and first else "0%"
    )


def _funnel_steps(steps: list[Any]) -> str:
    """One funnel's steps on one line: "signup 3 → view 2 (66.7%) → buy 1 (33.3%)" (conversion from the
    first step)."""
    first = steps[0].get("count") if isinstance(steps[0], dict) else None
    parts = []
    for index, item in enumerate(steps):
        if not isinstance(item, dict):
            continue
        name = item.get("custom_name") or item.get("name") or "All events"
        count = item.get("count")
        parts.append(f"{name} {count}" if index == 0 else f"{name} {count} ({_percent(count, first)})")
    line = " \u2192 ".join(parts)
    value = steps[0].get("breakdown_value") if isinstance(steps[0], dict) else None
    if isinstance(value, list):
        line = f"{', '.join(str(part) for part in value) or '(none)'}: {line}"
    return line


def _is_funnel_step(item: Any) -> bool:
    return isinstance(item, dict) and "order" in item and "people" in item


def _funnel_numbers(result: Any) -> str | None:
    """A funnel's plain text (steps, each breakdown value's steps, or time to convert), None for others."""
    if isinstance(result, dict) and "bins" in result:
        average = result.get("average_conversion_time")
        if average is None:
            return "time to convert: no conversions"
        return f"time to convert: average {average:.0f} s"
    if isinstance(result, list) and result and _is_funnel_step(result[0]):
        return _funnel_steps(result)
    if isinstance(result, list) and result and isinstance(result[0], list) and result[0]:
        if _is_funnel_step(result[0][0]):
            return "; ".join(_funnel_steps(group) for group in result if group)
    return None


def _latest_numbers(result: Any) -> str:
    """The latest value of each series (or its aggregated value), for the plain-text rendering; a funnel's
    steps with their conversion."""
    funnel = _funnel_numbers(result)
    if funnel is not None:
        return funnel
    if not isinstance(result, list) or not result:
        return "no result cached"
    parts = []
    for series in result:
        if not isinstance(series, dict):
            continue
        value = series.get("aggregated_value")
        if value is None:
            data = series.get("data") or []
            value = data[-1] if data else series.get("count")
        label = str(series.get("label", ""))
        if "label" not in series and "days" in series and "count" in series:
            # A funnel's conversion over time: the latest period's rate.
            label, value = "conversion", f"{value}%"
        if series.get("compare_label"):
            label = f"{label} ({series['compare_label']})"
        parts.append(f"{label} {value}".strip())
    return "; ".join(parts) or "no result cached"


class Dashboard(DashboardBasic):
    """The full serializer (retrieve, create, update)."""

    filters: dict[str, Any]
    variables: dict[str, Any] | None
    breakdown_colors: Any
    data_color_theme_id: int | None
    persisted_filters: dict[str, Any] | None
    persisted_variables: dict[str, Any] | None
    tiles: list[Tile] | None

    def to_text(self) -> str:
        lines = [self.name or f"Dashboard {self.id}"]
        if self.description:
            lines.append(self.description)
        lines.append("")
        lines.extend(tile.to_text() for tile in self.tiles or [])
        if not self.tiles:
            lines.append("(no tiles)")
        return "\n".join(lines) + "\n"


def _must_be_object(value: Any, message: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(message)
    return value


class _DashboardFields(BaseModel):
    """Writable fields of a dashboard; unknown keys are ignored, as DRF does."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"name": "Key metrics", "description": "What we watch every morning", "tags": ["growth"]}
            ]
        },
    )

    name: SafeStr400 | None = None
    description: SafeStr | None = None
    pinned: bool | None = None
    last_accessed_at: datetime | None = None
    deleted: bool | None = None
    breakdown_colors: Annotated[Any, AfterValidator(reject_nul)] = None
    data_color_theme_id: BodyId | None = None
    tags: TagList | None = None
    restriction_level: Literal[21, 37] | None = None
    last_refresh: datetime | None = None
    filters: Annotated[Any, AfterValidator(reject_nul)] = Field(
        default=None, description="Dashboard filters; an object."
    )
    variables: Annotated[Any, AfterValidator(reject_nul)] = Field(
        default=None, description="Dashboard variables; an object."
    )
    use_template: SafeStr | None = None
    use_dashboard: BodyId | None = None
    delete_insights: bool = False
    create_in_folder: SafeStr400 | None = Field(default=None, alias="_create_in_folder")

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: Any) -> dict[str, Any] | None:
        return _must_be_object(value, "Filters must be a dictionary")

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: Any) -> dict[str, Any] | None:
        return _must_be_object(value, "Variables must be a dictionary")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        normalized = [tag.strip().lower() for tag in value]
        for tag in normalized:
            if len(tag) > 255:
                raise ValueError("Ensure each tag has no more than 255 characters.")
        return list(dict.fromkeys(tag for tag in normalized if tag))

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("This field may not be null.")
        return value

    @field_validator("pinned", "deleted", "restriction_level")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field may not be null.")
        return value


class DashboardWrite(_DashboardFields):
    """The body of a create."""

    duplicate_tiles: bool = Field(
        default=False,
        description="With `use_dashboard`: copy the insights and texts too (deep copy), not only the tiles.",
    )
    template_variables: Annotated[dict[str, Any], AfterValidator(reject_nul)] | None = Field(
        default=None,
        description="With `use_template`: values of the template's variables, by variable id; each "
        "`{ID}` placeholder in the template's tiles is replaced by its value (Tilecast).",
    )


TEXT_BODY_MAX = 4000


class TextEdit(BaseModel):
    """The `text` of a tile item in an update: an existing text by `id`, or a new one."""

    model_config = ConfigDict(extra="ignore")

    id: BodyId | None = None
    body: SafeStr | None = None

    @field_validator("body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        if value is not None and len(value) > TEXT_BODY_MAX:
            raise ValueError(f"Text body cannot exceed {TEXT_BODY_MAX} characters")
        return value


# The display fields a tile item may change (reference §2.2, update step 6).
TILE_DISPLAY_FIELDS = (
    "deleted",
    "color",
    "layouts",
    "filters_overrides",
    "show_description",
    "transparent_background",
)


class TileEdit(BaseModel):
    """One partial tile of an update's `tiles`. `insight`, `order` and `is_cached` are read-only here:
    insight tiles are added from the insight (`dashboards: [...]`)."""

    model_config = ConfigDict(extra="ignore")

    id: BodyId | None = None
    text: TextEdit | None = None
    deleted: bool | None = None
    color: Annotated[SafeStr, Field(max_length=400)] | None = None
    layouts: Annotated[dict[str, Any], AfterValidator(reject_nul)] = Field(
        default_factory=dict, description="Positions by breakpoint: `sm` (12 columns) and `xs` (1 column)."
    )
    filters_overrides: Annotated[dict[str, Any] | None, AfterValidator(reject_nul)] = None
    show_description: bool | None = None
    transparent_background: bool | None = None

    def display_fields(self) -> dict[str, Any]:
        """The display fields this item gives, and only those."""
        return {name: getattr(self, name) for name in TILE_DISPLAY_FIELDS if name in self.model_fields_set}


class TileDuplicate(BaseModel):
    """One item of an update's `duplicate_tiles`: a tile of this dashboard to deep-copy onto it."""

    model_config = ConfigDict(extra="ignore")

    id: BodyId
    layouts: Annotated[dict[str, Any], AfterValidator(reject_nul)] | None = None


class DashboardUpdate(_DashboardFields):
    """The body of an update (PATCH or PUT)."""

    tiles: list[TileEdit] | None = Field(
        default=None,
        description="Partial tiles: `{text: {body}}` adds a text, `{text: {id, body}}` edits one, "
        "`{id, ...display fields}` changes a tile, `{id, deleted: true}` removes it.",
    )
    duplicate_tiles: list[TileDuplicate] | None = Field(
        default=None, description="Tiles of this dashboard to copy onto it, insights and texts included."
    )

    # PostHog's update path reports a bad `variables` with the word "Filters"; kept for compatibility.
    @field_validator("variables")
    @classmethod
    def _variables(cls, value: Any) -> dict[str, Any] | None:
        return _must_be_object(value, "Filters must be a dictionary")


class TileRef(BaseModel):
    """The moved tile: the client may send the whole tile, only `id` is read."""

    model_config = ConfigDict(extra="ignore")

    id: BodyId


class MoveTile(BaseModel):
    """The body of `move_tile`."""

    # Only PostHog's spelling, `toDashboard`, is read.
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"tile": {"id": 12}, "toDashboard": 3}]}
    )

    tile: TileRef
    to_dashboard: BodyId = Field(alias="toDashboard", description="The dashboard the tile moves to.")


class CollaboratorCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_uuid: uuid.UUID
    level: Literal[37] = Field(description="Only 37 (can edit) can be granted explicitly.")


class Collaborator(BaseModel):
    id: uuid.UUID
    dashboard_id: int
    user: UserBasic
    level: PrivilegeLevel
    added_at: datetime
    updated_at: datetime
