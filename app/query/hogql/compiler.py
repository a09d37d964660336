"""HogQL's AST (sqlglot) compiled to one PostgreSQL SELECT with `$n` parameters.

Only the node types and functions named here compile; anything else is refused by name. Every constant of the
query becomes a parameter (typed with an explicit cast); identifiers in the output are generated (`s1`, `c1`),
never the user's text. Every reference to `events` or `person` reads that table filtered to the team
(`team_id = $1`) in a derived table PostgreSQL flattens, so the indexes on (team_id, event, timestamp) serve
the query as they would a hand-written one. Times are read in the team's timezone with explicit `AT TIME
ZONE`, never a session setting.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from app.query.hogql import functions
from app.query.hogql.errors import HogQLQueryError
from app.query.hogql.parser import PLACEHOLDER_PREFIX, HogQL
from app.query.hogql.types import E, is_number, is_text

_PARAMETER = re.compile(r"\$(\d+)\b")
DEFAULT_LIMIT = 100
MAX_LIMIT = 50_000

# The columns of the exposed tables: HogQL name → (SQL on the team-filtered table, type, nullable).
EVENTS_FIELDS: dict[str, tuple[str, str, bool]] = {
    "uuid": ("{t}.uuid", "UUID", False),
    "event": ("{t}.event", "String", False),
    "properties": ("{t}.properties", "JSON", False),
    "timestamp": ("{t}.timestamp", "DateTime", False),
    "team_id": ("{t}.team_id", "Int", False),
    "distinct_id": ("{t}.distinct_id", "String", False),
    "elements_chain": ("COALESCE({t}.properties ->> '$elements_chain', '')", "String", False),
    "created_at": ("{t}.inserted_at", "DateTime", False),
    "$session_id": ("({t}.properties ->> '$session_id')", "String", True),
    "$window_id": ("({t}.properties ->> '$window_id')", "String", True),
    # Tilecast's actors are distinct ids (never merged): a person's id is its distinct id.
    "person_id": ("{t}.distinct_id", "String", False),
}
EVENTS_STAR = ("uuid", "event", "properties", "timestamp", "team_id", "distinct_id", "elements_chain")
PERSON_FIELDS: dict[str, tuple[str, str, bool]] = {
    "id": ("{t}.distinct_id", "String", False),
    "distinct_id": ("{t}.distinct_id", "String", False),
    "properties": ("{t}.properties", "JSON", False),
    "created_at": ("{t}.created_at", "DateTime", False),
    "team_id": ("{t}.team_id", "Int", False),
}
PERSON_STAR = ("id", "properties", "created_at", "team_id")
TABLES = {"events": "events", "persons": "person", "person": "person"}


@dataclass
class Source:
    """A FROM item: a team-filtered table (`events`, `person`) or a derived table (subquery, CTE)."""

    name: str  # generated SQL alias
    table: str | None  # "events" / "person" for a base table
    sql: str = ""  # the derived table's SQL (base tables: built at render time)
    columns: dict[str, E] = field(default_factory=dict)  # derived: user name → column
    person_join: str | None = None  # events: the alias of its LEFT JOIN to the person table
    filters: str | None = None  # events: the `{filters}` condition on this source

    def fields(self) -> dict[str, tuple[str, str, bool]]:
        return EVENTS_FIELDS if self.table == "events" else PERSON_FIELDS


@dataclass
class Scope:
    parent: "Scope | None"
    ctes: dict[str, tuple[str, dict[str, E]]]
    sources: dict[str, Source] = field(default_factory=dict)
    aliases: dict[str, E] = field(default_factory=dict)
    uses_filters: bool = False
    # Within an aggregate's arguments (for nested-aggregate errors); within GROUP BY/ORDER BY (positions).
    in_select: bool = False


@dataclass
class Compiled:
    sql: str
    params: list[Any]
    columns: list[str]
    types: list[E]
    team_slot: int | None  # the team id's parameter number (None when no table is read)
    paginated: bool  # the top-level SELECT had no LIMIT: LIMIT 101 OFFSET n was added
    limit: int | None
    offset: int | None
    hogql: str


FiltersBuilder = Callable[["Compiler", str], str]


class Compiler:
    """One compilation: its parameters (`$1` is the team id, `$2` the team's timezone)."""

    def __init__(
        self,
        team_id: int,
        timezone: str,
        *,
        values: dict[str, Any] | None = None,
        filters: FiltersBuilder | None = None,
        week_start_day: int = 0,
    ) -> None:
        self.params: list[Any] = []
        self._param_index: dict[tuple[type, Any], int] = {}
        self.team = self.param(team_id)
        self.tz = self.param(timezone)
        self.timezone = timezone
        self.week_start_day = week_start_day
        self.values = values or {}
        self.filters = filters
        self.placeholders: list[str] = []
        self._names = 0

    # --- parameters and names ---

    def param(self, value: Any) -> str:
        """A constant as a typed parameter (`$3::text`); equal constants share one parameter, so that an
        expression repeated in GROUP BY is the same expression to PostgreSQL."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            pg = "boolean"
        elif isinstance(value, int):
            pg = "bigint" if -(2**63) <= value < 2**63 else "numeric"
            if pg == "numeric":
                value = str(value)
        elif isinstance(value, float):
            pg = "float8"
        elif isinstance(value, datetime):
            pg = "timestamptz"
        elif isinstance(value, str):
            if "\x00" in value:
                raise HogQLQueryError("A string in the query contains a NUL character")
            pg = "text"
        else:
            raise HogQLQueryError(f"Unsupported constant {value!r}")
        key = (type(value), value)
        if key not in self._param_index:
            self.params.append(value)
            self._param_index[key] = len(self.params)
        return f"${self._param_index[key]}::{pg}"

    def param_raw(self, value: Any) -> int:
        """A parameter whose type the SQL around it gives (SQLAlchemy's compiled filters); its number."""
        self.params.append(value)
        return len(self.params)

    def fresh(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    # --- statements ---

    def compile_top(self, tree: exp.Expression, placeholders: list[str]) -> Compiled:
        self.placeholders = placeholders
        paginated = False
        limit: int | None = None
        offset: int | None = None
        if isinstance(tree, exp.Select):
            if tree.args.get("limit") is None:
                paginated = True
                offset_node = tree.args.get("offset")
                limit, offset = DEFAULT_LIMIT, 0
                if offset_node is not None:
                    tree.set("offset", None)
                tree.set("limit", exp.Limit(expression=exp.Literal.number(DEFAULT_LIMIT + 1)))
                tree.set("offset", exp.Offset(expression=exp.Literal.number(0)))
            else:
                self._cap_limit(tree)
        elif isinstance(tree, exp.Union):
            if tree.args.get("limit") is None:
                for branch in _branches(tree):
                    if branch.args.get("limit") is None:
                        branch.set("limit", exp.Limit(expression=exp.Literal.number(DEFAULT_LIMIT)))
                    else:
                        self._cap_limit(branch)
            else:
                self._cap_limit(tree)
        hogql = tree.sql(dialect=HogQL, pretty=True)
        sql, columns = self.statement(tree, None)
        outputs = columns.outputs if isinstance(columns, _OrderedColumns) else list(columns.items())
        # Only the parameters the SQL uses, numbered from 1 in order (PostgreSQL refuses unused ones).
        used = sorted({int(n) for n in _PARAMETER.findall(sql)})
        numbers = {old: new for new, old in enumerate(used, start=1)}
        sql = _PARAMETER.sub(lambda match: f"${numbers[int(match[1])]}", sql)
        return Compiled(
            sql=sql,
            params=[self.params[old - 1] for old in used],
            team_slot=numbers.get(1),
            columns=[name for name, _ in outputs],
            types=[value for _, value in outputs],
            paginated=paginated,
            limit=limit,
            offset=offset,
            hogql=hogql,
        )

    @staticmethod
    def _cap_limit(node: exp.Expression) -> None:
        limit = node.args.get("limit")
        value = limit.args.get("expression") if limit is not None else None
        if limit is not None and isinstance(value, exp.Literal) and not value.is_string:
            if value.this.isdigit() and int(value.this) > MAX_LIMIT:  # others: refused by `_count`
                limit.set("expression", exp.Literal.number(MAX_LIMIT))

    def statement(self, node: exp.Expression, parent: Scope | None) -> tuple[str, dict[str, E]]:
        """A SELECT or a set query; its SQL and its output columns (user name → column)."""
        ctes = dict(parent.ctes) if parent else {}
        with_ = node.args.get("with_")
        prefix = ""
        if with_ is not None:
            if with_.args.get("recursive"):
                raise HogQLQueryError("Recursive CTEs are not supported")
            parts = []
            for cte in with_.expressions:
                if not isinstance(cte, exp.CTE) or not isinstance(cte.this, (exp.Select, exp.Union)):
                    raise HogQLQueryError("Only `name AS (SELECT …)` CTEs are supported")
                sql, columns = self.statement(cte.this, Scope(parent, ctes))
                name = self.fresh("w")
                parts.append(f"{name} AS ({sql})")
                ctes = {**ctes, cte.alias_or_name: (name, dict(columns))}
            prefix = "WITH " + ", ".join(parts) + " "
        scope_parent = Scope(parent, ctes)
        if isinstance(node, exp.Union):
            sql, columns = self._union(node, scope_parent)
        elif isinstance(node, exp.Select):
            sql, columns = self._select(node, scope_parent)
        elif isinstance(node, exp.Subquery):
            return self.statement(node.this, parent)
        else:
            raise HogQLQueryError(f"Unsupported query: {node.key.upper()}")
        return prefix + sql, columns

    def _union(self, node: exp.Union, scope: Scope) -> tuple[str, dict[str, E]]:
        if type(node) is not exp.Union:
            raise HogQLQueryError(f"{node.key.upper()} is not supported; use UNION ALL")
        operator = "UNION" if node.args.get("distinct") else "UNION ALL"
        left, columns = self.statement(node.this, scope)
        right, right_columns = self.statement(node.expression, scope)
        if len(right_columns) != len(columns):
            raise HogQLQueryError("Each part of a UNION must select the same number of columns")
        sql = f"({left}) {operator} ({right})"
        order = node.args.get("order")
        if order is not None:
            keys = []
            names = list(columns)
            for ordered in order.expressions:
                target = ordered.this
                if isinstance(target, exp.Column) and target.name in columns and not target.table:
                    position = names.index(target.name) + 1
                elif isinstance(target, exp.Literal) and not target.is_string:
                    position = int(target.this)
                else:
                    raise HogQLQueryError("ORDER BY of a UNION names one of its columns")
                keys.append(f"{position}{_direction(ordered)}")
            sql += " ORDER BY " + ", ".join(keys)
        sql += self._limit_offset(node, scope)
        return sql, columns

    def _select(self, node: exp.Select, scope: Scope) -> tuple[str, dict[str, E]]:
        for key in ("prewhere", "settings", "sample", "qualify", "windows", "kind", "into", "locks"):
            if node.args.get(key):
                raise HogQLQueryError(f"{key.upper()} is not supported")
        if node.args.get("laterals"):
            raise HogQLQueryError("ARRAY JOIN is not supported")
        from_ = node.args.get("from_")
        joins_sql: list[str] = []
        sources: list[Source] = []
        if from_ is not None:
            sources.append(self._source(from_.this, scope))
            for join in node.args.get("joins") or []:
                sources.append(self._source(join.this, scope))
        # ON conditions see every source of the FROM chain.
        joins = node.args.get("joins") or []
        join_kinds = [self._join_kind(join) for join in joins]
        # Select list first: its aliases are usable in WHERE, GROUP BY, HAVING and ORDER BY.
        scope.in_select = True
        outputs: list[tuple[str, E]] = []
        for item in node.expressions:
            if isinstance(item, exp.Star):
                outputs.extend(self._star(scope))
                continue
            if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                source = scope.sources.get(item.table)
                if source is None:
                    raise HogQLQueryError(f'Unknown table "{item.table}".')
                outputs.extend(self._source_star(source))
                continue
            if isinstance(item, exp.Alias):
                name = item.alias
                if name.lower() in ("team_id", "true", "false", "null"):
                    raise HogQLQueryError(f"Alias '{name}' is a reserved keyword")
                value = self.expr(item.this, scope)
                scope.aliases[name] = value
            else:
                name = _column_name(item)
                value = self.expr(item, scope)
            outputs.append((name, value))
        scope.in_select = False
        on_sql = []
        for join, kind in zip(joins, join_kinds, strict=True):
            condition = join.args.get("on")
            if join.args.get("using"):
                raise HogQLQueryError("JOIN … USING is not supported; use JOIN … ON")
            if kind == "CROSS JOIN":
                if condition is not None:
                    raise HogQLQueryError("CROSS JOIN takes no ON condition")
                on_sql.append("")
            else:
                if condition is None:
                    raise HogQLQueryError(f"{kind} needs an ON condition")
                on_sql.append(" ON " + self.condition(condition, scope))
        where = node.args.get("where")
        where_sql = self.condition(where.this, scope) if where is not None else None
        group = node.args.get("group")
        group_sql = [self._positional_or_expr(g, scope) for g in group.expressions] if group else []
        having = node.args.get("having")
        having_sql = self.condition(having.this, scope) if having is not None else None
        order = node.args.get("order")
        order_sql = (
            [self._positional_or_expr(o.this, scope) + _direction(o) for o in order.expressions]
            if order
            else []
        )
        # The FROM chain, rendered last: a source may have gained its person join or `{filters}` meanwhile.
        if sources:
            from_sql = " FROM " + self._render_source(sources[0])
            for source, kind, on in zip(sources[1:], join_kinds, on_sql, strict=True):
                joins_sql.append(f" {kind} {self._render_source(source)}{on}")
        else:
            from_sql = ""
        if scope.uses_filters and not any(s.table == "events" for s in sources):
            raise HogQLQueryError(
                "Cannot use 'filters' placeholder in a SELECT clause that does not select from the events, "
                "sessions, logs, traces or groups table."
            )
        names = [f"c{i}" for i in range(1, len(outputs) + 1)]
        distinct = "DISTINCT " if node.args.get("distinct") else ""
        select_list = ", ".join(
            f"{value.sql} AS {name}" for (_, value), name in zip(outputs, names, strict=True)
        )
        sql = f"SELECT {distinct}{select_list or 'NULL'}{from_sql}{''.join(joins_sql)}"
        if where_sql is not None:
            sql += f" WHERE {where_sql}"
        if group_sql:
            sql += " GROUP BY " + ", ".join(group_sql)
        if having_sql is not None:
            sql += f" HAVING {having_sql}"
        if order_sql:
            sql += " ORDER BY " + ", ".join(order_sql)
        sql += self._limit_offset(node, scope)
        columns: dict[str, E] = {}
        for (name, value), generated in zip(outputs, names, strict=True):
            columns.setdefault(name, E(generated, value.type, value.nullable))
        return sql, _OrderedColumns(columns, [(n, v) for n, v in outputs])

    def _limit_offset(self, node: exp.Expression, scope: Scope) -> str:
        sql = ""
        limit = node.args.get("limit")
        if limit is not None:
            if limit.args.get("expressions"):
                raise HogQLQueryError("LIMIT … BY is not supported")
            sql += f" LIMIT LEAST({self._count(limit.expression)}, {MAX_LIMIT})"
        offset = node.args.get("offset")
        if offset is not None:
            sql += f" OFFSET {self._count(offset.expression)}"
        return sql

    def _count(self, node: exp.Expression) -> str:
        if isinstance(node, exp.Literal) and not node.is_string:
            try:
                value = int(node.this)
            except ValueError:
                raise HogQLQueryError("LIMIT and OFFSET take whole numbers") from None
            return str(max(value, 0))
        raise HogQLQueryError("LIMIT and OFFSET take constant whole numbers")

    def _join_kind(self, join: exp.Join) -> str:
        side = (join.args.get("side") or "").upper()
        kind = (join.args.get("kind") or "").upper()
        if join.args.get("global_") or join.args.get("method"):
            raise HogQLQueryError("GLOBAL, ANY, ALL and ASOF joins are not supported")
        if kind == "CROSS":
            return "CROSS JOIN"
        if kind not in ("", "INNER", "OUTER"):
            raise HogQLQueryError(f"{kind} JOIN is not supported")
        if side in ("LEFT", "RIGHT", "FULL"):
            return f"{side} JOIN"
        if not join.args.get("on") and not join.args.get("using"):
            return "CROSS JOIN"  # `FROM a, b`
        return "JOIN"

    def _source(self, node: exp.Expression, scope: Scope) -> Source:
        alias = node.alias_or_name if not isinstance(node, exp.Subquery) else node.alias
        if isinstance(node, exp.Table):
            if node.args.get("db") or node.args.get("catalog"):
                raise HogQLQueryError(f'Unknown table "{node.sql(dialect=HogQL)}".')
            if isinstance(node.this, exp.Anonymous) or not isinstance(node.this, exp.Identifier):
                raise HogQLQueryError(f'Unknown table "{node.sql(dialect=HogQL)}".')
            name = node.name
            cte = scope.ctes.get(name)
            if cte is not None:
                source = Source(self.fresh("s"), None, sql=cte[0], columns=cte[1])
            elif name in TABLES:
                source = Source(self.fresh("s"), TABLES[name])
            else:
                raise HogQLQueryError(f'Unknown table "{name}".')
        elif isinstance(node, exp.Subquery):
            if not isinstance(node.this, (exp.Select, exp.Union)):
                raise HogQLQueryError("A subquery must be a SELECT")
            sql, columns = self.statement(node.this, scope)
            source = Source(self.fresh("s"), None, sql=f"({sql})", columns=dict(columns))
        else:
            raise HogQLQueryError(f"Unsupported FROM item: {node.key.upper()}")
        alias = alias or (node.name if isinstance(node, exp.Table) else source.name)
        if alias in scope.sources:
            raise HogQLQueryError(f"Table alias '{alias}' is used twice")
        scope.sources[alias] = source
        return source

    def _render_source(self, source: Source) -> str:
        if source.table is None:
            return f"{source.sql} AS {source.name}"
        guard = f"{source.table}.team_id = {self.team}"
        if source.filters:
            base = (
                f"(SELECT events.* FROM events LEFT JOIN person ON person.team_id = events.team_id "
                f"AND person.distinct_id = events.distinct_id WHERE {guard} AND {source.filters})"
            )
        else:
            base = f"(SELECT * FROM {source.table} WHERE {guard})"
        sql = f"{base} AS {source.name}"
        if source.person_join:
            p = source.person_join
            sql = (
                f"({sql} LEFT JOIN (SELECT * FROM person WHERE person.team_id = {self.team}) AS {p} "
                f"ON {p}.distinct_id = {source.name}.distinct_id)"
            )
        return sql

    def _star(self, scope: Scope) -> list[tuple[str, E]]:
        out: list[tuple[str, E]] = []
        for source in scope.sources.values():
            out.extend(self._source_star(source))
        return out

    def _source_star(self, source: Source) -> list[tuple[str, E]]:
        if source.table is None:
            return [
                (name, E(f"{source.name}.{c.sql}", c.type, c.nullable)) for name, c in source.columns.items()
            ]
        names = EVENTS_STAR if source.table == "events" else PERSON_STAR
        out = []
        for name in names:
            value = self._field(source, name)
            if value.type == "JSON":
                value = E(f"({value.sql})::text", "String", False)
            out.append((name, value))
        return out

    # --- expressions ---

    def condition(self, node: exp.Expression, scope: Scope) -> str:
        """A boolean SQL condition (HogQL's 0/1 numbers are true when non-zero)."""
        return self.expr(node, scope).as_bool()

    def _positional_or_expr(self, node: exp.Expression, scope: Scope) -> str:
        if isinstance(node, exp.Literal) and not node.is_string:
            return str(int(node.this))
        return self.expr(node, scope).sql

    def expr(self, node: exp.Expression, scope: Scope) -> E:
        handler = _HANDLERS.get(type(node))
        if handler is None:
            if isinstance(node, exp.Func):
                name = node.sql_name() if not isinstance(node, exp.Anonymous) else node.name
                raise HogQLQueryError(f"Unsupported function call '{name}(...)'")
            raise HogQLQueryError(f"Unsupported syntax: {node.key.upper()}")
        return handler(self, node, scope)

    def resolve(self, parts: list[str], scope: Scope) -> E:
        """A field or property chain (`event`, `e.properties.$browser`, `person.properties.email`)."""
        if len(parts) == 1 and parts[0].startswith(PLACEHOLDER_PREFIX):
            return self._placeholder(int(parts[0][len(PLACEHOLDER_PREFIX) :]), scope)
        current: Scope | None = scope
        while current is not None:
            found = self._resolve_in(parts, current)
            if found is not None:
                return found
            current = current.parent
        raise HogQLQueryError(f"Unable to resolve field: {'.'.join(parts)}")

    def _resolve_in(self, parts: list[str], scope: Scope) -> E | None:
        if len(parts) > 1 and parts[0] in scope.sources:
            return self._from_source(scope.sources[parts[0]], parts[1:], parts)
        candidates = [s for s in scope.sources.values() if self._has(s, parts[0])]
        if candidates:
            return self._from_source(candidates[0], parts, parts)
        if len(parts) == 1 and parts[0] in scope.aliases:
            return scope.aliases[parts[0]]
        return None

    @staticmethod
    def _has(source: Source, name: str) -> bool:
        if source.table is None:
            return name in source.columns
        return name in source.fields() or (source.table == "events" and name == "person")

    def _from_source(self, source: Source, rest: list[str], full: list[str]) -> E:
        name = rest[0]
        if source.table is None:
            if name not in source.columns:
                raise HogQLQueryError(f"Unable to resolve field: {name}")
            column = source.columns[name]
            value = E(f"{source.name}.{column.sql}", column.type, column.nullable)
            if len(rest) > 1:
                if value.type != "JSON":
                    raise HogQLQueryError(f"Unable to resolve field: {'.'.join(full)}")
                return self.json_path(value.sql, rest[1:])
            return value
        if source.table == "events" and name == "person":
            if len(rest) < 2:
                raise HogQLQueryError("Can't select a table when a column is expected: person")
            if source.person_join is None:
                source.person_join = self.fresh("p")
            person = Source(source.person_join, "person")
            if rest[1] not in PERSON_FIELDS:
                raise HogQLQueryError(f"Field not found: {rest[1]}")
            value = self._field(person, rest[1])
            if rest[1] == "properties" and len(rest) > 2:
                return self.json_path(value.sql, rest[2:])
            if len(rest) > 2:
                raise HogQLQueryError(f"Unable to resolve field: {'.'.join(full)}")
            return value
        if name not in source.fields():
            raise HogQLQueryError(f"Unable to resolve field: {name}")
        value = self._field(source, name)
        if len(rest) > 1:
            if value.type != "JSON":
                raise HogQLQueryError(f"Unable to resolve field: {'.'.join(full)}")
            return self.json_path(value.sql, rest[1:])
        return value

    @staticmethod
    def _field(source: Source, name: str) -> E:
        sql, type_, nullable = source.fields()[name]
        return E(sql.format(t=source.name), type_, nullable)

    def json_path(self, json_sql: str, path: list[str]) -> E:
        """A property as HogQL reads it: the value's text, NULL when missing or JSON null."""
        if len(path) == 1:
            return E(f"({json_sql} ->> {self.param(path[0])})", "String", True)
        elements = ", ".join(self.param(part) for part in path)
        return E(f"({json_sql} #>> ARRAY[{elements}])", "String", True)

    def _placeholder(self, index: int, scope: Scope) -> E:
        name = self.placeholders[index]
        if name == "filters":
            scope.uses_filters = True
            events = [s for s in scope.sources.values() if s.table == "events"]
            if self.filters is not None and events:
                events[0].filters = self.filters(self, events[0].name)
            return E("true", "Bool", False)
        if name in self.values:
            return constant(self, self.values[name])
        if name.startswith("variables."):
            raise HogQLQueryError(f"Unresolved placeholder: {{{name}}}")
        available = ", ".join(sorted(self.values)) or "filters"
        raise HogQLQueryError(
            f"Placeholder {{{name}}} is not available in this context. You can use the following: {available}"
        )


class _OrderedColumns(dict[str, E]):
    """Output columns by name (the first of equal names), with every output in order in `outputs`."""

    def __init__(self, columns: dict[str, E], outputs: list[tuple[str, E]]) -> None:
        super().__init__(columns)
        self.outputs = outputs


def _branches(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Union):
        return [*_branches(node.this), *_branches(node.expression)]
    return [node]


def _direction(ordered: exp.Expression) -> str:
    if not isinstance(ordered, exp.Ordered):
        return ""
    text = " DESC" if ordered.args.get("desc") else " ASC"
    nulls_first = ordered.args.get("nulls_first")
    if nulls_first is True:
        text += " NULLS FIRST"
    elif nulls_first is False and ordered.args.get("desc"):
        text += " NULLS LAST"
    return text


def _chain(node: exp.Expression) -> list[str] | None:
    """A Column/Dot/Bracket chain with constant keys as its parts; None for anything else."""
    if isinstance(node, exp.Column):
        if isinstance(node.this, exp.Star):
            return None
        return [
            p.name for p in (node.args.get("catalog"), node.args.get("db"), node.args.get("table")) if p
        ] + [node.name]
    if isinstance(node, exp.Dot):
        head = _chain(node.this)
        if head is None or not isinstance(node.expression, exp.Identifier):
            return None
        return [*head, node.expression.name]
    if isinstance(node, exp.Bracket):
        head = _chain(node.this)
        keys = node.expressions
        if head is None or len(keys) != 1 or not isinstance(keys[0], exp.Literal) or not keys[0].is_string:
            return None
        return [*head, keys[0].this]
    return None


def _column_name(node: exp.Expression) -> str:
    """The output name PostHog gives an unaliased expression."""
    parts = _chain(node)
    if parts is not None:
        if parts[0].startswith(PLACEHOLDER_PREFIX):
            return node.sql(dialect=HogQL)
        if "properties" in parts:
            return "__".join(parts[parts.index("properties") + 1 :]) or "properties"
        return parts[-1]
    return node.sql(dialect=HogQL)


def constant(compiler: Compiler, value: Any) -> E:
    if value is None:
        return E("NULL", "Null", True)
    if isinstance(value, bool):
        return E(f"({compiler.param(value)})", "Bool", False)
    if isinstance(value, int):
        return E(compiler.param(value), "Int", False)
    if isinstance(value, float):
        return E(compiler.param(value), "Float", False)
    if isinstance(value, str):
        return E(compiler.param(value), "String", False)
    if isinstance(value, list):
        items = [constant(compiler, item) for item in value]
        return E("ARRAY[" + ", ".join(i.sql for i in items) + "]", "Array", False)
    raise HogQLQueryError(f"Unsupported constant {value!r}")


# --- node handlers ---


def _literal(c: Compiler, node: exp.Literal, scope: Scope) -> E:
    if node.is_string:
        return constant(c, node.this)
    text = node.this
    try:
        return constant(c, int(text))
    except ValueError:
        pass
    try:
        return constant(c, float(text))
    except ValueError:
        raise HogQLQueryError(f"Invalid number {text}") from None


def _column(c: Compiler, node: exp.Expression, scope: Scope) -> E:
    parts = _chain(node)
    if parts is None:
        if isinstance(node, exp.Bracket):
            return _index(c, node, scope)
        if isinstance(node, exp.Dot):
            raise HogQLQueryError(f"Unsupported syntax: {node.sql(dialect=HogQL)}")
        raise HogQLQueryError("Unsupported syntax: *")
    return c.resolve(parts, scope)


def _index(c: Compiler, node: exp.Bracket, scope: Scope) -> E:
    """`arr[i]` (1-based; sqlglot's ClickHouse reader already made it 0-based) and `json_text['key']`."""
    base = c.expr(node.this, scope)
    if len(node.expressions) != 1:
        raise HogQLQueryError("Unsupported syntax: an index takes one value")
    key = node.expressions[0]
    if isinstance(key, exp.Literal) and not key.is_string:
        position = int(key.this) + 1  # undo the reader's offset
        if position == 0:
            raise HogQLQueryError("SQL indexes start from one, not from zero. E.g: array[1]")
        if base.type == "Array":
            return E(f"({base.sql})[{c.param(position)}::int]", "String", True)
        return E(f"(({base.sql})::jsonb ->> {c.param(position - 1)}::int)", "String", True)
    key_value = c.expr(key, scope)
    return E(f"(({base.sql})::jsonb ->> {key_value.as_text()})", "String", True)


def _star(c: Compiler, node: exp.Star, scope: Scope) -> E:
    return E("*", "Star", False)


def _paren(c: Compiler, node: exp.Paren, scope: Scope) -> E:
    inner = c.expr(node.this, scope)
    return E(f"({inner.sql})", inner.type, inner.nullable)


def _neg(c: Compiler, node: exp.Neg, scope: Scope) -> E:
    inner = c.expr(node.this, scope).as_value()
    return E(f"(-{inner.sql})", inner.type, inner.nullable)


def _not(c: Compiler, node: exp.Not, scope: Scope) -> E:
    inner = node.this
    # `a NOT LIKE p`, `a NOT ~ p`, `a NOT IN (…)`: true when `a` is NULL (§3.5).
    if isinstance(inner, (exp.Like, exp.ILike, exp.RegexpLike, exp.RegexpILike, exp.In)):
        positive = _compare_raw(c, inner, scope)
        if positive.nullable:
            return E(f"COALESCE(NOT {positive.sql}, true)", "Bool", False)
        return E(f"(NOT {positive.sql})", "Bool", False)
    if isinstance(inner, exp.Is):
        return E(f"(NOT {c.expr(inner, scope).sql})", "Bool", False)
    value = c.expr(inner, scope)
    return E(f"(NOT {value.as_bool()})", "Bool", value.nullable)


def _logic(c: Compiler, node: exp.Connector, scope: Scope) -> E:
    operator = "AND" if isinstance(node, exp.And) else "OR"
    left = c.expr(node.this, scope)
    right = c.expr(node.expression, scope)
    return E(f"({left.as_bool()} {operator} {right.as_bool()})", "Bool", left.nullable or right.nullable)


_COMPARE_OPS: dict[type, str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}


def coerce_pair(c: Compiler, left: E, right: E) -> tuple[E, E]:
    """Make two sides comparable as HogQL does: a string against a time is a time in the team's timezone, a
    string against a number is a number (NULL when it is not one)."""
    left, right = left.as_value(), right.as_value()
    for a, b, swap in ((left, right, False), (right, left, True)):
        if a.type in ("DateTime", "DateTimeS") and is_text(b):
            b = functions.to_datetime(c, b)
        elif a.type == "Date" and is_text(b):
            b = functions.to_date(c, b)
        elif is_number(a) and is_text(b):
            b = functions.to_float(b)
        elif a.type == "UUID" and is_text(b):
            a = E(f"({a.sql})::text", "String", a.nullable)
        elif a.type == "JSON" and b.type != "JSON":
            a = E(f"({a.sql})::text", "String", a.nullable)
        else:
            continue
        return (b, a) if swap else (a, b)
    return left, right


def _compare(c: Compiler, node: exp.Binary, scope: Scope) -> E:
    op = _COMPARE_OPS[type(node)]
    left_node, right_node = node.this, node.expression
    if isinstance(right_node, exp.Null) or isinstance(left_node, exp.Null):
        other = c.expr(left_node if isinstance(right_node, exp.Null) else right_node, scope)
        if op == "=":
            return E(f"({other.sql} IS NULL)", "Bool", False)
        if op == "<>":
            return E(f"({other.sql} IS NOT NULL)", "Bool", False)
        return E("false", "Bool", False)
    left, right = coerce_pair(c, c.expr(left_node, scope), c.expr(right_node, scope))
    if op == "=" and left.nullable and right.nullable:
        return E(f"({left.sql} IS NOT DISTINCT FROM {right.sql})", "Bool", False)
    if op == "<>" and (left.nullable or right.nullable):
        return E(f"({left.sql} IS DISTINCT FROM {right.sql})", "Bool", False)
    sql = f"({left.sql} {op} {right.sql})"
    if left.nullable or right.nullable:
        return E(f"COALESCE({sql}, false)", "Bool", False)
    return E(sql, "Bool", False)


def _compare_raw(c: Compiler, node: exp.Expression, scope: Scope) -> E:
    """A LIKE / regex / IN test without NULL handling: nullable when its subject is."""
    if isinstance(node, exp.In):
        subject = c.expr(node.this, scope).as_value()
        query = node.args.get("query")
        if query is not None:
            sql, columns = c.statement(query.this if isinstance(query, exp.Subquery) else query, scope)
            if len(columns) != 1:
                raise HogQLQueryError("IN (SELECT …) must select one column")
            return E(f"({subject.sql} IN ({sql}))", "Bool", True)
        items = [coerce_pair(c, subject, c.expr(item, scope)) for item in node.expressions]
        if not items:
            return E("false", "Bool", False)
        subject = items[0][0]
        return E(f"({subject.sql} IN ({', '.join(b.sql for _, b in items)}))", "Bool", subject.nullable)
    subject = c.expr(node.this, scope).as_value()
    pattern = c.expr(node.expression, scope).as_value()
    operators: dict[type, str] = {
        exp.Like: "LIKE",
        exp.ILike: "ILIKE",
        exp.RegexpLike: "~",
        exp.RegexpILike: "~*",
    }
    op = operators[type(node)]
    return E(f"({subject.as_text()} {op} {pattern.as_text()})", "Bool", subject.nullable or pattern.nullable)


def _match(c: Compiler, node: exp.Expression, scope: Scope) -> E:
    raw = _compare_raw(c, node, scope)
    if raw.nullable:
        return E(f"COALESCE({raw.sql}, false)", "Bool", False)
    return raw


def _between(c: Compiler, node: exp.Between, scope: Scope) -> E:
    subject = c.expr(node.this, scope)
    low, high = c.expr(node.args["low"], scope), c.expr(node.args["high"], scope)
    subject, low = coerce_pair(c, subject, low)
    subject, high = coerce_pair(c, subject, high)
    sql = f"({subject.sql} BETWEEN {low.sql} AND {high.sql})"
    if subject.nullable or low.nullable or high.nullable:
        return E(f"COALESCE({sql}, false)", "Bool", False)
    return E(sql, "Bool", False)


def _is(c: Compiler, node: exp.Is, scope: Scope) -> E:
    if not isinstance(node.expression, exp.Null):
        raise HogQLQueryError("IS takes NULL: IS NULL, IS NOT NULL")
    return E(f"({c.expr(node.this, scope).sql} IS NULL)", "Bool", False)


def _arith(c: Compiler, node: exp.Binary, scope: Scope) -> E:
    left, right = c.expr(node.this, scope).as_value(), c.expr(node.expression, scope).as_value()
    nullable = left.nullable or right.nullable
    if isinstance(node, exp.Div):
        return E(f"(({left.sql})::float8 / NULLIF(({right.sql})::float8, 0))", "Float", True)
    if isinstance(node, exp.Mod):
        return E(f"({left.sql} % NULLIF({right.sql}, 0))", left.type, True)
    op = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*"}[type(node)]
    if left.type == "Date" and right.type == "Interval" and op in "+-":
        return E(f"(({left.sql}) {op} {right.sql})::date", "Date", nullable)
    if left.type in ("DateTime", "DateTimeS") and right.type == "Interval":
        return E(f"({left.sql} {op} {right.sql})", "DateTime", nullable)
    if op == "-" and left.type in ("DateTime", "DateTimeS") and right.type in ("DateTime", "DateTimeS"):
        return E(f"(extract(epoch from {left.sql}) - extract(epoch from {right.sql}))", "Float", nullable)
    if is_text(left) and not is_text(right):
        left = functions.to_float(left)
    if is_text(right) and not is_text(left):
        right = functions.to_float(right)
    result = "Float" if "Float" in (left.type, right.type) else left.type
    return E(f"({left.sql} {op} {right.sql})", result, nullable or left.nullable or right.nullable)


def _dpipe(c: Compiler, node: exp.DPipe, scope: Scope) -> E:
    left, right = c.expr(node.this, scope), c.expr(node.expression, scope)
    return E(f"concat({left.as_text()}, {right.as_text()})", "String", False)


def _case(c: Compiler, node: exp.Case, scope: Scope) -> E:
    subject = c.expr(node.this, scope) if node.this is not None else None
    conditions = []
    values: list[E] = []
    for branch in node.args.get("ifs") or []:
        if subject is not None:
            left, right = coerce_pair(c, subject, c.expr(branch.this, scope))
            conditions.append(f"({left.sql} = {right.sql})")
        else:
            conditions.append(c.expr(branch.this, scope).as_bool())
        values.append(c.expr(branch.args["true"], scope).as_value())
    default = node.args.get("default")
    default_value = c.expr(default, scope).as_value() if default is not None else None
    return functions.case(conditions, values, default_value)


def _if(c: Compiler, node: exp.If, scope: Scope) -> E:
    condition = c.expr(node.this, scope).as_bool()
    then = c.expr(node.args["true"], scope).as_value()
    otherwise_node = node.args.get("false")
    otherwise = c.expr(otherwise_node, scope).as_value() if otherwise_node is not None else None
    return functions.case([condition], [then], otherwise)


def _coalesce(c: Compiler, node: exp.Coalesce, scope: Scope) -> E:
    args = [c.expr(node.this, scope), *(c.expr(e, scope) for e in node.expressions)]
    return functions.call(c, "coalesce", args, scope, node)


def _cast(c: Compiler, node: exp.Cast, scope: Scope) -> E:
    return functions.cast(c, c.expr(node.this, scope), node.args["to"])


def _function(c: Compiler, node: exp.Expression, scope: Scope) -> E:
    if isinstance(node, exp.Quantile):
        return functions.quantile(c, node, scope)
    name = node.name if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc, exp.CombinedAggFunc)) else ""
    if not name:
        raise HogQLQueryError(f"Unsupported function call '{node.key}(...)'")
    args = [
        c.expr(arg.expressions[0] if isinstance(arg, exp.Distinct) else arg, scope)
        for arg in node.expressions
    ]
    return functions.call(c, name, args, scope, node)


def _trim(c: Compiler, node: exp.Trim, scope: Scope) -> E:
    if node.args.get("expression") is not None or node.args.get("position"):
        raise HogQLQueryError("Only trim(s) is supported")
    value = c.expr(node.this, scope)
    return E(f"btrim({value.as_text()})", "String", value.nullable)


def _substring(c: Compiler, node: exp.Substring, scope: Scope) -> E:
    args = [c.expr(node.this, scope), c.expr(node.args["start"], scope)]
    if node.args.get("length") is not None:
        args.append(c.expr(node.args["length"], scope))
    return functions.call(c, "substring", args, scope, node)


def _interval(c: Compiler, node: exp.Interval, scope: Scope) -> E:
    unit = node.args.get("unit")
    value = node.this
    if unit is None and isinstance(value, exp.Literal) and value.is_string:
        count, _, unit_text = value.this.partition(" ")
        return functions.interval(c, constant(c, int(count)), unit_text)
    if unit is None:
        raise HogQLQueryError("INTERVAL needs a unit: INTERVAL 7 DAY")
    amount = value
    if isinstance(amount, exp.Literal) and amount.is_string:
        try:
            number = constant(c, int(amount.this))
        except ValueError:
            raise HogQLQueryError("INTERVAL takes a whole number") from None
    else:
        number = c.expr(amount, scope)
    return functions.interval(c, number, unit.name)


def _array(c: Compiler, node: exp.Array, scope: Scope) -> E:
    items = [c.expr(e, scope).as_value() for e in node.expressions]
    if not items:
        return E("ARRAY[]::text[]", "Array", False)
    return E("ARRAY[" + ", ".join(i.as_text() for i in items) + "]", "Array", False)


def _tuple(c: Compiler, node: exp.Tuple, scope: Scope) -> E:
    items = [c.expr(e, scope).as_value() for e in node.expressions]
    return E("ROW(" + ", ".join(i.sql for i in items) + ")", "Tuple", False)


def _subquery(c: Compiler, node: exp.Subquery, scope: Scope) -> E:
    sql, columns = c.statement(node.this, scope)
    if len(columns) != 1:
        raise HogQLQueryError("A subquery used as a value must select one column")
    column = next(iter(columns.values()))
    return E(f"({sql})", column.type, True)


def _exists(c: Compiler, node: exp.Exists, scope: Scope) -> E:
    sql, _ = c.statement(node.this.this if isinstance(node.this, exp.Subquery) else node.this, scope)
    return E(f"EXISTS ({sql})", "Bool", False)


def _boolean(c: Compiler, node: exp.Boolean, scope: Scope) -> E:
    return E("true" if node.this else "false", "Bool", False)


def _null(c: Compiler, node: exp.Null, scope: Scope) -> E:
    return E("NULL", "Null", True)


def _alias(c: Compiler, node: exp.Alias, scope: Scope) -> E:
    value = c.expr(node.this, scope)
    scope.aliases[node.alias] = value
    return value


_HANDLERS: dict[type, Callable[[Compiler, Any, Scope], E]] = {
    exp.Literal: _literal,
    exp.Column: _column,
    exp.Dot: _column,
    exp.Bracket: _column,
    exp.Star: _star,
    exp.Paren: _paren,
    exp.Neg: _neg,
    exp.Not: _not,
    exp.And: _logic,
    exp.Or: _logic,
    exp.EQ: _compare,
    exp.NEQ: _compare,
    exp.GT: _compare,
    exp.GTE: _compare,
    exp.LT: _compare,
    exp.LTE: _compare,
    exp.Like: _match,
    exp.ILike: _match,
    exp.RegexpLike: _match,
    exp.RegexpILike: _match,
    exp.In: _match,
    exp.Between: _between,
    exp.Is: _is,
    exp.Add: _arith,
    exp.Sub: _arith,
    exp.Mul: _arith,
    exp.Div: _arith,
    exp.Mod: _arith,
    exp.DPipe: _dpipe,
    exp.Case: _case,
    exp.If: _if,
    exp.Coalesce: _coalesce,
    exp.Cast: _cast,
    exp.Anonymous: _function,
    exp.AnonymousAggFunc: _function,
    exp.CombinedAggFunc: _function,
    exp.Quantile: _function,
    exp.Trim: _trim,
    exp.Substring: _substring,
    exp.Interval: _interval,
    exp.Array: _array,
    exp.Tuple: _tuple,
    exp.Subquery: _subquery,
    exp.Exists: _exists,
    exp.Boolean: _boolean,
    exp.Null: _null,
    exp.Alias: _alias,
}
