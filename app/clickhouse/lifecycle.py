"""LifecycleQuery's statement (`app.query.lifecycle_sql.LifecyclePlan`) on ClickHouse: the rows
`lifecycle_sql.lifecycle_statement` returns, `(period, status, value)`, for the reported periods.

The same marking as on PostgreSQL: each actor's active periods in the read window, in order; the first `new`
when it is the period of the actor's first event ever (any event, any properties), else `resurrecting`; a
later one `returning` when the actor was active the period just before, else `resurrecting`; the period after
an active one `dormant` when the actor is not active then. Where ClickHouse differs:

- `lagInFrame`/`leadInFrame` give the type's default (1970-01-01), not NULL, past the actor's first or last
  period: the periods are made Nullable first, so "no period before" is NULL as PostgreSQL's `lag` says;
- their frame must be stated (`ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING`), or `leadInFrame`
  sees only up to the current row and every period would look like the actor's last (all dormant);
- the actors' creation periods are read only for the active actors (`IN`, a hash set in ClickHouse), not the
  team's every actor as PostgreSQL does (there, to keep the planner on one pass);
- a SELECT alias is visible in WHERE: the status column keeps its own name (an `assumeNotNull(status) AS
  status` made "no status" rows pass `status IS NOT NULL` and count as dormant).
"""

from app.clickhouse.kinds import ONE_PERIOD, bucket_of, events_source, period_literal
from app.clickhouse.trends import _TIMESTAMP, Statement, _utc, where_condition
from app.query.lifecycle_sql import LifecyclePlan


def lifecycle_sql(plan: LifecyclePlan, database: str) -> Statement:
    st = Statement(database)
    team = st.team(plan.team_id)
    conditions = [
        f"e.team_id = {team}",
        f"e.timestamp >= {st.bind(_utc(plan.read_from), _TIMESTAMP)}",
        f"e.timestamp < {st.bind(_utc(plan.read_to), _TIMESTAMP)}",
    ]
    if plan.event is not None:
        conditions.append(f"e.event = {st.bind(plan.event, 'String')}")
    conditions.append(where_condition(st, plan.filters))
    period = bucket_of(st, "e.timestamp", plan.interval, plan.tz, plan.week_start)
    source = events_source(st, plan.team_id)  # after the conditions: they say whether persons are read
    where = " AND ".join(conditions)
    active = f"SELECT DISTINCT e.distinct_id AS actor, {period} AS period FROM {source} WHERE {where}"
    first_seen = bucket_of(st, "min(c.timestamp)", plan.interval, plan.tz, plan.week_start)
    created = (
        f"SELECT c.distinct_id AS actor, {first_seen} AS created FROM {database}.events AS c "
        f"WHERE c.team_id = {team} AND c.distinct_id IN (SELECT actor FROM active) GROUP BY c.distinct_id"
    )
    window = (
        "OVER (PARTITION BY a.actor ORDER BY a.period "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
    )
    marked = (
        "SELECT a.period AS period, cr.created AS created, "
        f"lagInFrame(toNullable(a.period)) {window} AS previous, "
        f"leadInFrame(toNullable(a.period)) {window} AS following "
        "FROM active AS a INNER JOIN created AS cr ON cr.actor = a.actor"
    )
    step = ONE_PERIOD[plan.interval]
    status = (
        "multiIf(previous IS NULL, if(created = period, 'new', 'resurrecting'), "
        f"previous = period - {step}, 'returning', 'resurrecting')"
    )
    dormant = f"if(following IS NULL OR following != period + {step}, 'dormant', NULL)"
    # Both rows of an active period (its status, and the next period's dormant or nothing) from one pass.
    rows = (
        "SELECT pair.1 AS period_start, pair.2 AS status FROM marked "
        f"ARRAY JOIN [(period, toNullable({status})), (period + {step}, {dormant})] AS pair"
    )
    first, last = period_literal(st, plan.first, plan.interval), period_literal(st, plan.last, plan.interval)
    st.sql = (
        f"WITH active AS ({active}), created AS ({created}), marked AS ({marked}) "
        "SELECT period_start, status, count() AS value "
        f"FROM ({rows}) WHERE status IS NOT NULL AND period_start >= {first} AND period_start <= {last} "
        "GROUP BY period_start, status"
    )
    return st
