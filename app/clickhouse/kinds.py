"""What the lifecycle and stickiness statements on ClickHouse share, as `app.query.kinds_sql` does for
PostgreSQL: periods as naive local times (each timestamp moved by its own UTC offset in the team's timezone,
then truncated, weeks on the team's day: `app.clickhouse.trends.bucket_expr`), period arithmetic on them, and
the events joined to their current person properties when a filter reads them."""

from datetime import datetime

from app.clickhouse.trends import Statement, bucket_expr

# ClickHouse's interval of one period (months are calendar months, as PostgreSQL's `interval '1 month'`).
ONE_PERIOD = {
    "hour": "toIntervalHour(1)",
    "day": "toIntervalDay(1)",
    "week": "toIntervalWeek(1)",
    "month": "toIntervalMonth(1)",
}


def local_of(st: Statement, column: str, tz: str) -> str:
    """`column`'s local wall-clock time as a UTC DateTime64 (PostgreSQL's `column AT TIME ZONE tz`)."""
    if tz == "UTC":
        return column
    zone = st.bind(tz, "String")
    return f"addSeconds({column}, timeZoneOffset(toTimeZone({column}, {zone})))"


def bucket_of(st: Statement, column: str, interval: str, tz: str, week_start: int) -> str:
    """The local start of the period holding `column`: a DateTime for hours, a Date otherwise."""
    return bucket_expr(interval, local_of(st, column, tz), week_start)


def period_literal(st: Statement, value: datetime, interval: str) -> str:
    """A naive local period start, bound with the type `bucket_of` gives."""
    if interval == "hour":
        return st.bind(f"{value:%Y-%m-%d %H:%M:%S}", "DateTime('UTC')")
    return st.bind(f"{value:%Y-%m-%d}", "Date")


def periods_between(later: str, earlier: str, interval: str) -> str:
    """How many periods `later` is after `earlier` (both period starts, `later` not before `earlier`)."""
    if interval == "week":
        return f"intDiv(dateDiff('day', {earlier}, {later}), 7)"
    return f"dateDiff('{interval}', {earlier}, {later})"


def events_source(st: Statement, team_id: int) -> str:
    """The events (`e`), joined to their distinct ids' latest person properties (`pp`) when an expression
    built so far reads them: build the conditions first."""
    events = f"{st.database}.events AS e"
    if not st.persons:
        return events
    return (
        f"{events} LEFT JOIN (SELECT distinct_id, argMax(properties, version) AS properties "
        f"FROM {st.database}.person WHERE team_id = {st.team(team_id)} GROUP BY distinct_id) AS pp "
        "ON pp.distinct_id = e.distinct_id"
    )
