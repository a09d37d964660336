"""`app.schemas.trusted`: the same model (and JSON) as validation makes, from values already of their type."""

import uuid
from datetime import UTC, datetime

from app.dashboards.schemas import Tile
from app.insights.schemas import DashboardTileBasic, Insight
from app.schemas import UserBasic, trusted

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
USER = {
    "id": 1,
    "uuid": uuid.UUID(int=7),
    "distinct_id": None,
    "first_name": "Ada",
    "last_name": "",
    "email": "ada@example.com",
    "is_email_verified": None,
    "hedgehog_config": None,
    "role_at_organization": None,
}


def _insight_values() -> dict[str, object]:
    # Out of declaration order on purpose, and without the fields that have defaults.
    return {
        "short_id": "abc",
        "id": 3,
        "name": "Ünïcode \u2028 name",
        "derived_name": None,
        "query": {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": []}},
        "filters": {},
        "order": None,
        "deleted": False,
        "dashboards": [1],
        "dashboard_tiles": [trusted(DashboardTileBasic, {"id": 5, "dashboard_id": 1, "deleted": False})],
        "last_refresh": NOW,
        "cache_target_age": None,
        "next_allowed_client_refresh": None,
        "result": [{"data": [1.5, 2]}],
        "hasMore": False,
        "created_at": NOW,
        "created_by": UserBasic.from_columns(list(USER.values())),
        "description": "",
        "updated_at": NOW,
        "tags": ["a"],
        "favorited": False,
        "saved": True,
        "last_modified_at": NOW,
        "last_modified_by": None,
        "is_sample": False,
        "effective_restriction_level": 21,
        "effective_privilege_level": 37,
        "user_access_level": "editor",
        "timezone": "UTC",
        "is_cached": True,
    }


def test_trusted_insight_serializes_as_validated() -> None:
    values = _insight_values()
    built = trusted(Insight, values)
    validated = Insight(**values)
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_dump(mode="json") == validated.model_dump(mode="json")
    assert list(built.__dict__) == list(Insight.model_fields)  # the JSON's key order
    assert built.alerts == [] and built.alerts is not trusted(Insight, values).alerts  # fresh defaults
    assert built.raw_result is None  # private attributes get their defaults


def test_trusted_tile_keeps_error_excluded_when_none() -> None:
    values = {
        "id": 1,
        "insight": None,
        "text": None,
        "layouts": {},
        "color": None,
        "filters_overrides": None,
        "show_description": None,
        "transparent_background": None,
        "order": 0,
        "last_refresh": None,
        "is_cached": False,
    }
    assert trusted(Tile, values).model_dump_json() == Tile(**values).model_dump_json()
    assert "error" not in trusted(Tile, values).model_dump(mode="json")


def test_user_from_columns() -> None:
    assert UserBasic.from_columns([None] * len(USER)) is None
    assert UserBasic.from_columns(list(USER.values())) == UserBasic(**USER)
