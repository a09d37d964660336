"""Insight payloads, field for field as PostHog's `Insight` schema."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from app.query.cache import RawJSON
from app.schemas import UserBasic
from app.validation import BodyId, IdList, SafeStr, SafeStr400, TagList, reject_nul, reject_nul_in_query


class DashboardTileBasic(BaseModel):
    id: int
    dashboard_id: int
    deleted: bool | None


class Insight(BaseModel):
    id: int
    short_id: str
    name: str | None
    derived_name: str | None
    query: dict[str, Any] | None
    filters: dict[str, Any]
    order: int | None
    deleted: bool
    dashboards: list[int]
    dashboard_tiles: list[DashboardTileBasic]
    last_refresh: datetime | None
    cache_target_age: datetime | None
    next_allowed_client_refresh: datetime | None
    result: Any
    hasMore: bool | None
    columns: list[Any] | None = None
    created_at: datetime | None
    created_by: UserBasic | None
    description: str | None
    updated_at: datetime
    tags: list[str]
    favorited: bool
    saved: bool
    last_modified_at: datetime
    last_modified_by: UserBasic | None
    is_sample: bool
    effective_restriction_level: int
    effective_privilege_level: int
    user_access_level: str | None
    timezone: str | None
    is_cached: bool
    query_status: None = None
    hogql: str | None = None
    types: list[Any] | None = None
    alerts: list[Any] = Field(default_factory=list)
    last_viewed_at: datetime | None = None
    error: dict[str, str] | None = Field(
        default=None, description="Why `result` could not be computed: `{type, message}` (Tilecast)."
    )
    # `result` as the cache's JSON text, when the serializer passes it through (`result` is None meanwhile).
    _raw_result: RawJSON | None = PrivateAttr(default=None)

    @property
    def raw_result(self) -> RawJSON | None:
        return self._raw_result

    def with_decoded_result(self) -> None:
        """`result` as Python values (for a serializer that does not pass the JSON text through)."""
        if self._raw_result is not None:
            self.result, self._raw_result = self._raw_result.value(), None

    def to_text(self) -> str:
        return f"#{self.id} {self.short_id}  {self.name or self.derived_name or '(untitled)'}"


def _query_object(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        raise ValueError("The query must be an object with a `kind`, e.g. an InsightVizNode.")
    return value


class InsightWrite(BaseModel):
    """Writable insight fields; unknown keys are ignored, as DRF does."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "name": "Daily pageviews",
                    "query": {
                        "kind": "InsightVizNode",
                        "source": {
                            "kind": "TrendsQuery",
                            "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}],
                            "interval": "day",
                            "dateRange": {"date_from": "-30d"},
                        },
                    },
                    "dashboards": [1],
                }
            ]
        },
    )

    name: SafeStr400 | None = None
    derived_name: SafeStr400 | None = None
    description: Annotated[SafeStr, Field(max_length=400)] | None = None
    query: Annotated[Any, AfterValidator(reject_nul_in_query), AfterValidator(_query_object)] = None
    filters: Annotated[Any, AfterValidator(reject_nul)] = None
    order: BodyId | None = None
    deleted: bool | None = None
    saved: bool | None = None
    favorited: bool | None = None
    dashboards: IdList | None = None
    tags: TagList | None = None
    create_in_folder: SafeStr400 | None = Field(default=None, alias="_create_in_folder")

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: Any) -> dict[str, Any] | None:
        if value is not None and not isinstance(value, dict):
            raise ValueError("Filters must be a dictionary")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return list(dict.fromkeys(t.strip().lower() for t in value if t.strip()))

    @field_validator("deleted", "saved", "favorited")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field may not be null.")
        return value
