"""Request and response schemas of the dashboards resource, field for field as PostHog documents them."""

import uuid
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.insights.schemas import DashboardTileBasic, Insight
from app.schemas import UserBasic
from app.validation import BodyId, SafeStr, SafeStr400, reject_nul


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
        return f"{title}: {_latest_numbers(insight.result if insight else None)}"


def _latest_numbers(result: Any) -> str:
    """The latest value of each series (or its aggregated value), for the plain-text rendering."""
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
        parts.append(f"{series.get('label', '')} {value}".strip())
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


class DashboardWrite(BaseModel):
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
    tags: list[SafeStr] | None = None
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


class DashboardUpdate(DashboardWrite):
    # PostHog's update path reports a bad `variables` with the word "Filters"; kept for compatibility.
    @field_validator("variables")
    @classmethod
    def _variables(cls, value: Any) -> dict[str, Any] | None:
        return _must_be_object(value, "Filters must be a dictionary")


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
