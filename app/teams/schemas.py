"""The team (PostHog's project and environment) as its settings endpoints show and take it. The fields are the
ones queries depend on, with PostHog's names; the rest of PostHog's team serializer is not here yet."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.validation import SafeStr, reject_nul


class Team(BaseModel):
    """`GET /api/projects/{id}/` and `/api/environments/{id}/`."""

    id: int
    uuid: UUID
    organization: UUID
    project_id: int
    api_token: str
    name: str
    created_at: datetime
    timezone: str
    test_account_filters: list[dict[str, Any]]
    test_account_filters_default_checked: bool | None = None
    week_start_day: int | None
    # PostHog's basic team fields, with its defaults where Tilecast has no such notion.
    completed_snippet_onboarding: bool = True
    has_completed_onboarding_for: dict[str, Any] | None = None
    ingested_event: bool = Field(description="Whether the project has received an event.")
    is_demo: bool = False
    access_control: bool = False


_ZONES = frozenset(available_timezones())


def _timezone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError(f'"{value}" is not a valid choice.')
    return value


class TeamUpdate(BaseModel):
    """`PATCH`: the settings given change; unknown fields are ignored, as PostHog's serializer does."""

    model_config = ConfigDict(extra="ignore")

    name: SafeStr | None = Field(default=None, max_length=200)
    timezone: Annotated[str, AfterValidator(_timezone)] | None = None
    week_start_day: int | None = Field(default=None, description="0: weeks start on Sunday; 1: on Monday.")
    test_account_filters: Annotated[list[dict[str, Any]], AfterValidator(reject_nul)] | None = Field(
        default=None,
        max_length=100,
        description="Property filters that `filterTestAccounts: true` adds to a query.",
    )

    @field_validator("week_start_day")
    @classmethod
    def _week_start(cls, value: int | None) -> int | None:
        if value not in (None, 0, 1):
            raise ValueError(f'"{value}" is not a valid choice.')
        return value
