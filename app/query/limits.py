"""How much work a TrendsQuery may ask for (`QueryLimits`), checked before any SQL runs where the query alone
tells, and on the result as it is shaped where only the data does.

- values in one property filter, and the bind parameters of each statement: from the parsed query;
- breakdown values x time buckets of a series: from the resolved date range and `breakdown_limit`;
- the JSON size of the result: measured series by series while it is shaped (`ResultBudget`), so an
  oversized result stops growing at the limit instead of being built whole first.

Each is a `QueryTooLarge` naming the field to change.
"""

import json
from collections.abc import Iterator
from typing import Any

from app.query.base import Path, QueryLimits, QueryTooLarge
from app.query.dates import ResolvedRange
from app.query.filters import FILTER_PARAMETERS
from app.query.schema import (
    OtherSeriesNode,
    PropertyFilter,
    PropertyGroupFilter,
    TrendsQuery,
    TrendsSeries,
    series_filters,
)
from app.query.trends_sql import STATEMENT_PARAMETERS


def _filters(nodes: Any, path: Path) -> Iterator[tuple[PropertyFilter, Path]]:
    """Every filter of a `properties` value (a list or a group, nested), with its path."""
    if isinstance(nodes, PropertyGroupFilter):
        yield from _filters(nodes.values, (*path, "values"))
    elif isinstance(nodes, PropertyFilter):
        yield nodes, path
    elif nodes is not None:
        for index, node in enumerate(nodes):
            yield from _filters(node, (*path, index))


def _count_and_check_values(nodes: Any, path: Path, limits: QueryLimits) -> int:
    """The filters under `path`, once each has been checked against the value limit."""
    count = 0
    for node, where in _filters(nodes, path):
        if isinstance(node.value, list) and len(node.value) > limits.filter_values:
            field = ".".join(str(part) for part in (*where, "value"))
            raise QueryTooLarge(
                f"{field}: {len(node.value):,} values in one filter, more than the limit of "
                f"{limits.filter_values:,}",
                path=(*where, "value"),
            )
        count += 1
    return count


def _group_nodes(series: TrendsSeries) -> int:
    """A group's event names: one bind parameter each at most (its nodes' filters are counted as filters)."""
    return len(getattr(series, "nodes", ()))


def statement_parameters(query: TrendsQuery, series: TrendsSeries) -> int:
    """At most how many bind parameters the statement of `series` has: it carries the query's filters and
    its own."""
    filters = [query.properties, *(nodes for nodes, _ in series_filters(series))]
    return (
        STATEMENT_PARAMETERS
        + _group_nodes(series)
        + FILTER_PARAMETERS * sum(sum(1 for _ in _filters(nodes, ())) for nodes in filters)
    )


def check_filters(query: TrendsQuery, limits: QueryLimits) -> None:
    """Values per filter, and bind parameters per statement (`statement_parameters`)."""
    shared = _count_and_check_values(query.properties, ("properties",), limits)
    for index, series in enumerate(query.series):
        if isinstance(series, OtherSeriesNode):
            continue  # other kinds are refused as not supported
        own = sum(
            _count_and_check_values(nodes, ("series", index, *path), limits)
            for nodes, path in series_filters(series)
        )
        parameters = STATEMENT_PARAMETERS + _group_nodes(series) + FILTER_PARAMETERS * (shared + own)
        if parameters > limits.parameters:
            path: Path = ("series", index, "properties") if own > shared else ("properties",)
            raise QueryTooLarge(
                f"{shared + own:,} property filters in series {index} (with the query's own) need up to "
                f"{parameters:,} bind parameters, more than the limit of {limits.parameters:,}; "
                "use one filter with a list of values instead of many filters",
                path=path,
            )


def check_points(query: TrendsQuery, period: ResolvedRange, limit: int | None, limits: QueryLimits) -> None:
    """Breakdown values (`limit`, None without a breakdown) x time buckets of one series over `period`.
    Total-value displays have one value per breakdown value, whatever the range."""
    buckets = 1 if query.is_total_value else len(period.buckets)
    points = (limit or 1) * buckets
    if points <= limits.breakdown_points:
        return
    if limit is None:
        raise QueryTooLarge(
            f"dateRange: {buckets:,} {period.interval} intervals, more than the limit of "
            f"{limits.breakdown_points:,} data points per series; use a shorter date range or a longer "
            "interval",
            path=("dateRange",),
        )
    raise QueryTooLarge(
        f"breakdownFilter.breakdown_limit: {limit:,} breakdown values x {buckets:,} {period.interval} "
        f"intervals is {points:,} data points per series, more than the limit of "
        f"{limits.breakdown_points:,}; lower breakdown_limit, or use a shorter date range or a longer "
        "interval",
        path=("breakdownFilter", "breakdown_limit"),
    )


class ResultBudget:
    """The JSON of a result as it is shaped: each series' results serialized once (the text the cache
    stores), refused as soon as the total passes the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = len('{"results": []}')

    def serialize(self, result: dict[str, Any]) -> str:
        text = json.dumps(result)
        self.size += len(text) + 2  # ", " between results
        if self.size > self.limit:
            raise QueryTooLarge(
                f"The result is larger than the limit of {self.limit:,} bytes of JSON; use fewer series, "
                "a lower breakdown_limit, a shorter date range or a longer interval"
            )
        return text
