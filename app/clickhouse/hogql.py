"""SQL insights (HogQL) on the ClickHouse events backend: the checked AST emitted back as ClickHouse SQL.

HogQL is ClickHouse's dialect, so most of a query goes back as it was written. What changes:

- checks: the query is first compiled by the PostgreSQL compiler (`app.query.hogql.query.compile_query`),
  which is where every refusal lives (unknown tables and fields, functions outside the allow-list, arity,
  `SETTINGS`, table functions, `db.table` names such as `system.*`): a query it refuses is refused here with
  the same error, and the columns, types and pagination it decided are the response's. The AST emitted here
  is the one it checked: its HogQL text (`Compiled.hogql`, LIMIT 101 / 50000 cap included) parsed again;
- tables: `events` and `person(s)` become derived tables over Tilecast's tables, each filtered by the team
  (`team_id = {team_id:Int64}`), times in the team's timezone; a person is its latest version (`argMax` by
  `version`); `person.properties.x` from events reads that through a LEFT JOIN. After the rewrite every
  table the statement reads is checked again: only those two, in the app's database (defence in depth for
  chdb, where one in-process user can read anything);
- constants: every string becomes a bound `{pN:String}` parameter; numbers stay as the tokens sqlglot read
  (digits only); the few arguments ClickHouse needs as literal words (a `dateDiff` unit, a format) are
  checked against a strict pattern;
- semantics where ClickHouse differs from HogQL's (as PostHog's HogQL and the PostgreSQL compiler answer):
  a property reads as text (`properties.price` is `'10'`, NULL when missing or JSON null), compared with a
  number as a number; `=`/`!=` treat NULL as a value and other comparisons, `IN`, `LIKE` and regexes are
  false (true when negated) on NULL; `x / 0` is NULL; `toFloat`/`toInt` of text are NULL when it is not a
  number; `uniq` is exact; quantiles interpolate as PostgreSQL's `percentile_cont`
  (`quantileExactInclusive`); `groupUniqArray` is sorted; `any` is the minimum; LEFT JOINs give NULLs
  (`join_use_nulls`).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from app.query.base import ComputedResult, QueryContext
from app.query.filters import NUMERIC_PATTERN
from app.query.hogql.compiler import Compiled, _chain
from app.query.hogql.errors import HogQLQueryError
from app.query.hogql.functions import lookup
from app.query.hogql.parser import PLACEHOLDER_PREFIX, HogQL, parse

# Words ClickHouse wants as literals: a unit (`dateDiff('day', …)`), a strftime-like format, a timezone.
_WORD = re.compile(r"^[A-Za-z_]{1,20}$")
_FORMAT = re.compile(r"^[%A-Za-z0-9 :\-/.,_T]{0,64}$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_/+\-]{1,64}$")
_LITERAL_ARGS: dict[str, tuple[int, re.Pattern[str]]] = {
    "dateDiff": (0, _WORD),
    "date_diff": (0, _WORD),
    "dateTrunc": (0, _WORD),
    "date_trunc": (0, _WORD),
    "formatDateTime": (1, _FORMAT),
}
_TIMEZONE_ARGS = {"toStartOfMinute", "toStartOfHour", "toStartOfDay"}
_EVENTS_TABLES = {"events": "events", "persons": "person", "person": "person"}


@dataclass
class ClickHouseStatement:
    sql: str
    parameters: dict[str, Any]


class _Rewriter:
    def __init__(self, database: str, ctx: QueryContext, values: dict[str, Any], placeholders: list[str]):
        self.database = database
        self.ctx = ctx
        self.values = values
        self.placeholders = placeholders
        self.parameters: dict[str, Any] = {"team_id": ctx.team_id, "tz": ctx.timezone}
        self._names: dict[tuple[str, str], str] = {}
        self.tables: dict[str, str] = {}  # alias → "events" / "person"
        self.ctes: set[str] = set()
        self.person_join = False
        self.properties: set[int] = set()  # ids of the nodes that read a property (text)
        self.events_filter: str | None = None  # `{filters}`: a condition on `e` (and `pp`)

    # --- parameters ---

    def bind(self, value: Any, type_: str) -> exp.Expression:
        key = (repr(value), type_)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"p{len(self._names)}"
            self.parameters[name] = value
        return exp.Placeholder(this=exp.Var(this=name), kind=exp.DataType.build(type_, dialect="clickhouse"))

    def constant(self, value: Any) -> exp.Expression:
        if value is None:
            return exp.Null()
        if isinstance(value, bool):
            return self.bind(int(value), "UInt8")
        if isinstance(value, int):
            return self.bind(value, "Int64")
        if isinstance(value, float):
            return self.bind(value, "Float64")
        if isinstance(value, str):
            return self.bind(value, "String")
        if isinstance(value, list):
            return exp.Array(expressions=[self.constant(v) for v in value])
        raise HogQLQueryError(f"Unsupported constant {value!r}")

    # --- tables ---

    def events_table(self) -> Any:
        db = self.database
        person = ""
        columns = (
            "e.uuid AS uuid, e.event AS event, e.properties AS properties, "
            "toTimeZone(e.timestamp, {tz:String}) AS timestamp, e.team_id AS team_id, "
            "e.distinct_id AS distinct_id, "
            "JSONExtractString(e.properties, '$elements_chain') AS elements_chain, "
            "toTimeZone(e.inserted_at, {tz:String}) AS created_at, "
            "if(JSONHas(e.properties, '$session_id'), JSONExtractString(e.properties, '$session_id'), NULL) "
            "AS `$session_id`, "
            "if(JSONHas(e.properties, '$window_id'), JSONExtractString(e.properties, '$window_id'), NULL) "
            "AS `$window_id`, e.distinct_id AS person_id"
        )
        if self.person_join:
            columns += ", pp.properties AS person_properties"
            person = f" LEFT JOIN ({self._person_sql()}) AS pp ON pp.distinct_id = e.distinct_id"
        sql = f"SELECT {columns} FROM {db}.events AS e{person} WHERE e.team_id = {{team_id:Int64}}"
        if self.events_filter:
            sql += f" AND {self.events_filter}"
        return _parse_sub(sql)

    def _person_sql(self) -> str:
        return (
            f"SELECT pr.distinct_id AS distinct_id, pr.distinct_id AS id, "
            f"argMax(pr.properties, pr.version) AS properties, "
            f"toTimeZone(argMax(pr.created_at, pr.version), {{tz:String}}) AS created_at, "
            f"pr.team_id AS team_id FROM {self.database}.person AS pr "
            f"WHERE pr.team_id = {{team_id:Int64}} GROUP BY pr.team_id, pr.distinct_id"
        )

    def person_table(self) -> Any:
        return _parse_sub(self._person_sql())

    # --- the pass ---

    def collect(self, tree: exp.Expression) -> None:
        for cte in tree.find_all(exp.CTE):
            self.ctes.add(cte.alias_or_name)
        for table in tree.find_all(exp.Table):
            name = table.name
            if name in self.ctes or name not in _EVENTS_TABLES:
                continue
            self.tables[table.alias_or_name] = _EVENTS_TABLES[name]
            self.tables.setdefault(name, _EVENTS_TABLES[name])

    def _team_keys(self, tree: exp.Expression) -> None:
        """A JOIN of two of the team's tables gets `l.team_id = r.team_id` in its ON, true for every pair of
        rows (both are the team's), which gives ClickHouse the equality key its joins need: an ON without
        one (`a.team_id != b.team_id`) is refused by ClickHouse and answered by PostgreSQL."""
        for join in list(tree.find_all(exp.Join)):
            on = join.args.get("on")
            select = join.parent
            right = join.this
            from_ = select.args.get("from_") if select is not None else None
            left = from_.this if from_ is not None else None
            if on is None or not all(
                isinstance(t, exp.Table) and t.name in _EVENTS_TABLES and t.name not in self.ctes
                for t in (left, right)
            ):
                continue
            assert isinstance(left, exp.Table) and isinstance(right, exp.Table)
            key = exp.EQ(
                this=exp.column("team_id", table=left.alias_or_name),
                expression=exp.column("team_id", table=right.alias_or_name),
            )
            join.set("on", exp.and_(key, exp.Paren(this=on)))

    def rewrite(self, tree: exp.Expression) -> exp.Expression:
        self.collect(tree)
        self._team_keys(tree)
        # Children first: a comparison sees its sides already rewritten (a property read, a parameter).
        nodes: list[Any] = list(tree.dfs())
        for node in reversed(nodes):
            parent, key, index = node.parent, node.arg_key, node.index
            new = self._node(node)
            if new is node:
                continue
            if parent is None:
                tree = new
            elif index is not None:
                parent.args[key][index] = new
                new.parent, new.arg_key, new.index = parent, key, index
            else:
                parent.set(key, new)
        # Tables last: their derived tables are already ClickHouse SQL.
        for table in list(tree.find_all(exp.Table)):
            if table.name in self.ctes and not table.args.get("db"):
                continue
            kind = _EVENTS_TABLES.get(table.name)
            if kind is None or table.args.get("db") or not isinstance(table.this, exp.Identifier):
                raise HogQLQueryError(f'Unknown table "{table.sql(dialect=HogQL)}".')
            derived = self.events_table() if kind == "events" else self.person_table()
            alias = table.alias_or_name
            table.replace(exp.Subquery(this=derived, alias=exp.TableAlias(this=exp.to_identifier(alias))))
        return tree

    def _node(self, node: Any) -> Any:
        if isinstance(node, (exp.Column, exp.Dot)):
            return self._column(node)
        if isinstance(node, exp.Bracket):
            parts = _chain(node)
            if parts is not None:
                return self._column(node)
            keys = [self.bind(k.this, "String") if _text(k) else k for k in node.expressions]
            node.set("expressions", keys)
            return node
        if isinstance(node, exp.Literal) and node.is_string:
            parent = node.parent
            if isinstance(parent, (exp.Interval, exp.Bracket)):
                return node
            return self.bind(node.this, "String")
        if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
            return self._compare(node)
        if isinstance(node, exp.Between):
            subject = node.this
            low, high = node.args["low"], node.args["high"]
            if self._is_property(subject) and (_numeric(low) or _numeric(high)):
                node.set("this", self.as_float(subject))
            return _if_null(node, 0)
        if isinstance(node, exp.Not) and isinstance(node.this, (exp.In, exp.Like, exp.ILike, exp.RegexpLike)):
            return _if_null(node, 1)
        if isinstance(node, (exp.In, exp.RegexpLike, exp.RegexpILike)):
            if isinstance(node.parent, exp.Not):
                return node
            return _if_null(node, 0)
        if isinstance(node, (exp.Like, exp.ILike)):
            if isinstance(node.parent, exp.Not):
                return node
            return _if_null(node, 1 if node.args.get("negate") else 0)
        if isinstance(node, exp.Div):
            return exp.func("if", exp.EQ(this=node.expression.copy(), expression=exp.Literal.number(0)),
                            exp.Null(), node)  # fmt: skip
        if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)) and node.name != "__quantile":
            return self._function(node)
        return node

    def _column(self, node: exp.Expression) -> exp.Expression:
        parts = _chain(node)
        if parts is None:
            return node
        if len(parts) == 1 and parts[0].startswith(PLACEHOLDER_PREFIX):
            return self._placeholder(int(parts[0][len(PLACEHOLDER_PREFIX) :]))
        alias: str | None = None
        rest = parts
        if len(parts) > 1 and parts[0] in self.tables:
            alias, rest = parts[0], parts[1:]
        if rest[0] == "person" and len(rest) > 2 and rest[1] == "properties":
            self.person_join = True
            return self.property(_ref("person_properties", alias), rest[2:], node)
        if rest[0] == "properties" and len(rest) > 1:
            return self.property(_ref("properties", alias), rest[1:], node)
        if len(parts) == 1 or alias is not None:
            return _ref(rest[-1], alias) if len(rest) == 1 else node
        return node

    def property(self, column: exp.Expression, path: list[str], node: exp.Expression) -> exp.Expression:
        """As PostgreSQL's `->>` (the PostgreSQL compiler's reading): strings unquoted, numbers and booleans
        as their JSON text, JSON null and a missing key as NULL."""
        keys = [self.bind(key, "String") for key in path]
        raw = exp.Anonymous(this="JSONExtractRaw", expressions=[column, *keys])
        text = exp.Anonymous(
            this="multiIf",
            expressions=[
                exp.In(this=raw, expressions=[exp.Literal.string(""), exp.Literal.string("null")]),
                exp.Null(),
                exp.Anonymous(this="startsWith", expressions=[raw.copy(), exp.Literal.string('"')]),
                exp.Anonymous(this="JSONExtractString", expressions=[raw.copy()]),
                raw.copy(),
            ],
        )
        self.properties.add(id(text))
        return text

    def _is_property(self, node: exp.Expression) -> bool:
        return id(node) in self.properties

    def as_float(self, node: exp.Expression) -> exp.Expression:
        """Text as a Float64 when it is a number (PostgreSQL's pattern), else NULL."""
        text = exp.Anonymous(this="toString", expressions=[node])
        pattern = self.bind(NUMERIC_PATTERN, "String")
        trimmed = exp.Anonymous(
            this="replaceRegexpAll",
            expressions=[text.copy(), exp.Literal.string(r"^\s+|\s+$"), exp.Literal.string("")],
        )
        return exp.Anonymous(
            this="if",
            expressions=[
                exp.Anonymous(this="match", expressions=[text, pattern]),
                exp.Anonymous(this="toFloat64OrNull", expressions=[trimmed]),
                exp.Null(),
            ],
        )

    def numeric(self, node: exp.Expression) -> exp.Expression:
        return self.as_float(node) if self._is_property(node) or _string_literal(node) else node

    def _compare(self, node: Any) -> Any:
        left, right = node.this, node.expression
        if self._is_property(left) and _numeric(right):
            node.set("this", self.as_float(left))
        elif self._is_property(right) and _numeric(left):
            node.set("expression", self.as_float(right))
        if isinstance(right, exp.Null) or isinstance(left, exp.Null):
            other = left if isinstance(right, exp.Null) else right
            if isinstance(node, exp.EQ):
                return exp.Is(this=other, expression=exp.Null())
            if isinstance(node, exp.NEQ):
                return exp.Not(this=exp.Is(this=other, expression=exp.Null()))
            return exp.false()
        if node.find_ancestor(exp.Join) is not None:
            # A JOIN's keys: plain comparisons (NULL keys match nothing, as in PostgreSQL's join).
            return node
        if isinstance(node, exp.EQ):
            return exp.Anonymous(this="isNotDistinctFrom", expressions=[node.this, node.expression])
        if isinstance(node, exp.NEQ):
            return exp.Not(
                this=exp.Anonymous(this="isNotDistinctFrom", expressions=[node.this, node.expression])
            )
        return _if_null(node, 0)

    def _placeholder(self, index: int) -> exp.Expression:
        name = self.placeholders[index]
        if name == "filters":
            return exp.Literal.number(1)  # see `filters_condition`
        if name in self.values:
            return self.constant(self.values[name])
        raise HogQLQueryError(f"Unresolved placeholder: {{{name}}}")

    def _function(self, node: exp.Expression) -> exp.Expression:
        name = lookup(node.name)
        args = list(node.expressions)
        if name in _LITERAL_ARGS:
            position, pattern = _LITERAL_ARGS[name]
            if position < len(args):
                args[position] = _word(args[position], pattern, name, self.parameters)
        if name in _TIMEZONE_ARGS and len(args) > 1:
            args[1] = _word(args[1], _TIMEZONE, name, self.parameters)
        translate = _FUNCTIONS.get(name)
        if translate is not None:
            return translate(self, args)
        node.set("this", name)
        node.set("expressions", args)
        return node


def _word(
    node: exp.Expression, pattern: re.Pattern[str], function: str, parameters: dict[str, Any]
) -> exp.Expression:
    """A literal argument ClickHouse needs as a literal, checked against `pattern` (the rewrite bound it)."""
    value = node.this if isinstance(node, exp.Literal) and node.is_string else None
    if isinstance(node, exp.Placeholder):
        value = parameters.get(node.name)
    if not isinstance(value, str) or value is None or not pattern.match(str(value)):
        raise HogQLQueryError(f"Function '{function}' expects a constant word or format here")
    return exp.Literal.string(str(value))


def _parse_sub(sql: str) -> Any:
    import sqlglot

    parsed: Any = sqlglot.parse_one(sql, dialect="clickhouse")
    return parsed


def _ref(name: str, alias: str | None) -> exp.Expression:
    return exp.column(name, table=alias, quoted=name.startswith("$"))


def _text(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _numeric(node: exp.Expression) -> bool:
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and not node.is_string


def _string_literal(node: exp.Expression) -> bool:
    return (
        isinstance(node, exp.Placeholder)
        and node.args.get("kind") is not None
        and str(node.args["kind"].this).endswith("TEXT")
    )


def _if_null(node: Any, default: int) -> Any:
    return exp.Anonymous(this="ifNull", expressions=[node, exp.Literal.number(default)])


def _call(name: str) -> Callable[[_Rewriter, list[exp.Expression]], exp.Expression]:
    def translate(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
        return exp.Anonymous(this=name, expressions=args)

    return translate


def _to_float(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    return r.as_float(args[0])


def _to_int(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    if _numeric(args[0]):
        return exp.Anonymous(this="toInt64", expressions=args)
    text = exp.Anonymous(this="toString", expressions=args)
    return exp.Anonymous(this="toInt64OrNull", expressions=[text])


def _median(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    return exp.Anonymous(
        this="quantileExactInclusive", expressions=[r.numeric(args[0])]
    )  # level set by `_with_level`


def _to_datetime(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    if _string_literal(args[0]) or r._is_property(args[0]):
        return exp.Anonymous(
            this="parseDateTime64BestEffortOrNull",
            expressions=[args[0], exp.Literal.number(6), exp.Placeholder(
                this=exp.Var(this="tz"), kind=exp.DataType.build("String", dialect="clickhouse"))],
        )  # fmt: skip
    return exp.Anonymous(this="toDateTime64", expressions=[args[0], exp.Literal.number(6),
                                                            _tz_param()])  # fmt: skip


def _to_date(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    if _string_literal(args[0]) or r._is_property(args[0]):
        return exp.Anonymous(this="toDateOrNull", expressions=args)
    return exp.Anonymous(this="toDate", expressions=args)


def _tz_param() -> exp.Expression:
    return exp.Placeholder(this=exp.Var(this="tz"), kind=exp.DataType.build("String", dialect="clickhouse"))


def _to_string(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    value = args[0]
    if isinstance(value, exp.Column) and value.name in ("timestamp", "created_at"):
        return exp.Anonymous(
            this="formatDateTime", expressions=[value, exp.Literal.string("%Y-%m-%d %H:%i:%S")]
        )
    return exp.Anonymous(this="toString", expressions=args)


def _start_of_week(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    if len(args) == 1:
        args = [args[0], exp.Literal.number(1 if r.ctx.week_start_day == 1 else 0)]
    return exp.Anonymous(this="toStartOfWeek", expressions=args)


def _group_uniq_array(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
    return exp.Anonymous(
        this="arraySort", expressions=[exp.Anonymous(this="groupUniqArray", expressions=args)]
    )


def _numeric_aggregate(name: str) -> Callable[[_Rewriter, list[exp.Expression]], exp.Expression]:
    def translate(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
        return exp.Anonymous(this=name, expressions=[r.numeric(args[0]), *args[1:]])

    return translate


_ADD_UNITS = {"second", "minute", "hour", "day", "week", "month", "quarter", "year"}


def _date_add(verb: str) -> Callable[[_Rewriter, list[exp.Expression]], exp.Expression]:
    def translate(r: _Rewriter, args: list[exp.Expression]) -> exp.Expression:
        unit = args[0]
        word = unit.this if isinstance(unit, exp.Literal) and unit.is_string else None
        if word is None and isinstance(unit, exp.Placeholder):
            word = r.parameters.get(unit.name)
        word = str(word or "").lower().rstrip("s")
        if word not in _ADD_UNITS:
            raise HogQLQueryError(f"Unsupported interval unit '{word}'")
        return exp.Anonymous(this=f"{verb}{word.title()}s", expressions=[args[2], args[1]])

    return translate


_FUNCTIONS: dict[str, Callable[[_Rewriter, list[exp.Expression]], exp.Expression]] = {
    "uniq": _call("uniqExact"),
    "any": _call("min"),
    "toFloat": _to_float,
    "toInt": _to_int,
    "toDateTime": _to_datetime,
    "toDate": _to_date,
    "toString": _to_string,
    "toStartOfWeek": _start_of_week,
    "groupUniqArray": _group_uniq_array,
    "sum": _numeric_aggregate("sum"),
    "avg": _numeric_aggregate("avg"),
    "median": _median,
    "dateAdd": _date_add("add"),
    "dateSub": _date_add("subtract"),
}


def _parametric(name: str, level: exp.Expression, value: exp.Expression) -> exp.Expression:
    return exp.ParameterizedAgg(this=name, expressions=[level], params=[value])


def compile_clickhouse(
    checked: Compiled, text: str, values: dict[str, Any] | None, ctx: QueryContext, database: str,
    filters: dict[str, Any] | None = None,
) -> ClickHouseStatement:  # fmt: skip
    """The ClickHouse statement of a query the PostgreSQL compiler checked (`checked`)."""
    _, placeholders = parse(text)
    tree, _ = parse(checked.hogql)
    rewriter = _Rewriter(database, ctx, values or {}, placeholders)
    if filters is not None and "filters" in placeholders:
        rewriter.events_filter = _filters_condition(rewriter, filters, ctx)
    # Quantile first: its level is a number the rewrite must leave alone.
    for node in list(tree.find_all(exp.Quantile)):
        node.replace(exp.Anonymous(this="__quantile", expressions=[node.args["quantile"].copy(), node.this]))
    tree = rewriter.rewrite(tree)
    _finish_quantiles(rewriter, tree)
    _check_tables(tree, database, rewriter.ctes)
    return ClickHouseStatement(tree.sql(dialect="clickhouse"), rewriter.parameters)


def _finish_quantiles(r: _Rewriter, tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name == "__quantile":
            level, value = node.expressions
            node.replace(_parametric("quantileExactInclusive", level, r.numeric(value)))
        elif node.name == "quantileExactInclusive":
            node.replace(_parametric("quantileExactInclusive", exp.Literal.number(0.5), node.expressions[0]))


def _filters_condition(r: _Rewriter, filters: dict[str, Any], ctx: QueryContext) -> str:
    """`{filters}` as a condition on the events (`e`, their person `pp`): the properties in the insights'
    filter language (`app.clickhouse.trends`, as trends read them), `filterTestAccounts`, the date range
    (`date_from` inclusive, `date_to` exclusive, relative dates not truncated)."""
    from zoneinfo import ZoneInfo

    from app.clickhouse import trends
    from app.query import dates
    from app.query.schema import parse_property_nodes

    st = trends.Statement(r.database)
    nodes = parse_property_nodes(list(filters.get("properties") or []))
    conditions = [trends.node_condition(st, node) for node in nodes]
    if filters.get("filterTestAccounts") and ctx.test_account_filters:
        test_accounts = parse_property_nodes(list(ctx.test_account_filters))
        conditions += [trends.node_condition(st, node) for node in test_accounts]
    date_range = filters.get("dateRange") or {}
    for key, op in (("date_from", ">="), ("date_to", "<")):
        raw = date_range.get(key)
        if raw in (None, "", "all"):
            continue
        if not isinstance(raw, str):
            raise HogQLQueryError(f"Invalid {key} in filters.dateRange")
        value = dates.parse_date(raw, ZoneInfo(ctx.timezone), ctx.now, truncate=False).value
        bound = st.bind(trends._utc(value), "DateTime64(6, 'UTC')")
        conditions.append(f"e.timestamp {op} {bound}")
    if st.persons:
        r.person_join = True
    # The trends statement's parameters, renamed apart from the query's (`p0` → `f0`).
    for name, value in st.parameters.items():
        r.parameters["f" + name.removeprefix("p")] = value
    sql = " AND ".join(f"({c})" for c in conditions) or "1"
    return re.sub(r"\{p(\d+):", r"{f\1:", sql)


def _check_tables(tree: exp.Expression, database: str, ctes: set[str]) -> None:
    """Every table the statement reads is the app's `events` or `person` (or a CTE of the query)."""
    for table in tree.find_all(exp.Table):
        db = table.args.get("db")
        if db is None and table.name in ctes and isinstance(table.this, exp.Identifier):
            continue
        if (
            db is None
            or db.name != database
            or table.name not in ("events", "person")
            or table.args.get("catalog")
            or not isinstance(table.this, exp.Identifier)
        ):
            raise HogQLQueryError(f'Unknown table "{table.sql(dialect=HogQL)}".')


async def run_hogql(backend: Any, query: Any, ctx: QueryContext) -> ComputedResult:
    """Check (the PostgreSQL compiler), compile for ClickHouse and run a `HogQLQuery` on `backend`'s
    client with its limits; the response PostgreSQL's gives (`query.respond`)."""
    import asyncio

    from app.clickhouse.backend import CANNOT_COMPILE_REGEXP, _query_error
    from app.clickhouse.client import ClickHouseError
    from app.query.hogql.query import MAX_ROWS, compile_query, respond

    checked = await asyncio.to_thread(compile_query, query, ctx)
    statement = await asyncio.to_thread(
        compile_clickhouse, checked, query.query, query.values, ctx, backend.client.database, query.filters
    )
    # LEFT JOINs give NULLs as in PostgreSQL; a JOIN's ON may be any condition (`a.x != b.x`).
    settings = {**backend.settings, "join_use_nulls": 1, "allow_experimental_join_condition": 1}
    try:
        rows = await backend.client.query(statement.sql, statement.parameters, settings=settings)
    except ClickHouseError as exc:
        if exc.code == CANNOT_COMPILE_REGEXP:
            raise HogQLQueryError(f"Invalid regular expression: {_first_line(str(exc))}") from None
        error = _query_error(exc)
        if error is exc:  # what ClickHouse refused in the SQL (a bad cast, a regex, a type): the query's
            raise HogQLQueryError(_first_line(str(exc))) from None
        raise error from None
    kinds = [t.type for t in checked.types]
    rows = [
        tuple(_datetime(v) if k in ("DateTime", "DateTimeS") else v for v, k in zip(row, kinds, strict=True))
        for row in rows
    ]
    return respond(query, checked, rows[: MAX_ROWS + 1], ctx, statement.sql)


def _datetime(value: Any) -> Any:
    from datetime import UTC, datetime

    if isinstance(value, int):  # chdb's Arrow output of a DateTime: seconds since the epoch
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _first_line(message: str) -> str:
    text = message.strip()
    return text.splitlines()[0][:500] if text else message
