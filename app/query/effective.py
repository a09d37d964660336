"""The effective query of a tile: the insight's query with the dashboard's filters applied (DESIGN.md
"Filters"): `date_from`/`date_to` replace its `dateRange`, `properties` are ANDed with its properties,
`breakdown_filter` replaces its `breakdownFilter`. Applied once for the dashboard's effective filters (stored
`filters` with `filters_override` merged over them) and again for the tile's `filters_overrides`."""

import copy
from typing import Any

# The dashboard filter keys that change a tile's query; others (e.g. `__template_version`) are kept but inert.
TILE_FILTER_KEYS = ("date_from", "date_to", "properties", "breakdown_filter")
NO_BREAKDOWN_KINDS = frozenset({"LifecycleQuery", "StickinessQuery"})


def merge_filters(stored: dict[str, Any] | None, override: dict[str, Any] | None) -> dict[str, Any]:
    """`filters_override` over the stored filters: its keys win."""
    return {**(stored or {}), **(override or {})}


def _as_group(properties: Any) -> dict[str, Any]:
    if isinstance(properties, dict) and properties.get("type") in ("AND", "OR"):
        return properties
    return {"type": "AND", "values": list(properties or [])}


def _and(existing: Any, extra: Any) -> Any:
    if not existing:
        return extra
    if not extra:
        return existing
    if isinstance(existing, list) and isinstance(extra, list):
        return [*existing, *extra]
    return {"type": "AND", "values": [_as_group(existing), _as_group(extra)]}


def apply_filters(query: Any, filters: dict[str, Any] | None) -> Any:
    """A copy of `query` (an InsightVizNode or a bare source) with `filters` applied; the query itself when
    there is nothing to apply or it is not a query object."""
    if not filters or not isinstance(query, dict):
        return query
    relevant = {k: filters[k] for k in TILE_FILTER_KEYS if k in filters}
    if not relevant:
        return query
    result = copy.deepcopy(query)
    source = result.get("source") if result.get("kind") == "InsightVizNode" else result
    if not isinstance(source, dict):
        return query
    if "date_from" in relevant or "date_to" in relevant:
        date_range = {"date_from": relevant.get("date_from"), "date_to": relevant.get("date_to")}
        if "explicitDate" in filters:
            date_range["explicitDate"] = filters["explicitDate"]
        source["dateRange"] = {k: v for k, v in date_range.items() if v is not None}
    if relevant.get("properties"):
        source["properties"] = _and(source.get("properties"), relevant["properties"])
    # Kinds without breakdowns ignore the dashboard's (as PostHog).
    if relevant.get("breakdown_filter") is not None and source.get("kind") not in NO_BREAKDOWN_KINDS:
        source["breakdownFilter"] = relevant["breakdown_filter"]
    return result


def effective_query(
    query: Any, dashboard_filters: dict[str, Any] | None, tile_overrides: dict[str, Any] | None
) -> Any:
    return apply_filters(apply_filters(query, dashboard_filters), tile_overrides)
