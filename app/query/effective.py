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
    wrapped = result.get("kind") in ("InsightVizNode", "DataVisualizationNode", "DataTableNode")
    source = result.get("source") if wrapped else result
    if not isinstance(source, dict):
        return query
    if source.get("kind") == "HogQLQuery":
        return _apply_to_sql(query, result, source, relevant, filters)
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


def _apply_to_sql(
    query: Any, result: Any, source: dict[str, Any], relevant: dict[str, Any], filters: dict[str, Any]
) -> Any:
    """A SQL insight takes the dashboard's dates and properties into its `filters`, only when its text has
    the `{filters}` placeholder (as PostHog): otherwise it is unchanged."""
    if "{filters}" not in str(source.get("query") or ""):
        return query
    sql_filters = dict(source.get("filters") or {})
    if relevant.get("date_from") is not None or relevant.get("date_to") is not None:
        sql_filters["dateRange"] = {
            "date_from": relevant.get("date_from"),
            "date_to": relevant.get("date_to"),
            "explicitDate": bool(filters.get("explicitDate")),
        }
    if relevant.get("properties"):
        extra = relevant["properties"]
        extra = extra if isinstance(extra, list) else [extra]
        sql_filters["properties"] = [*(sql_filters.get("properties") or []), *extra]
    source["filters"] = sql_filters
    return result
