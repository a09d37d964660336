"""Dashboard template payloads, field for field as PostHog's `DashboardTemplate` serializer."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.validation import MAX_LIST_ITEMS, SafeStr, reject_nul

Scope = Literal["team", "global", "feature_flag", ""]
ShortText = Annotated[str, StringConstraints(max_length=255), AfterValidator(reject_nul)]
Text400 = Annotated[str, StringConstraints(max_length=400), AfterValidator(reject_nul)]
JSONValue = Annotated[Any, AfterValidator(reject_nul)]


class DashboardTemplate(BaseModel):
    id: UUID
    template_name: str | None
    dashboard_description: str | None
    dashboard_filters: Any
    tags: list[str] | None
    tiles: Any
    variables: Any
    deleted: bool | None
    created_at: datetime | None
    created_by: int | None
    image_url: str | None
    team_id: int | None
    scope: str | None
    availability_contexts: list[str] | None

    def to_text(self) -> str:
        where = "global" if self.team_id is None else f"team {self.team_id}"
        return f"{self.id}  {self.template_name or '(untitled)'}  [{where}]"


class DashboardTemplateWrite(BaseModel):
    """A template's writable fields (create, PUT and PATCH); unknown and read-only keys are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "template_name": "Signups",
                    "dashboard_description": "Who signs up",
                    "dashboard_filters": {"date_from": "-30d"},
                    "tags": ["growth"],
                    "tiles": [
                        {
                            "type": "INSIGHT",
                            "name": "Signups",
                            "query": {
                                "kind": "InsightVizNode",
                                "source": {
                                    "kind": "TrendsQuery",
                                    "series": [{"kind": "EventsNode", "event": "{SIGNUP_EVENT}"}],
                                },
                            },
                            "layouts": {"sm": {"x": 0, "y": 0, "w": 6, "h": 5}},
                        }
                    ],
                    "variables": [
                        {
                            "id": "SIGNUP_EVENT",
                            "name": "Signup event",
                            "type": "event",
                            "default": {},
                            "description": "The event that marks a signup",
                            "required": True,
                        }
                    ],
                }
            ]
        },
    )

    template_name: Text400 | None = None
    dashboard_description: Text400 | None = None
    dashboard_filters: JSONValue = None
    tags: Annotated[list[ShortText], Field(max_length=MAX_LIST_ITEMS)] | None = None
    tiles: JSONValue = Field(default=None, description="The tiles: `INSIGHT` tiles and `TEXT` tiles.")
    variables: JSONValue = None
    deleted: bool | None = None
    image_url: Annotated[SafeStr, StringConstraints(max_length=8201)] | None = None
    scope: Scope | None = None
    availability_contexts: Annotated[list[ShortText], Field(max_length=MAX_LIST_ITEMS)] | None = None

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list):
            raise ValueError("Tiles must be a list.")
        return value
