"""A StickinessQuery series over one period (`app.query.stickiness_sql.StickinessPlan`) as one ClickHouse
statement: the rows `stickiness_sql.stickiness_statement` returns, `(intervals, value)`: how many actors were
active in exactly k intervals, for each k. Filters compile as a trends series' (`app.clickhouse.trends`), with
the same corrections (JSON properties read as PostgreSQL's `->>`, local periods, weeks on the team's day)."""

from app.clickhouse.kinds import bucket_of, events_source, period_literal, periods_between
from app.clickhouse.trends import _TIMESTAMP, Statement, _utc, where_condition
from app.query.stickiness_sql import StickinessPlan

_OPERATORS = {"gte": ">=", "lte": "<=", "exact": "="}


def stickiness_sql(plan: StickinessPlan, database: str) -> Statement:
    st = Statement(database)
    conditions = [
        f"e.team_id = {st.team(plan.team_id)}",
        f"e.timestamp >= {st.bind(_utc(plan.start), _TIMESTAMP)}",
        f"e.timestamp <= {st.bind(_utc(plan.end), _TIMESTAMP)}",
    ]
    if plan.event is not None:
        conditions.append(f"e.event = {st.bind(plan.event, 'String')}")
    conditions.append(where_condition(st, plan.filters))
    slot = bucket_of(st, "e.timestamp", plan.interval, plan.tz, plan.week_start)
    if plan.interval_count > 1:
        # An interval is `interval_count` periods, counted back from the range's last period.
        back = periods_between(period_literal(st, plan.last, plan.interval), slot, plan.interval)
        slot = f"intDiv({back}, {st.bind(plan.interval_count, 'Int64')})"
    having = ""
    if plan.operator is not None:
        having = f" HAVING count() {_OPERATORS[plan.operator]} {st.bind(plan.value, 'Int64')}"
    source = events_source(st, plan.team_id)  # after the conditions: they say whether persons are read
    per_interval = (
        f"SELECT e.distinct_id AS actor, {slot} AS slot FROM {source} WHERE {' AND '.join(conditions)} "
        f"GROUP BY actor, slot{having}"
    )
    per_actor = f"SELECT actor, count() AS intervals FROM ({per_interval}) GROUP BY actor"
    st.sql = f"SELECT intervals, count() AS value FROM ({per_actor}) GROUP BY intervals"
    return st
