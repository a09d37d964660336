"""Event property filters and AND/OR groups as SQL conditions on `events.properties` (B.1 operators).

Every key, value and pattern is a bound parameter. A property is read as text (`properties ->> key`): JSON
strings as they are, numbers and booleans as their JSON text, JSON null and a missing key as NULL. As in
HogQL, a negative operator (`is_not`, `not_icontains`, `not_regex`) matches events without the property,
and a positive one does not.

A list of values is bound as one array (`= ANY(…)`, `~ ANY(…)`), not as one condition per value: the
statement, its bind parameters and the time to build and compile it stay the same for 2 values or 10,000.
Every filter binds at most FILTER_PARAMETERS parameters, which is what the parameter limit counts.
"""

from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Float,
    Text,
    and_,
    any_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from app.models import Event, Person
from app.query.base import QueryContext
from app.query.schema import (
    PropertyFilter,
    PropertyGroupFilter,
    PropertyNode,
    as_number,
    parse_property_nodes,
)

EVENTS = Event.__table__
PERSONS = Person.__table__
# Every statement over events reads them from this join, so that person properties (`type: "person"`
# filters, `breakdown_type: "person"`) are each event's distinct id's current properties. PostgreSQL removes
# the join from a statement that reads no person column (its key is unique), so it costs nothing there.
EVENTS_AND_PERSONS = EVENTS.outerjoin(
    PERSONS,
    and_(PERSONS.c.team_id == EVENTS.c.team_id, PERSONS.c.distinct_id == EVENTS.c.distinct_id),
)
# A number as PostHog's toFloat reads it from a string; the digit limits keep every match inside float8's
# range, so the cast that follows can never fail.
NUMERIC_PATTERN = r"^\s*[-+]?([0-9]{1,200}(\.[0-9]{0,200})?|\.[0-9]{1,200})([eE][-+]?[0-9]{1,2})?\s*$"


def property_text(key: str, kind: str | None = "event") -> ColumnElement[str]:
    """An event's property (`kind` "event" or None) or its person's (`kind` "person") as text. A person
    property needs the statement to read from `EVENTS_AND_PERSONS`."""
    properties = PERSONS.c.properties if kind == "person" else EVENTS.c.properties
    text: ColumnElement[str] = properties[key].astext
    return text


def as_float(text: ColumnElement[str]) -> ColumnElement[float]:
    """The property as a float8, or NULL when it is not a number (such events are left out of math)."""
    return case((text.regexp_match(literal(NUMERIC_PATTERN)), cast(text, Float)), else_=None)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# The key; the value or values; for numbers, the numeric pattern and the float value(s) (see `_equals`).
FILTER_PARAMETERS = 4


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(text: ColumnElement[str], values: list[Any]) -> ColumnElement[bool]:
    """`exact`: text equality with any value, and for numbers also numeric equality (10 matches 10.0)."""
    texts = list(dict.fromkeys(_scalar_text(value) for value in values))
    numbers = list(dict.fromkeys(float(value) for value in values if _is_number(value)))
    same_text = text == (literal(texts[0]) if len(texts) == 1 else any_(literal(texts, ARRAY(Text))))
    if not numbers:
        return same_text
    number = as_float(text)
    if len(numbers) == 1:
        same_number = number == literal(numbers[0], Float)
    else:
        same_number = number == any_(literal(numbers, ARRAY(Float)))
    # coalesce: a non-numeric property must not turn the whole condition NULL (and its negation too)
    return or_(same_text, func.coalesce(same_number, false()))


def _positive(text: ColumnElement[str], operator: str, values: list[Any]) -> ColumnElement[bool]:
    """Whether the property matches any of `values` under `exact`, `icontains` or `regex`."""
    if operator == "exact":
        return _equals(text, values)
    patterns = [_scalar_text(value) for value in values]
    if operator == "icontains":
        lowered = func.lower(text)
        if len(patterns) == 1:
            return func.strpos(lowered, func.lower(literal(patterns[0]))) > 0
        needle = func.unnest(literal(patterns, ARRAY(Text))).column_valued("needle")
        return exists(select(literal(1)).where(func.strpos(lowered, func.lower(needle)) > 0))
    if len(patterns) == 1:  # regex
        return text.regexp_match(literal(patterns[0]))
    return text.op("~")(any_(literal(patterns, ARRAY(Text))))


_NEGATED = {"is_not": "exact", "not_icontains": "icontains", "not_regex": "regex"}
_COMPARISONS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def property_condition(node: PropertyFilter) -> ColumnElement[bool]:
    key: str = node.key
    operator = node.operator or "exact"
    text = property_text(key, node.type)
    if operator == "is_set":
        return text.is_not(None)
    if operator == "is_not_set":
        return text.is_(None)
    if operator in _COMPARISONS:
        bound = literal(as_number(node.value, key), Float)
        condition: ColumnElement[bool] = getattr(as_float(text), _COMPARISONS[operator])(bound)
        return condition
    values = node.value if isinstance(node.value, list) else [node.value]
    if not values:
        # Nothing to match: a positive operator matches no event, a negative one every event.
        return true() if operator in _NEGATED else false()
    positive = _NEGATED.get(operator, operator)
    matches = _positive(text, positive, values)
    if operator in _NEGATED:
        # None of the values matches: missing properties included.
        return or_(text.is_(None), not_(matches))
    return matches


def node_condition(node: PropertyGroupFilter | PropertyFilter) -> ColumnElement[bool]:
    if isinstance(node, PropertyGroupFilter):
        children = [node_condition(child) for child in node.values]
        if not children:
            return true()
        return and_(*children) if node.type == "AND" else or_(*children)
    return property_condition(node)


def properties_condition(
    properties: list[PropertyNode] | PropertyGroupFilter | None,
) -> ColumnElement[bool]:
    """A filter list (ANDed) or a group, as one condition; `true` when there is nothing to filter."""
    if properties is None:
        return true()
    if isinstance(properties, PropertyGroupFilter):
        return node_condition(properties)
    return and_(true(), *(node_condition(node) for node in properties))


def global_condition(
    properties: list[PropertyNode] | PropertyGroupFilter | None,
    filter_test_accounts: bool | None,
    ctx: QueryContext,
) -> ColumnElement[bool]:
    """What every event a query reads must match: its `properties`, and with `filterTestAccounts` the team's
    test-account filters (ANDed)."""
    condition = properties_condition(properties)
    if filter_test_accounts and ctx.test_account_filters:
        nodes = parse_property_nodes(list(ctx.test_account_filters))
        condition = and_(condition, *(node_condition(node) for node in nodes))
    return condition
