"""SQL pieces the retention, lifecycle and stickiness statements share (SQLAlchemy Core, bound parameters).

Periods are naive local datetimes, `date_trunc(unit, timestamp AT TIME ZONE tz)`, as for trends (weeks start
on the team's day): the same values `dates.floor_to` gives in Python, so rows and periods match without
conversion. Period arithmetic happens on those naive values.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Date, DateTime, Integer, Interval, cast, extract, func, literal
from sqlalchemy.sql.elements import ColumnElement

from app.query.base import QueryContext
from app.query.filters import EVENTS, property_text
from app.query.schema import PropertyGroupFilter, PropertyNode, parse_property_nodes
from app.query.trends_sql import FilterNode, SeriesFilters

# breakdown_normalize_url: trailing "/", "?" and "#" are not part of the page.
_URL_TRAILER = r"[/?#]+$"


def series_filters(
    properties: list[PropertyNode] | PropertyGroupFilter | None,
    filter_test_accounts: bool | None,
    ctx: QueryContext,
    own: tuple[FilterNode, ...],
) -> SeriesFilters:
    """The filters a lifecycle or stickiness series' events must match, as the query states them (the query's
    `properties`, the team's test-account filters with `filterTestAccounts`, the series' own): each backend
    compiles them to its own SQL, as for a trends series."""
    test_accounts: tuple[FilterNode, ...] = ()
    if filter_test_accounts and ctx.test_account_filters:
        test_accounts = tuple(parse_property_nodes(list(ctx.test_account_filters)))
    return SeriesFilters(properties, test_accounts, own)


def local(column: ColumnElement[datetime], tz: str) -> ColumnElement[datetime]:
    return func.timezone(literal(tz), column, type_=DateTime())


def bucket_of(
    column: ColumnElement[datetime], interval: str, tz: str, week_start: int
) -> ColumnElement[datetime]:
    """The local start of the period holding `column` (a timestamptz)."""
    at = local(column, tz)
    if interval == "week" and week_start != 1:
        # date_trunc weeks start on Monday; shifting by a day makes them start on Sunday.
        one_day = literal(timedelta(days=1), Interval())
        return func.date_trunc(literal("week"), at + one_day, type_=DateTime()) - one_day
    return func.date_trunc(literal(interval), at, type_=DateTime())


def event_bucket(interval: str, tz: str, week_start: int) -> ColumnElement[datetime]:
    return bucket_of(EVENTS.c.timestamp, interval, tz, week_start)


def one_period(interval: str) -> ColumnElement[Any]:
    """One period as an SQL interval (months are calendar months)."""
    return cast(literal(f"1 {interval}"), Interval())


def periods_between(
    later: ColumnElement[Any], earlier: ColumnElement[Any], interval: str
) -> ColumnElement[int]:
    """How many periods `later` is after `earlier` (both period starts)."""
    if interval == "month":
        months = (extract("year", later) - extract("year", earlier)) * 12 + (
            extract("month", later) - extract("month", earlier)
        )
        return cast(months, Integer)
    if interval == "hour":
        return cast(func.round(extract("epoch", later - earlier) / 3600), Integer)
    days = cast(later, Date).op("-", return_type=Integer)(cast(earlier, Date))
    if interval == "week":
        return days // 7
    return days


def breakdown_text(key: str, kind: str, normalize_url: bool) -> ColumnElement[str]:
    """A breakdown property as text: null (and a missing property) is "" (retention's rule)."""
    value: ColumnElement[str] = property_text(key, kind)
    if normalize_url:
        trimmed = func.regexp_replace(value, literal(_URL_TRAILER), literal(""))
        value = func.coalesce(func.nullif(trimmed, literal("")), func.nullif(value, trimmed))
        # A value made only of trailers ("/") stays "/".
    return func.coalesce(value, literal(""))
