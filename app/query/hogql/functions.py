"""HogQL's functions (the allow-list) and their PostgreSQL translations.

Each entry is `name: (min args, max args, translation)`; a name absent here is refused as PostHog refuses
it (`Unsupported function call 'x(...)'`, with a close name when there is one). Names are case-sensitive,
except those PostHog also accepts in any case (`CASE_INSENSITIVE`). Only PostgreSQL built-ins are used.
"""

import difflib
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from app.query.hogql.errors import HogQLQueryError
from app.query.hogql.types import E, is_number, is_text

if TYPE_CHECKING:
    from app.query.hogql.compiler import Compiler, Scope

# A number as toFloat reads it from a string. Unbounded repeats keep the pattern cheap to match; the length
# test before it keeps the cast inside float8's range (at most 200 characters, a two-digit exponent).
NUMERIC = r"'^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,2})?\s*$'"
INTEGER = r"'^\s*[-+]?[0-9]{1,18}\s*$'"
NAIVE_TIME = r"'^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?\s*$'"
OFFSET_TIME = (
    r"'^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)\s*$'"
)
DATE = r"'^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$'"
UUID = r"'^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$'"

Translation = Callable[["Compiler", list[E], list[exp.Expression]], E]


# --- conversions shared with the compiler ---


# Whether the database has `pg_input_is_valid` (PostgreSQL 16 and newer), which tells whether a string is a
# number several times faster than the pattern: set while a query compiles (`query.compile_query`).
INPUT_CHECKS: ContextVar[bool] = ContextVar("INPUT_CHECKS", default=False)


def to_float(value: E) -> E:
    if is_text(value):
        if INPUT_CHECKS.get():
            # The cast outside the CASE: PostgreSQL folds the cast of a constant while planning, even in a
            # branch that never runs; a CASE on a check it cannot fold is never a constant. Not NaN nor
            # infinities (`nan`, `inf`, `infinity`: no number has an `n`), as the pattern.
            return E(
                f"((CASE WHEN pg_input_is_valid({value.sql}, 'float8') "
                f"AND strpos(lower({value.sql}), 'n') = 0 THEN {value.sql} END))::float8",
                "Float",
                True,
            )
        return E(
            f"(CASE WHEN char_length({value.sql}) <= 200 AND {value.sql} ~ {NUMERIC} "
            f"THEN ({value.sql})::float8 END)",
            "Float",
            True,
        )
    if value.type == "JSON":
        return to_float(E(f"({value.sql})::text", "String", value.nullable))
    return E(f"({value.as_value().sql})::float8", "Float", value.nullable)


def to_int(value: E) -> E:
    if is_text(value):
        return E(f"(CASE WHEN {value.sql} ~ {INTEGER} THEN ({value.sql})::bigint END)", "Int", True)
    if value.type == "Float":
        return E(f"(CASE WHEN abs({value.sql}) < 9e18 THEN trunc({value.sql})::bigint END)", "Int", True)
    if value.type in ("DateTime", "DateTimeS"):
        return E(f"floor(extract(epoch from {value.sql}))::bigint", "Int", value.nullable)
    return E(f"({value.as_value().sql})::bigint", "Int", value.nullable)


def to_datetime(c: "Compiler", value: E) -> E:
    """A time: a string in the team's timezone (or with its own offset), NULL when it is not one; a number
    as unix seconds; a date at its midnight in the team's timezone."""
    if value.type in ("DateTime", "DateTimeS"):
        return value
    if value.type == "Date":
        return E(f"(({value.sql})::timestamp AT TIME ZONE {c.tz})", "DateTime", value.nullable)
    if is_number(value):
        return E(f"to_timestamp(({value.as_value().sql})::float8)", "DateTime", value.nullable)
    text = value.as_text()
    return E(
        f"(CASE WHEN {text} ~ {NAIVE_TIME} THEN ({text})::timestamp AT TIME ZONE {c.tz} "
        f"WHEN {text} ~ {OFFSET_TIME} THEN ({text})::timestamptz END)",
        "DateTime",
        True,
    )


def to_date(c: "Compiler", value: E) -> E:
    if value.type == "Date":
        return value
    if value.type in ("DateTime", "DateTimeS"):
        return E(f"({local(c, value)})::date", "Date", value.nullable)
    if is_text(value):
        return E(f"(CASE WHEN {value.sql} ~ {DATE} THEN ({value.sql})::date END)", "Date", True)
    return to_date(c, to_datetime(c, value))


def local(c: "Compiler", value: E) -> str:
    """A time's wall-clock time in the team's timezone (a `timestamp`)."""
    if value.type == "Date":
        return f"({value.sql})::timestamp"
    value = to_datetime(c, value)
    return f"({value.sql} AT TIME ZONE {c.tz})"


def interval(c: "Compiler", amount: E, unit: str) -> E:
    unit = unit.lower().rstrip("s")
    if unit not in _UNITS:
        raise HogQLQueryError(f"Unsupported interval unit '{unit}'")
    return E(f"(({amount.as_value().sql}) * interval '1 {_UNITS[unit]}')", "Interval", amount.nullable)


_UNITS = {
    "second": "second",
    "minute": "minute",
    "hour": "hour",
    "day": "day",
    "week": "week",
    "month": "month",
    "quarter": "3 months",
    "year": "year",
}


def case(conditions: list[str], values: list[E], default: E | None) -> E:
    """CASE WHEN conditions[i] THEN values[i] … ELSE default END, its branches of one type."""
    types = {v.type for v in values if v.type != "Null"} | ({default.type} - {"Null"} if default else set())
    result = types.pop() if len(types) == 1 else ("Float" if types <= {"Int", "UInt", "Float"} else "String")
    cast_text = result == "String" and len(types) > 0

    def typed(value: E) -> str:
        return value.as_text() if cast_text and value.type != "Null" else value.sql

    sql = "CASE " + " ".join(
        f"WHEN {condition} THEN {typed(value)}" for condition, value in zip(conditions, values, strict=True)
    )
    if default is not None:
        sql += f" ELSE {typed(default)}"
    nullable = default is None or default.nullable or any(v.nullable for v in values)
    return E(sql + " END", result or "String", nullable)


def cast(c: "Compiler", value: E, to: exp.DataType) -> E:
    """`x::Type` / `CAST(x AS Type)`: as ClickHouse, an error on bad input (a 400)."""
    kind = to.this
    D = exp.DataType.Type
    if kind in (D.TEXT, D.VARCHAR, D.CHAR, D.NCHAR, D.NVARCHAR):
        return E(value.as_text(), "String", value.nullable)
    if kind in (D.TINYINT, D.SMALLINT, D.INT, D.BIGINT, D.UTINYINT, D.USMALLINT, D.UINT, D.UBIGINT):
        return E(f"({value.as_value().sql})::bigint", "Int", value.nullable)
    if kind in (D.FLOAT, D.DOUBLE, D.DECIMAL):
        return E(f"({value.as_value().sql})::float8", "Float", value.nullable)
    if kind in (D.DATETIME, D.DATETIME64, D.TIMESTAMP, D.TIMESTAMPTZ):
        return to_datetime(c, value)
    if kind in (D.DATE, D.DATE32):
        return to_date(c, value)
    if kind == D.BOOLEAN:
        return E(f"({value.as_value().sql})::boolean", "Bool", value.nullable)
    if kind == D.UUID:
        return E(f"({value.as_text()})::uuid", "UUID", value.nullable)
    raise HogQLQueryError(f"Unsupported cast to {to.sql(dialect='clickhouse')}")


# --- translations ---


def _nullable(args: list[E]) -> bool:
    return any(a.nullable for a in args)


def _constant_text(raw: list[exp.Expression], index: int, function: str) -> str:
    node = raw[index] if index < len(raw) else None
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise HogQLQueryError(f"Function '{function}' expects a constant string as argument {index + 1}")
    return str(node.this)


def _simple(pg: str, result: str | None = None, *, text: bool = False) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        parts = [a.as_text() if text else a.as_value().sql for a in args]
        kind = result or (args[0].as_value().type if args else "Float")
        return E(f"{pg}({', '.join(parts)})", kind, _nullable(args))

    return translate


def _template(sql: str, result: str, *, nullable: bool | None = None) -> Translation:
    """`sql` with `{0}`, `{1}` … for the arguments (values; text where the template says `{0t}`)."""

    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        values = {str(i): a.as_value().sql for i, a in enumerate(args)}
        values.update({f"{i}t": a.as_text() for i, a in enumerate(args)})
        values["tz"] = c.tz
        return E(sql.format(**values), result, _nullable(args) if nullable is None else nullable)

    return translate


# Aggregates


def _distinct(args: list[E]) -> str:
    if len(args) == 1:
        return args[0].as_value().sql
    return "ROW(" + ", ".join(a.as_value().sql for a in args) + ")"


def _count(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    if not args or args[0].type == "Star":
        return E("count(*)", "UInt", False)
    if raw and isinstance(raw[0], exp.Distinct):
        return E(f"count(DISTINCT {args[0].sql})", "UInt", False)
    return E(f"count({args[0].as_value().sql})", "UInt", False)


def _count_if(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    if len(args) == 1:
        return E(f"count(*) FILTER (WHERE {args[0].as_bool()})", "UInt", False)
    return E(f"count({args[0].as_value().sql}) FILTER (WHERE {args[1].as_bool()})", "UInt", False)


def _uniq(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"count(DISTINCT {_distinct(args)})", "UInt", False)


def _uniq_if(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"count(DISTINCT {_distinct(args[:-1])}) FILTER (WHERE {args[-1].as_bool()})", "UInt", False)


def _sum(c: "Compiler", args: list[E], raw: list[exp.Expression], condition: str = "") -> E:
    value = args[0].as_value()
    if is_text(value):
        value = to_float(value)
    kind = "Float" if value.type == "Float" else "Int"
    sql = f"sum({value.sql}){condition}"
    cast_to = "::float8" if kind == "Float" else "::bigint"
    if value.nullable:
        return E(f"({sql}){cast_to}", kind, True)
    return E(f"COALESCE({sql}, 0){cast_to}", kind, False)


def _sum_if(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return _sum(c, args[:1], raw, f" FILTER (WHERE {args[1].as_bool()})")


def _avg(c: "Compiler", args: list[E], raw: list[exp.Expression], condition: str = "") -> E:
    value = args[0].as_value()
    if is_text(value):
        value = to_float(value)
    return E(f"(avg({value.sql}){condition})::float8", "Float", True)


def _avg_if(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return _avg(c, args[:1], raw, f" FILTER (WHERE {args[1].as_bool()})")


def _extreme(pg: str, conditional: bool = False) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        value = args[0].as_value()
        condition = f" FILTER (WHERE {args[1].as_bool()})" if conditional else ""
        return E(f"{pg}({value.sql}){condition}", value.type, True)

    return translate


def _arg(direction: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        value, key = args[0].as_value(), args[1].as_value()
        return E(
            f"(array_agg({value.sql} ORDER BY {key.sql} {direction}) "
            f"FILTER (WHERE {key.sql} IS NOT NULL))[1]",
            value.type,
            True,
        )

    return translate


def _group_array(distinct: bool) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        value = args[0].as_text()
        keyword = "DISTINCT " if distinct else ""
        return E(
            f"COALESCE(array_agg({keyword}{value}) FILTER (WHERE {value} IS NOT NULL), ARRAY[]::text[])",
            "Array",
            False,
        )

    return translate


def _median(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return percentile(c, "0.5", args[0])


def percentile(c: "Compiler", p: str, value: E) -> E:
    number = to_float(value) if not is_number(value) else E(f"({value.as_value().sql})::float8", "Float")
    return E(f"percentile_cont({p}) WITHIN GROUP (ORDER BY {number.sql})", "Float", True)


def quantile(c: "Compiler", node: exp.Quantile, scope: "Scope") -> E:
    level = node.args.get("quantile")
    if not isinstance(level, exp.Literal) or level.is_string:
        raise HogQLQueryError("Aggregation 'quantile' requires parameters in addition to arguments")
    p = float(level.this)
    if not 0 <= p <= 1:
        raise HogQLQueryError("quantile's level must be between 0 and 1")
    return percentile(c, c.param(p), c.expr(node.this, scope))


# Times (the team's timezone: `c.tz`)


def _now(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E("now()", "DateTime", False)


def _today(days: int) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        return E(f"((now() AT TIME ZONE 'UTC')::date - {days})", "Date", False)

    return translate


def _to_date(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return to_date(c, args[0])


def _to_datetime(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return to_datetime(c, args[0])


def _truncate(unit: str, result: str = "DateTimeS") -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        value = to_datetime(c, args[0])
        tz = c.param(_constant_text(raw, 1, "toStartOf…")) if len(args) > 1 else c.tz
        sql = f"date_trunc('{unit}', {value.sql}, {tz})"
        if result == "Date":
            return E(f"(date_trunc('{unit}', {local(c, value)}))::date", "Date", value.nullable)
        return E(sql, result, value.nullable)

    return translate


def _bin(minutes: int) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        value = to_datetime(c, args[0])
        return E(
            f"(date_bin('{minutes} minutes', {local(c, value)}, timestamp '2000-01-01') AT TIME ZONE {c.tz})",
            "DateTimeS",
            value.nullable,
        )

    return translate


def _start_of_week(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    if len(args) > 1:
        mode_node = raw[1]
        if not isinstance(mode_node, exp.Literal) or mode_node.is_string:
            raise HogQLQueryError("toStartOfWeek's mode must be a constant number")
        monday = int(mode_node.this) % 2 == 1
    else:
        monday = c.week_start_day == 1
    return _week(c, args[0], monday)


def _week(c: "Compiler", value: E, monday: bool) -> E:
    wall = local(c, value)
    if monday:
        return E(f"(date_trunc('week', {wall}))::date", "Date", value.nullable)
    return E(
        f"(date_trunc('week', {wall} + interval '1 day') - interval '1 day')::date", "Date", value.nullable
    )


def _monday(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return _week(c, args[0], True)


_TRUNC_UNITS = {"second", "minute", "hour", "day", "week", "month", "quarter", "year"}


def _date_trunc(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    unit = _constant_text(raw, 0, "dateTrunc").lower()
    if unit not in _TRUNC_UNITS:
        raise HogQLQueryError(f"Unsupported unit '{unit}' for dateTrunc")
    value = to_datetime(c, args[1])
    return E(f"date_trunc('{unit}', {value.sql}, {c.tz})", "DateTimeS", value.nullable)


def _part(field: str, *, floor: bool = False) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        sql = f"extract({field} from {local(c, args[0])})"
        if floor:
            sql = f"floor({sql})"
        return E(f"({sql})::int", "Int", args[0].nullable)

    return translate


def _unix(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    value = to_datetime(c, args[0])
    return E(f"floor(extract(epoch from {value.sql}))::bigint", "Int", value.nullable)


def _from_unix(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"to_timestamp(({args[0].as_value().sql})::float8)", "DateTime", args[0].nullable)


_SECONDS = {"second": 1, "minute": 60, "hour": 3600}


def _date_diff(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    """Unit boundaries crossed from a to b, in the team's timezone (not elapsed time)."""
    unit = _constant_text(raw, 0, "dateDiff").lower()
    a, b = args[1], args[2]
    nullable = a.nullable or b.nullable
    if unit in _SECONDS:
        k = _SECONDS[unit]
        ta, tb = to_datetime(c, a), to_datetime(c, b)
        sql = (
            f"(floor(extract(epoch from {tb.sql}) / {k}) - floor(extract(epoch from {ta.sql}) / {k}))::bigint"
        )
        return E(sql, "Int", nullable)
    la, lb = local(c, a), local(c, b)
    if unit == "day":
        return E(f"(({lb})::date - ({la})::date)::bigint", "Int", nullable)
    if unit == "week":
        sql = f"(((date_trunc('week', {lb}))::date - (date_trunc('week', {la}))::date) / 7)::bigint"
        return E(sql, "Int", nullable)
    months = (
        f"((extract(year from {lb}) - extract(year from {la})) * 12 + extract(month from {lb}) - "
        f"extract(month from {la}))"
    )
    if unit == "month":
        return E(f"{months}::bigint", "Int", nullable)
    if unit == "quarter":
        quarters = (
            f"((extract(year from {lb}) - extract(year from {la})) * 4 + extract(quarter from {lb}) - "
            f"extract(quarter from {la}))"
        )
        return E(f"{quarters}::bigint", "Int", nullable)
    if unit == "year":
        return E(f"(extract(year from {lb}) - extract(year from {la}))::bigint", "Int", nullable)
    raise HogQLQueryError(f"Unsupported unit '{unit}' for dateDiff")


def _date_add(sign: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        unit = _constant_text(raw, 0, "dateAdd")
        shift = interval(c, args[1], unit)
        return _shifted(c, args[2], sign, shift)

    return translate


def _shifted(c: "Compiler", value: E, sign: str, shift: E) -> E:
    if value.type == "Date":
        return E(f"(({value.sql}) {sign} {shift.sql})::date", "Date", value.nullable or shift.nullable)
    moved = to_datetime(c, value)
    return E(f"({moved.sql} {sign} {shift.sql})", "DateTime", moved.nullable or shift.nullable)


def _add_unit(unit: str, sign: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        return _shifted(c, args[0], sign, interval(c, args[1], unit))

    return translate


def _to_interval(unit: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        return interval(c, args[0], unit)

    return translate


_FORMAT_CODES = {
    "Y": "YYYY",
    "y": "YY",
    "m": "MM",
    "d": "DD",
    "e": "FMDD",
    "H": "HH24",
    "I": "HH12",
    "i": "MI",
    "S": "SS",
    "s": "SS",
    "j": "DDD",
    "u": "ID",
    "p": "AM",
    "F": "YYYY-MM-DD",
    "T": "HH24:MI:SS",
    "D": "MM/DD/YY",
    "M": "FMMonth",
    "b": "Mon",
    "a": "Dy",
    "W": "FMDay",
}


def _format_datetime(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    pattern = _constant_text(raw, 1, "formatDateTime")
    out: list[str] = []
    literal: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            i += 2
            if code == "%":
                literal.append("%")
                continue
            if code not in _FORMAT_CODES:
                raise HogQLQueryError(f"Unsupported formatDateTime code %{code}")
            if literal:
                out.append('"' + "".join(literal).replace("\\", "\\\\").replace('"', '\\"') + '"')
                literal = []
            out.append(_FORMAT_CODES[code])
            continue
        literal.append(char)
        i += 1
    if literal:
        out.append('"' + "".join(literal).replace("\\", "\\\\").replace('"', '\\"') + '"')
    value = to_datetime(c, args[0])
    return E(f"to_char({local(c, value)}, {c.param(''.join(out))})", "String", value.nullable)


# Conversions and conditionals


def _to_string(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    value = args[0]
    if value.type in ("DateTime", "DateTimeS"):
        return E(f"to_char({local(c, value)}, 'YYYY-MM-DD HH24:MI:SS')", "String", value.nullable)
    return E(value.as_text(), "String", value.nullable)


def _or_zero(convert: Callable[[E], E], kind: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        return E(f"COALESCE({convert(args[0]).sql}, 0)", kind, False)

    return translate


def _to_uuid(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    text = args[0].as_text()
    return E(f"(CASE WHEN {text} ~ {UUID} THEN ({text})::uuid END)", "UUID", True)


def _coalesce(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    types = {a.type for a in args if a.type != "Null"}
    as_text = len(types) > 1 and not types <= {"Int", "UInt", "Float"}
    parts = [a.as_text() if as_text else a.as_value().sql for a in args]
    kind = "String" if as_text else (types.pop() if types else "Null")
    return E(f"COALESCE({', '.join(parts)})", kind, all(a.nullable for a in args))


def _nullif(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"NULLIF({args[0].as_value().sql}, {args[1].as_value().sql})", args[0].type, True)


def _is_null(negate: bool) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        return E(f"({args[0].sql} IS {'NOT ' if negate else ''}NULL)", "Bool", False)

    return translate


def _if(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return case([args[0].as_bool()], [args[1].as_value()], args[2].as_value())


def _multi_if(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    if len(args) % 2 == 0:
        raise HogQLQueryError("Function 'multiIf' expects an odd number of arguments")
    pairs = [(args[i], args[i + 1].as_value()) for i in range(0, len(args) - 1, 2)]
    return case([cond.as_bool() for cond, _ in pairs], [v for _, v in pairs], args[-1].as_value())


def _extreme_of(pg: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        return _coalesce_like(pg, args)

    return translate


def _coalesce_like(pg: str, args: list[E]) -> E:
    values = [a.as_value() for a in args]
    kind = "Float" if any(v.type == "Float" for v in values) else values[0].type
    return E(f"{pg}({', '.join(v.sql for v in values)})", kind, _nullable(args))


# Strings


def _concat(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"concat({', '.join(a.as_text() for a in args)})", "String", False)


def _length(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    value = args[0]
    if value.type == "Array":
        return E(f"COALESCE(cardinality({value.sql}), 0)::bigint", "UInt", value.nullable)
    return E(f"octet_length({value.as_text()})::bigint", "UInt", value.nullable)


def _substring(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    parts = [args[0].as_text(), *(f"({a.as_value().sql})::int" for a in args[1:])]
    return E(f"substr({', '.join(parts)})", "String", _nullable(args))


def _replace_one(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    s, a, b = (x.as_text() for x in args)
    return E(
        f"(CASE WHEN strpos({s}, {a}) > 0 AND {a} <> '' THEN overlay({s} placing {b} from strpos({s}, {a}) "
        f"for char_length({a})) ELSE {s} END)",
        "String",
        _nullable(args),
    )


def _regex_replace(flags: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        s, pattern, replacement = (x.as_text() for x in args)
        flag = f", '{flags}'" if flags else ""
        return E(f"regexp_replace({s}, {pattern}, {replacement}{flag})", "String", _nullable(args))

    return translate


def _like(op: str, negate: bool = False) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        sql = f"({args[0].as_text()} {op} {args[1].as_text()})"
        if negate:
            return E(f"COALESCE(NOT {sql}, true)", "Bool", False)
        return E(f"COALESCE({sql}, false)", "Bool", False)

    return translate


def _extract(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"COALESCE(substring({args[0].as_text()} from {args[1].as_text()}), '')", "String", False)


def _split(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"string_to_array({args[1].as_text()}, {args[0].as_text()})", "Array", _nullable(args))


def _starts_with(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"COALESCE(starts_with({args[0].as_text()}, {args[1].as_text()}), false)", "Bool", False)


def _ends_with(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    s, p = args[0].as_text(), args[1].as_text()
    return E(f"COALESCE(right({s}, char_length({p})) = {p}, false)", "Bool", False)


def _empty(negate: bool) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        value = args[0]
        test = (
            f"COALESCE(cardinality({value.sql}), 0) = 0"
            if value.type == "Array"
            else f"{value.as_text()} = ''"
        )
        if negate:
            return E(f"COALESCE(NOT ({test}), false)", "Bool", False)
        return E(f"COALESCE({test}, true)", "Bool", False)

    return translate


# Arrays and JSON


def _array_join(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    if args[0].type != "Array":
        raise HogQLQueryError("arrayJoin takes an array")
    return E(f"unnest({args[0].sql})", "String", True)


def _has(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"COALESCE({args[1].as_text()} = ANY({args[0].sql}), false)", "Bool", False)


def _index_of(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"COALESCE(array_position({args[0].sql}, {args[1].as_text()}), 0)::bigint", "UInt", False)


def _array_concat(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    separator = args[1].as_text() if len(args) > 1 else "''"
    return E(f"array_to_string({args[0].sql}, {separator})", "String", args[0].nullable)


def _json(value: E) -> str:
    return value.sql if value.type == "JSON" else f"({value.as_text()})::jsonb"


def _json_path(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> str:
    keys = []
    for i, node in enumerate(raw[1:], start=1):
        if isinstance(node, exp.Literal) and not node.is_string:
            index = int(node.this)
            keys.append(c.param(str(index - 1 if index > 0 else index)))
        else:
            keys.append(args[i].as_text())
    return "ARRAY[" + ", ".join(keys) + "]::text[]"


def _json_extract(kind: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        at = f"({_json(args[0])} #> {_json_path(c, args, raw)})"
        if kind == "String":
            return E(
                f"COALESCE(CASE WHEN jsonb_typeof({at}) = 'string' THEN {at} #>> '{{}}' END, '')", "String"
            )
        if kind == "Raw":
            return E(f"COALESCE(({at})::text, '')", "String")
        if kind == "Has":
            return E(f"({at} IS NOT NULL)", "Bool")
        if kind == "Bool":
            return E(
                f"COALESCE(CASE WHEN jsonb_typeof({at}) = 'boolean' THEN ({at})::boolean END, false)", "Bool"
            )
        number = f"CASE WHEN jsonb_typeof({at}) = 'number' THEN ({at} #>> '{{}}')::float8 END"
        if kind == "Int":
            return E(f"COALESCE(trunc({number})::bigint, 0)", "Int")
        return E(f"COALESCE({number}, 0)", "Float")

    return translate


# Maths


def _round(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    digits = f"({args[1].as_value().sql})::int" if len(args) > 1 else "0"
    return E(f"round(({args[0].as_value().sql})::numeric, {digits})::float8", "Float", _nullable(args))


def _floor_ceil(pg: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        value = args[0].as_value()
        if len(args) > 1:
            scale = f"power(10, ({args[1].as_value().sql})::int)"
            return E(f"({pg}(({value.sql})::float8 * {scale}) / {scale})", "Float", _nullable(args))
        return E(f"{pg}({value.sql})", value.type, value.nullable)

    return translate


def _int_div(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    a, b = args[0].as_value(), args[1].as_value()
    return E(f"div(({a.sql})::numeric, ({b.sql})::numeric)::bigint", "Int", _nullable(args))


def _math(pg: str) -> Translation:
    def translate(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
        parts = [f"({a.as_value().sql})::float8" for a in args]
        return E(f"{pg}({', '.join(parts)})", "Float", _nullable(args))

    return translate


def _abs(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    value = args[0].as_value()
    return E(f"abs({value.sql})", value.type, value.nullable)


def _log2(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"log(2, ({args[0].as_value().sql})::numeric)::float8", "Float", args[0].nullable)


def _sign(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E(f"sign(({args[0].as_value().sql})::float8)::int", "Int", args[0].nullable)


def _pi(c: "Compiler", args: list[E], raw: list[exp.Expression]) -> E:
    return E("pi()", "Float")


N = 1_000  # "any number of arguments"
AGGREGATES = frozenset(
    {
        "count", "countIf", "uniq", "uniqExact", "uniqIf", "sum", "sumIf", "avg", "avgIf", "min", "max",
        "minIf", "maxIf", "any", "argMax", "argMin", "groupArray", "groupUniqArray", "median",
    }
)  # fmt: skip
FUNCTIONS: dict[str, tuple[int, int, Translation]] = {
    # Aggregates
    "count": (0, 1, _count),
    "countIf": (1, 2, _count_if),
    "uniq": (1, N, _uniq),
    "uniqExact": (1, N, _uniq),
    "uniqIf": (2, N, _uniq_if),
    "sum": (1, 1, _sum),
    "sumIf": (2, 2, _sum_if),
    "avg": (1, 1, _avg),
    "avgIf": (2, 2, _avg_if),
    "min": (1, 1, _extreme("min")),
    "max": (1, 1, _extreme("max")),
    "minIf": (2, 2, _extreme("min", True)),
    "maxIf": (2, 2, _extreme("max", True)),
    "any": (1, 1, _extreme("min")),
    "argMax": (2, 2, _arg("DESC")),
    "argMin": (2, 2, _arg("ASC")),
    "groupArray": (1, 1, _group_array(False)),
    "groupUniqArray": (1, 1, _group_array(True)),
    "median": (1, 1, _median),
    # Dates and times
    "now": (0, 0, _now),
    "today": (0, 0, _today(0)),
    "yesterday": (0, 0, _today(1)),
    "toDate": (1, 1, _to_date),
    "toDateTime": (1, 1, _to_datetime),
    "toStartOfMinute": (1, 2, _truncate("minute")),
    "toStartOfHour": (1, 2, _truncate("hour")),
    "toStartOfDay": (1, 2, _truncate("day")),
    "toStartOfFiveMinutes": (1, 1, _bin(5)),
    "toStartOfTenMinutes": (1, 1, _bin(10)),
    "toStartOfFifteenMinutes": (1, 1, _bin(15)),
    "toStartOfWeek": (1, 2, _start_of_week),
    "toMonday": (1, 1, _monday),
    "toStartOfMonth": (1, 1, _truncate("month", "Date")),
    "toStartOfQuarter": (1, 1, _truncate("quarter", "Date")),
    "toStartOfYear": (1, 1, _truncate("year", "Date")),
    "dateTrunc": (2, 2, _date_trunc),
    "date_trunc": (2, 2, _date_trunc),
    "toYear": (1, 1, _part("year")),
    "toQuarter": (1, 1, _part("quarter")),
    "toMonth": (1, 1, _part("month")),
    "toDayOfMonth": (1, 1, _part("day")),
    "toDayOfYear": (1, 1, _part("doy")),
    "toDayOfWeek": (1, 1, _part("isodow")),
    "toHour": (1, 1, _part("hour")),
    "toMinute": (1, 1, _part("minute")),
    "toSecond": (1, 1, _part("second", floor=True)),
    "toUnixTimestamp": (1, 1, _unix),
    "fromUnixTimestamp": (1, 1, _from_unix),
    "dateDiff": (3, 3, _date_diff),
    "date_diff": (3, 3, _date_diff),
    "dateAdd": (3, 3, _date_add("+")),
    "dateSub": (3, 3, _date_add("-")),
    "formatDateTime": (2, 2, _format_datetime),
    **{f"add{unit.title()}s": (2, 2, _add_unit(unit, "+")) for unit in _UNITS},
    **{f"subtract{unit.title()}s": (2, 2, _add_unit(unit, "-")) for unit in _UNITS},
    **{f"toInterval{unit.title()}": (1, 1, _to_interval(unit)) for unit in _UNITS},
    # Conversions and conditionals
    "toString": (1, 1, _to_string),
    "toInt": (1, 1, lambda c, args, raw: to_int(args[0])),
    "toFloat": (1, 1, lambda c, args, raw: to_float(args[0])),
    "toIntOrZero": (1, 1, _or_zero(to_int, "Int")),
    "toFloatOrZero": (1, 1, _or_zero(to_float, "Float")),
    "toUUID": (1, 1, _to_uuid),
    "coalesce": (1, N, _coalesce),
    "ifNull": (2, 2, _coalesce),
    "nullIf": (2, 2, _nullif),
    "isNull": (1, 1, _is_null(False)),
    "isNotNull": (1, 1, _is_null(True)),
    "if": (3, 3, _if),
    "multiIf": (3, N, _multi_if),
    "greatest": (1, N, _extreme_of("GREATEST")),
    "least": (1, N, _extreme_of("LEAST")),
    # Strings
    "lower": (1, 1, _simple("lower", "String", text=True)),
    "upper": (1, 1, _simple("upper", "String", text=True)),
    "lowerUTF8": (1, 1, _simple("lower", "String", text=True)),
    "upperUTF8": (1, 1, _simple("upper", "String", text=True)),
    "concat": (1, N, _concat),
    "length": (1, 1, _length),
    "lengthUTF8": (1, 1, _template("char_length({0t})::bigint", "UInt")),
    "substring": (2, 3, _substring),
    "left": (2, 2, _template("left({0t}, ({1})::int)", "String")),
    "right": (2, 2, _template("right({0t}, ({1})::int)", "String")),
    "trim": (1, 1, _simple("btrim", "String", text=True)),
    "trimLeft": (1, 1, _simple("ltrim", "String", text=True)),
    "trimRight": (1, 1, _simple("rtrim", "String", text=True)),
    "replace": (3, 3, _simple("replace", "String", text=True)),
    "replaceAll": (3, 3, _simple("replace", "String", text=True)),
    "replaceOne": (3, 3, _replace_one),
    "replaceRegexpAll": (3, 3, _regex_replace("g")),
    "replaceRegexpOne": (3, 3, _regex_replace("")),
    "like": (2, 2, _like("LIKE")),
    "ilike": (2, 2, _like("ILIKE")),
    "notLike": (2, 2, _like("LIKE", True)),
    "notILike": (2, 2, _like("ILIKE", True)),
    "match": (2, 2, _like("~")),
    "extract": (2, 2, _extract),
    "splitByChar": (2, 2, _split),
    "splitByString": (2, 2, _split),
    "position": (2, 2, _template("strpos({0t}, {1t})::bigint", "UInt")),
    "startsWith": (2, 2, _starts_with),
    "endsWith": (2, 2, _ends_with),
    "empty": (1, 1, _empty(False)),
    "notEmpty": (1, 1, _empty(True)),
    # Arrays and JSON
    "arrayJoin": (1, 1, _array_join),
    "has": (2, 2, _has),
    "indexOf": (2, 2, _index_of),
    "arrayStringConcat": (1, 2, _array_concat),
    "JSONExtractString": (1, N, _json_extract("String")),
    "JSONExtractInt": (1, N, _json_extract("Int")),
    "JSONExtractFloat": (1, N, _json_extract("Float")),
    "JSONExtractBool": (1, N, _json_extract("Bool")),
    "JSONExtractRaw": (1, N, _json_extract("Raw")),
    "JSONHas": (1, N, _json_extract("Has")),
    # Maths
    "round": (1, 2, _round),
    "floor": (1, 2, _floor_ceil("floor")),
    "ceil": (1, 2, _floor_ceil("ceil")),
    "abs": (1, 1, _abs),
    "sqrt": (1, 1, _math("sqrt")),
    "exp": (1, 1, _math("exp")),
    "log": (1, 1, _math("ln")),
    "ln": (1, 1, _math("ln")),
    "log10": (1, 1, _math("log")),
    "log2": (1, 1, _log2),
    "pow": (2, 2, _math("power")),
    "power": (2, 2, _math("power")),
    "sign": (1, 1, _sign),
    "pi": (0, 0, _pi),
    "intDiv": (2, 2, _int_div),
}
CASE_INSENSITIVE = {
    name.lower(): name
    for name in (
        "count", "sum", "avg", "min", "max", "if", "coalesce", "ifNull", "nullIf", "isNull", "lower", "upper",
        "concat", "substring", "replace", "trim", "position", "now", "round", "floor", "ceil", "abs", "sqrt",
        "exp", "log", "ln", "pow", "power", "sign", "pi", "least", "greatest", "length",
    )
}  # fmt: skip


def lookup(name: str) -> str:
    """The allow-listed function `name` stands for, or PostHog's error naming it."""
    if name in FUNCTIONS:
        return name
    if name.lower() in CASE_INSENSITIVE:
        return CASE_INSENSITIVE[name.lower()]
    message = f"Unsupported function call '{name}(...)'"
    close = (
        difflib.get_close_matches(name, list(FUNCTIONS), n=1)
        or [n for n in FUNCTIONS if n.lower() == name.lower()][:1]
    )
    if close:
        message += f". Perhaps you meant '{close[0]}(...)'?"
    raise HogQLQueryError(message)


def _arity(name: str, low: int, high: int, found: int) -> None:
    kind = "Aggregation" if name in AGGREGATES else "Function"
    if low == high and found != low:
        plural = "argument" if low == 1 else "arguments"
        raise HogQLQueryError(f"{kind} '{name}' expects {low} {plural}, found {found}")
    if found < low:
        plural = "argument" if low == 1 else "arguments"
        raise HogQLQueryError(f"{kind} '{name}' expects at least {low} {plural}, found {found}")
    if found > high:
        plural = "argument" if high == 1 else "arguments"
        raise HogQLQueryError(f"{kind} '{name}' expects at most {high} {plural}, found {found}")


def call(c: "Compiler", name: str, args: list[E], scope: "Scope", node: exp.Expression) -> E:
    canonical = lookup(name)
    low, high, translate = FUNCTIONS[canonical]
    _arity(canonical, low, high, len(args))
    raw: list[Any] = list(node.expressions) if hasattr(node, "expressions") else []
    if isinstance(node, exp.Coalesce):
        raw = [node.this, *node.expressions]
    elif isinstance(node, exp.Substring):
        raw = [node.this, node.args.get("start"), node.args.get("length")]
    if any(a.type == "Star" for a in args) and canonical != "count":
        raise HogQLQueryError(f"Function '{canonical}' does not take *")
    return translate(c, args, raw)
