"""Definition payloads, field for field as PostHog's serializers (for events: without enterprise taxonomy)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field


class EventDefinition(BaseModel):
    id: UUID
    name: str
    created_at: datetime | None
    last_seen_at: datetime | None
    last_updated_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    # Events of this name with a timestamp in the last 30 days, counted when the page is read.
    volume_30_day: int | None
    query_usage_30_day: int | None = None
    is_action: bool = False
    action_id: int | None = None
    created_by: Any = None
    post_to_slack: bool = False


class PropertyDefinition(BaseModel):
    id: UUID
    name: str
    is_numerical: bool
    # `String`, `Numeric`, `Boolean`, `DateTime`, or null when no typed value was seen yet.
    property_type: str | None
    tags: list[str] = Field(default_factory=list)
    # Whether the property was seen on one of the `event_names` asked for; null when none were.
    is_seen_on_filtered_events: bool | None
