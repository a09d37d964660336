"""Payloads and requests several test modules share: an insight query, a new dashboard, the key sets of
PostHog's objects."""

from typing import Any

import httpx

from tests.factories import Actor

USER_BASIC_KEYS = {
    "id", "uuid", "distinct_id", "first_name", "last_name", "email", "is_email_verified", "hedgehog_config",
    "role_at_organization",
}  # fmt: skip

INSIGHT_KEYS = {
    "id", "short_id", "name", "derived_name", "query", "filters", "order", "deleted", "dashboards",
    "dashboard_tiles", "last_refresh", "cache_target_age", "next_allowed_client_refresh", "result", "hasMore",
    "columns", "created_at", "created_by", "description", "updated_at", "tags", "favorited", "saved",
    "last_modified_at", "last_modified_by", "is_sample", "effective_restriction_level",
    "effective_privilege_level", "user_access_level", "timezone", "is_cached", "query_status", "hogql",
    "types", "alerts", "last_viewed_at", "error",
}  # fmt: skip


def trends(event_name: str = "$pageview", **source: Any) -> dict[str, Any]:
    """An `InsightVizNode` of a daily `total` trend over the last 7 days; `source` keys override."""
    return {
        "kind": "InsightVizNode",
        "source": {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": event_name, "math": "total"}],
            "interval": "day",
            "dateRange": {"date_from": "-7d"},
            **source,
        },
    }


async def new_dashboard(client: httpx.AsyncClient, actor: Actor, **body: Any) -> int:
    response = await client.post(actor.url("dashboards/"), json={"name": "D", **body}, headers=actor.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])
