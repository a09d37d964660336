"""A trends series plan (`app.query.trends_sql.SeriesPlan`) as one ClickHouse statement.

The same plan PostgreSQL runs through `trends_sql`, compiled to SQL text with ClickHouse's own query
parameters (`{p0:String}`): every key, value, pattern, date and the team are bound, never formatted into the
text. The statement returns the rows `trends_sql.series_statement` does, column for column: `bucket` (time
series), `breakdown` and `rank` (breakdown), `value`.

Where the two databases differ, this module makes ClickHouse answer what PostgreSQL does:

- properties are JSON text here (`properties String`), jsonb there: a property reads as PostgreSQL's
  `properties ->> key` does (strings unquoted, numbers and booleans as their JSON text, JSON null and a
  missing key as NULL), with PostgreSQL's three-valued logic for missing properties;
- buckets: PostgreSQL truncates `timestamp AT TIME ZONE tz`, a naive local time; here each timestamp is moved
  by its own UTC offset in the team's timezone (`timeZoneOffset`), then truncated as UTC, which is the same
  naive wall-clock arithmetic (DST days have 23 or 25 hours, a repeated hour is one bucket). Weeks start on
  the team's day (`toStartOfWeek` mode 0: Sunday, 1: Monday);
- percentiles: PostgreSQL's `percentile_cont` interpolates `lo + (hi - lo) * fraction` between the two
  closest ranks; ClickHouse's `quantile*` functions round differently in the last bits, so the same formula is
  computed here over the sorted values;
- regular expressions: ClickHouse uses RE2, PostgreSQL its own dialect. A pattern RE2 cannot compile is a
  query error (`backend`); `\\b` and `\\B`, which both accept with different meanings, are refused here;
- ranks of breakdown values break ties by the value in byte order, as PostgreSQL's `COLLATE "C"`; the null
  and "other" values are labels, never NULLs, so no NULL ordering is involved.
"""

from datetime import UTC, datetime
from typing import Any

from app.query.base import InvalidQuery
from app.query.dates import ResolvedRange
from app.query.filters import NUMERIC_PATTERN
from app.query.schema import PropertyFilter, PropertyGroupFilter, PropertyNode, as_number
from app.query.trends_sql import (
    ACTIVE_WINDOWS,
    NULL_LABEL,
    OTHER_LABEL,
    Breakdown,
    FilterNode,
    SeriesFilters,
    SeriesPlan,
)

_URL_TRAILER = r"[/?#]+$"
_TIMESTAMP = "DateTime64(6, 'UTC')"
_NEGATED = {"is_not": "exact", "not_icontains": "icontains", "not_regex": "regex"}
_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# toStartOfWeek's mode for the team's first day of the week (0 Sunday, 1 Monday).
_WEEK_MODE = {0: 0, 1: 1}


class Statement:
    """SQL text and its parameters, built together: `bind` returns a `{name:Type}` placeholder."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.parameters: dict[str, Any] = {}
        self._names: dict[tuple[str, str], str] = {}
        self.persons = False  # whether some expression reads the person's properties
        self.sql = ""

    def bind(self, value: Any, type_: str) -> str:
        key = (repr(value), type_)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"p{len(self._names)}"
            self.parameters[name] = value
        return f"{{{name}:{type_}}}"

    def team(self, team_id: int) -> str:
        self.parameters["team_id"] = team_id
        return "{team_id:Int64}"

    def text(self, key: str, kind: str | None = "event") -> str:
        """The property as PostgreSQL's `->>` reads it: Nullable(String)."""
        column = "pp.properties" if kind == "person" else "e.properties"
        if kind == "person":
            self.persons = True
        name = self.bind(key, "String")
        raw = f"JSONExtractRaw({column}, {name})"
        # One parse of the properties; a string's escapes are then read from its own short JSON text.
        string = f"JSONExtractString({raw})"
        return f"multiIf({raw} IN ('', 'null'), NULL, startsWith({raw}, '\"'), {string}, {raw})"

    def as_float(self, text: str) -> str:
        """The text as a Float64 when it is a number (PostgreSQL's pattern), else NULL."""
        pattern = self.bind(NUMERIC_PATTERN, "String")
        return (
            f"if(match({text}, {pattern}), "
            f"toFloat64OrNull(replaceRegexpAll({text}, '^\\\\s+|\\\\s+$', '')), NULL)"
        )


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _regex(pattern: str) -> str:
    """Refuse what RE2 reads differently from PostgreSQL (`\\b`: a backspace there, a word boundary here)
    or accepts where PostgreSQL refuses (named groups `(?P<n>…)`), so both backends answer alike."""
    escaped = False
    for index, char in enumerate(pattern):
        if escaped and char in "bB":
            raise InvalidQuery(
                f"Invalid regular expression in a property filter: \\{char} is not supported on the "
                "ClickHouse events backend"
            )
        if (
            not escaped
            and pattern.startswith(("(?P", "(?<"), index)
            and not pattern.startswith(("(?<=", "(?<!"), index)
        ):
            raise InvalidQuery(
                "Invalid regular expression in a property filter: named groups are not supported"
            )
        escaped = not escaped and char == "\\"
    return pattern


def _equals(st: Statement, text: str, values: list[Any]) -> str:
    texts = list(dict.fromkeys(_scalar_text(value) for value in values))
    numbers = list(dict.fromkeys(float(value) for value in values if _is_number(value)))
    if len(texts) == 1:
        same_text = f"({text} = {st.bind(texts[0], 'String')})"
    else:
        same_text = f"({text} IN {st.bind(texts, 'Array(String)')})"
    if not numbers:
        return same_text
    number = st.as_float(text)
    if len(numbers) == 1:
        same_number = f"({number} = {st.bind(numbers[0], 'Float64')})"
    else:
        same_number = f"({number} IN {st.bind(numbers, 'Array(Float64)')})"
    return f"({same_text} OR coalesce({same_number}, false))"


def _positive(st: Statement, text: str, operator: str, values: list[Any]) -> str:
    if operator == "exact":
        return _equals(st, text, values)
    patterns = [_scalar_text(value) for value in values]
    if operator == "icontains":
        if len(patterns) == 1:
            return f"(position(lowerUTF8({text}), lowerUTF8({st.bind(patterns[0], 'String')})) > 0)"
        needles = st.bind(patterns, "Array(String)")
        found = f"arrayExists(n -> position(lowerUTF8(assumeNotNull({text})), lowerUTF8(n)) > 0, {needles})"
        return f"({text} IS NOT NULL AND {found})"
    patterns = [_regex(pattern) for pattern in patterns]
    if len(patterns) == 1:
        return f"match({text}, {st.bind(patterns[0], 'String')})"
    found = f"arrayExists(r -> match(assumeNotNull({text}), r), {st.bind(patterns, 'Array(String)')})"
    return f"({text} IS NOT NULL AND {found})"


def property_condition(st: Statement, node: PropertyFilter) -> str:
    """As `app.query.filters.property_condition`, on ClickHouse."""
    key: str = node.key
    operator = node.operator or "exact"
    text = st.text(key, node.type)
    if operator == "is_set":
        return f"({text} IS NOT NULL)"
    if operator == "is_not_set":
        return f"({text} IS NULL)"
    if operator in _COMPARISONS:
        bound = st.bind(as_number(node.value, key), "Float64")
        return f"({st.as_float(text)} {_COMPARISONS[operator]} {bound})"
    values = node.value if isinstance(node.value, list) else [node.value]
    if not values:
        return "true" if operator in _NEGATED else "false"
    matches = _positive(st, text, _NEGATED.get(operator, operator), values)
    if operator in _NEGATED:
        return f"({text} IS NULL OR NOT {matches})"
    return matches


def node_condition(st: Statement, node: FilterNode) -> str:
    if isinstance(node, PropertyGroupFilter):
        children = [node_condition(st, child) for child in node.values]
        if not children:
            return "true"
        return "(" + (" AND " if node.type == "AND" else " OR ").join(children) + ")"
    return property_condition(st, node)


def _all(conditions: list[str]) -> str:
    return "(" + " AND ".join(conditions) + ")" if conditions else "true"


def _properties(st: Statement, properties: list[PropertyNode] | PropertyGroupFilter | None) -> list[str]:
    if properties is None:
        return []
    if isinstance(properties, PropertyGroupFilter):
        return [node_condition(st, properties)]
    return [node_condition(st, node) for node in properties]


def where_condition(st: Statement, filters: SeriesFilters) -> str:
    """As `trends_sql.where_condition`."""
    conditions = _properties(st, filters.properties)
    conditions += [node_condition(st, node) for node in (*filters.test_accounts, *filters.own)]
    if filters.alternatives is not None:
        options = []
        for event, nodes in filters.alternatives:
            same_event = "false" if event is None else f"e.event = {st.bind(event, 'String')}"
            options.append(_all([same_event, *(node_condition(st, node) for node in nodes)]))
        conditions.append("(" + " OR ".join(options) + ")")
    return _all(conditions)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _naive_local(st: Statement, tz: str) -> str:
    """Each event's local wall-clock time as a UTC DateTime64 (PostgreSQL's `timestamp AT TIME ZONE tz`)."""
    if tz == "UTC":
        return "e.timestamp"
    zone = st.bind(tz, "String")
    return f"addSeconds(e.timestamp, timeZoneOffset(toTimeZone(e.timestamp, {zone})))"


def bucket_expr(interval: str, local: str, week_start: int) -> str:
    """The bucket of a naive local time: a DateTime for hours, a Date otherwise."""
    if interval == "hour":
        return f"toStartOfHour({local})"
    if interval == "day":
        return f"toDate({local})"
    if interval == "week":
        return f"toStartOfWeek({local}, {_WEEK_MODE.get(week_start, 0)})"
    return f"toStartOfMonth({local})"


def _breakdown_value(st: Statement, breakdown: Breakdown) -> str:
    value = f"nullIf({st.text(breakdown.key, breakdown.kind)}, '')"
    if breakdown.normalize_url:
        trimmed = f"replaceRegexpOne({value}, {st.bind(_URL_TRAILER, 'String')}, '')"
        value = f"coalesce(nullIf({trimmed}, ''), if({value} IS NOT NULL, '/', NULL))"
    return f"coalesce({value}, {st.bind(NULL_LABEL, 'String')})"


def _source(st: Statement, plan: SeriesPlan) -> str:
    """The events, joined to their distinct ids' current person properties when a filter or the breakdown
    reads them (the latest version of each: `person` keeps every version until it merges them)."""
    events = f"{st.database}.events AS e"
    if not st.persons:
        return events
    return (
        f"{events} LEFT JOIN (SELECT distinct_id, argMax(properties, version) AS properties "
        f"FROM {st.database}.person WHERE team_id = {st.team(plan.team_id)} GROUP BY distinct_id) AS pp "
        "ON pp.distinct_id = e.distinct_id"
    )


def _conditions(st: Statement, plan: SeriesPlan, lower: str, upper: datetime) -> str:
    conditions = [
        f"e.team_id = {st.team(plan.team_id)}",
        lower,
        f"e.timestamp <= {st.bind(_utc(upper), _TIMESTAMP)}",
    ]
    if plan.events is not None and len(plan.events) == 1:
        conditions.append(f"e.event = {st.bind(plan.events[0], 'String')}")
    elif plan.events is not None:
        conditions.append(f"e.event IN {st.bind(list(plan.events), 'Array(String)')}")
    if plan.distinct_property is not None:
        conditions.append(f"{st.text(plan.distinct_property)} IS NOT NULL")
    conditions.append(where_condition(st, plan.filters))
    return " AND ".join(conditions)


def _since(st: Statement, moment: datetime, *, strict: bool = False) -> str:
    return f"e.timestamp {'>' if strict else '>='} {st.bind(_utc(moment), _TIMESTAMP)}"


def _event_columns(st: Statement, plan: SeriesPlan) -> list[str]:
    if plan.math in ("dau", "weekly_active", "monthly_active"):
        return ["e.distinct_id AS actor"]
    if plan.math == "unique_session":
        return [f"coalesce({st.text('$session_id')}, '') AS session"]
    if plan.distinct_property is not None:
        return [f"{st.text(plan.distinct_property)} AS distinct_value"]
    if plan.math_property is not None:
        return [f"{st.as_float(st.text(plan.math_property))} AS value"]
    return []


def _aggregate(st: Statement, plan: SeriesPlan) -> str:
    if plan.math == "total":
        return "count()"
    if plan.math == "dau":
        return "uniqExact(actor)"
    if plan.math == "unique_session":
        return "uniqExact(session)"
    if plan.math == "unique_property":
        return "uniqExact(distinct_value)"
    if plan.quantile is not None:
        # percentile_cont: lo + (hi - lo) * fraction, between the closest ranks of the sorted values.
        position = f"({st.bind(plan.quantile, 'Float64')} * (length(sorted) - 1))"
        return (
            f"if(empty(arraySort(groupArray(value)) AS sorted), 0., "
            f"sorted[toUInt64(floor({position})) + 1] + (sorted[toUInt64(ceil({position})) + 1] - "
            f"sorted[toUInt64(floor({position})) + 1]) * ({position} - floor({position})))"
        )
    return f"ifNull({plan.math}(value), 0.)"


def series_sql(plan: SeriesPlan, period: ResolvedRange, database: str) -> Statement:
    """The statement of one series over one period (see the module's docstring)."""
    st = Statement(database)
    breakdown = [] if plan.breakdown is None else [f"{_breakdown_value(st, plan.breakdown)} AS breakdown"]
    if plan.math in ACTIVE_WINDOWS:
        per = _active_users(st, plan, period, breakdown)
    else:
        local = _naive_local(st, period.tz.key)
        bucket = (
            []
            if plan.total_value
            else [f"{bucket_expr(period.interval, local, period.week_start)} AS bucket"]
        )
        columns = [*bucket, *breakdown, *_event_columns(st, plan)]
        where = _conditions(st, plan, _since(st, period.start), period.date_to)
        matching = f"SELECT {', '.join(columns) or '1'} FROM {_source(st, plan)} WHERE {where}"
        keys = [*(["bucket"] if bucket else []), *(["breakdown"] if breakdown else [])]
        if plan.first_bucket_only:
            firsts = (
                f"SELECT min(bucket) AS bucket, {', '.join(['actor', *keys[1:]])} "
                f"FROM ({matching}) GROUP BY {', '.join(['actor', *keys[1:]])}"
            )
            per = f"SELECT {', '.join(keys)}, count() AS value FROM ({firsts}) GROUP BY {', '.join(keys)}"
        else:
            group = f" GROUP BY {', '.join(keys)}" if keys else ""
            per = f"SELECT {', '.join([*keys, _aggregate(st, plan) + ' AS value'])} FROM ({matching}){group}"
    st.sql = per if plan.breakdown is None else _rank_breakdown(st, plan, per)
    return st


def _active_users(st: Statement, plan: SeriesPlan, period: ResolvedRange, breakdown: list[str]) -> str:
    """Weekly/monthly active users, as `trends_sql._active_users` counts them: bucket D counts the actors with
    an event (floored to the day, or hour) t in (D - window, D]."""
    window = ACTIVE_WINDOWS[plan.math]
    by = ["breakdown"] if breakdown else []
    if plan.total_value:
        lower = _since(st, period.date_to - window, strict=True)
        where = _conditions(st, plan, lower, period.date_to)
        columns = ", ".join([*breakdown, "e.distinct_id AS actor"])
        matching = f"SELECT {columns} FROM {_source(st, plan)} WHERE {where}"
        group = f" GROUP BY {', '.join(by)}" if by else ""
        return f"SELECT {', '.join([*by, 'uniqExact(actor) AS value'])} FROM ({matching}){group}"

    buckets = period.buckets
    earliest = period.aware(buckets[0] - window) if buckets else period.start
    local = _naive_local(st, period.tz.key)
    hourly = period.interval == "hour"
    at = f"toStartOfHour({local})" if hourly else f"toDate({local})"
    steps = int(window.total_seconds() // (3600 if hourly else 86400))
    step = "toIntervalHour(i)" if hourly else "i"
    kind = "DateTime('UTC')" if hourly else "Date"
    first = st.bind(f"{buckets[0]:%Y-%m-%d %H:%M:%S}" if hourly else f"{buckets[0]:%Y-%m-%d}", kind)
    last = st.bind(f"{buckets[-1]:%Y-%m-%d %H:%M:%S}" if hourly else f"{buckets[-1]:%Y-%m-%d}", kind)
    keep = f"d >= {first} AND d <= {last}"
    if period.interval == "week":
        keep += f" AND toStartOfWeek(d, {_WEEK_MODE.get(period.week_start, 0)}) = d"
    where = _conditions(st, plan, _since(st, earliest), period.date_to)
    columns = ", ".join([f"{at} AS at", "e.distinct_id AS actor", *breakdown])
    days = f"SELECT DISTINCT {columns} FROM {_source(st, plan)} WHERE {where}"
    spread = (
        f"SELECT arrayJoin(arrayFilter(d -> {keep}, arrayMap(i -> at + {step}, range({steps})))) AS bucket, "
        f"{', '.join(['actor', *by])} FROM ({days})"
    )
    keys = ", ".join(["bucket", *by])
    return f"SELECT {keys}, uniqExact(actor) AS value FROM ({spread}) GROUP BY {keys}"


def _rank_breakdown(st: Statement, plan: SeriesPlan, per: str) -> str:
    """As `trends_sql._rank_breakdown`: values ranked by their total (desc), ties by value in byte order;
    past `limit`, the "other" value, summed bucket by bucket."""
    assert plan.breakdown is not None
    bucket = [] if plan.total_value else ["bucket"]
    values = ", ".join([*bucket, "breakdown", "value"])
    totals = f"SELECT {values}, sum(value) OVER (PARTITION BY breakdown) AS total FROM ({per})"
    ranked = (
        f"SELECT {values}, dense_rank() OVER (ORDER BY total DESC, breakdown ASC) AS position FROM ({totals})"
    )
    limit, other = st.bind(plan.breakdown.limit, "Int64"), st.bind(OTHER_LABEL, "String")
    label = f"if(position <= {limit}, breakdown, {other})"
    cast = "toInt64" if plan.counts else "toFloat64"
    columns = [*bucket, f"{label} AS label", "min(position) AS rank", f"{cast}(sum(value)) AS total_value"]
    return f"SELECT {', '.join(columns)} FROM ({ranked}) GROUP BY {', '.join([*bucket, 'label'])}"
