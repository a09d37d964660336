"""Payloads of `snapshot` and `analyze_refresh_result`."""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StringConstraints
from pydantic_core import PydanticCustomError

from app.validation import MAX_LIST_ITEMS, SafeStr400, reject_nul


def _not_empty(value: Any) -> Any:
    if value is None or value == "" or value == [] or value == {}:
        raise PydanticCustomError("invalid", "Data cannot be empty.")
    return reject_nul(value)


# A tile's id, as the key of `client_results`.
TileKey = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]


class ClientResult(BaseModel):
    """One tile's result as the client shows it."""

    insight_name: SafeStr400
    # Any JSON, as PostHog; it must not be empty.
    data: Annotated[JsonValue, AfterValidator(_not_empty)]


class SnapshotRequest(BaseModel):
    """`snapshot`'s optional body: without `client_results`, the tiles' cached results are the "before"."""

    client_results: Annotated[dict[TileKey, ClientResult], Field(max_length=MAX_LIST_ITEMS)] | None = None


class AnalyzeRequest(BaseModel):
    """`analyze_refresh_result`'s body. Any JSON is taken as `cache_key` (PostHog's lookup): a value that is
    not a snapshot's key is "not found"."""

    cache_key: JsonValue = Field(default=None, description="The `cache_key` a `snapshot` answered.")


class SnapshotCreated(BaseModel):
    cache_key: str


class SeriesChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str
    before: float | int | None = Field(description="The series' headline number before the refresh.")
    after: float | int | None = Field(description="The series' headline number after the refresh.")
    delta: float | int | None = Field(description="after - before; null when either is missing.")
    pct_change: float | int | None = Field(description="delta / before in %; null when before is 0.")


class TileChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tile_id: int
    insight_name: str
    kind: Literal["changed", "new", "removed"]
    series: list[SeriesChangeOut]


class RefreshAnalysis(BaseModel):
    result: str = Field(
        description="A short plain-text summary: at most five bullets, largest changes first."
    )
    changes: list[TileChangeOut] = Field(description="Every changed tile and its changed series.")
