"""Trends formulas (`trendsFilter.formulaNodes`, `formulas`, `formula`; capture-and-trends.md B.6).

A formula is arithmetic over the series, named A, B, C… in query order, as PostHog's `FormulaAST` reads it:
case-insensitive letters, numbers, `+ - * / % **`, unary minus and plus, and parentheses. It is parsed once
with Python's `ast` module in `eval` mode and every node checked against that allow-list (nothing is ever
evaluated as Python), then applied bucket by bucket to the series' shaped results: one result per formula,
per breakdown value, per compare period, as PostHog's `apply_formula`. Division (or `%`) by zero gives 0.
"""

import ast
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.query.base import InvalidQuery, Path
from app.query.schema import TrendsFilter, TrendsQuery
from app.query.trends_sql import NULL_LABEL, OTHER_LABEL

# Longer formulas, or deeper nesting, are no arithmetic between a handful of series.
MAX_FORMULA_LENGTH = 1000
MAX_FORMULA_DEPTH = 50

Evaluate = Callable[[Sequence[float]], float]

_BINARY: dict[type[ast.operator], Callable[[float, float], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_ARITHMETIC = "formulas only support arithmetic ( + - * / % ** ) between series"


@dataclass(frozen=True)
class Formula:
    text: str
    custom_name: str | None
    evaluate: Evaluate

    @property
    def label(self) -> str:
        return self.custom_name or f"Formula ({self.text})"


def formula_nodes(trends_filter: TrendsFilter | None) -> list[tuple[str, str | None, Path]]:
    """The formulas a query asks for, each with its custom name and its path: `formulaNodes`, or else the
    legacy `formulas`, or else the legacy `formula` (PostHog reads them in that order)."""
    if trends_filter is None:
        return []
    if trends_filter.formulaNodes:
        return [
            (node.formula, node.custom_name, ("trendsFilter", "formulaNodes", index, "formula"))
            for index, node in enumerate(trends_filter.formulaNodes)
        ]
    if trends_filter.formulas:
        return [
            (text, None, ("trendsFilter", "formulas", index))
            for index, text in enumerate(trends_filter.formulas)
        ]
    if trends_filter.formula:
        return [(trends_filter.formula, None, ("trendsFilter", "formula"))]
    return []


def parse_formulas(trends_filter: TrendsFilter | None, series_count: int) -> list[Formula]:
    """Every formula of the query, parsed; raise `InvalidQuery` naming the first one that is not valid."""
    return [
        Formula(text, custom_name, parse_formula(text, series_count, path))
        for text, custom_name, path in formula_nodes(trends_filter)
    ]


def check_formulas(query: TrendsQuery) -> None:
    """Refuse a formula that is not valid for the query's series (`InvalidQuery` naming it)."""
    parse_formulas(query.trendsFilter, len(query.series))


def parse_formula(text: str, series_count: int, path: Path = ()) -> Evaluate:
    """`text` as a function of one bucket's series values; raise `InvalidQuery` naming the formula."""

    def refuse(why: str) -> InvalidQuery:
        return InvalidQuery(f"Formula '{text}' {why}", path=path)

    if not text.strip():
        raise refuse("is empty")
    if len(text) > MAX_FORMULA_LENGTH:
        raise refuse(f"is longer than {MAX_FORMULA_LENGTH} characters")
    try:
        tree = ast.parse(text.strip().lower(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else "cannot be parsed"
        raise refuse(f"is not valid: {detail}") from None
    letters = [chr(ord("a") + index) for index in range(min(series_count, 26))]

    def compile_node(node: ast.AST, depth: int) -> Evaluate:
        if depth > MAX_FORMULA_DEPTH:
            raise refuse(f"is nested more than {MAX_FORMULA_DEPTH} levels deep")
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise refuse(f"is not supported: {_ARITHMETIC}, not {type(node.op).__name__}")
            left, right = compile_node(node.left, depth + 1), compile_node(node.right, depth + 1)
            return lambda values: _apply(op, left(values), right(values), refuse)
        if isinstance(node, ast.UnaryOp):
            operand = compile_node(node.operand, depth + 1)
            if isinstance(node.op, ast.USub):
                return lambda values: -operand(values)
            if isinstance(node.op, ast.UAdd):
                return operand
            raise refuse(f"is not supported: {_ARITHMETIC}, not {type(node.op).__name__}")
        number = isinstance(node, ast.Constant) and not isinstance(node.value, bool)
        if number and isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            constant = float(node.value)
            if not math.isfinite(constant):
                raise refuse("has a number out of range")
            return lambda values: constant
        if isinstance(node, ast.Name):
            if node.id not in letters:
                series = "series is" if len(letters) == 1 else "series are"
                defined = ", ".join(letter.upper() for letter in letters) or "none"
                count = f"{len(letters)} {series} defined ({defined})"
                raise refuse(f"references series {node.id.upper()}, but only {count}")
            index = letters.index(node.id)
            return lambda values: values[index]
        if isinstance(node, ast.Call):
            called = f"{node.func.id.upper()}()" if isinstance(node.func, ast.Name) else "function calls"
            raise refuse(f"is not supported: {_ARITHMETIC} (like (A + B) / 2), not {called}")
        raise refuse(f"is not supported: {_ARITHMETIC}, not {type(node).__name__}")

    return compile_node(tree.body, 0)


def _apply(op: Callable[[float, float], Any], left: float, right: float, refuse: Any) -> float:
    try:
        value = op(left, right)
    except ZeroDivisionError:
        return 0.0  # as PostHog: a bucket divided by zero shows 0
    except OverflowError:
        raise refuse("gives a number out of range") from None
    if not isinstance(value, float | int) or not math.isfinite(value):
        # inf, nan, or a complex number (a negative number to a fractional power)
        raise refuse("gives a number out of range")
    return float(value)


# --- applying formulas to shaped series results ---

SeriesResults = list[list[dict[str, Any]]]  # per series (A, B, …), its results (one per breakdown value)


def apply_formula(formula: Formula, series: SeriesResults, *, total_value: bool) -> list[dict[str, Any]]:
    """The formula's results over one period: one per breakdown value present in any series (values missing
    from a series count as 0 there), each built on series A's result for that value (or the first series
    that has it) with `label` and `action` replaced, ordered as PostHog orders them."""
    keys: list[str | None] = []
    for results in series:
        for result in results:
            key = result.get("breakdown_value")
            if key not in keys:
                keys.append(key)
    out = [_formula_result(formula, series, key, total_value) for key in keys]
    if keys == [None]:
        return out
    # Normal values before the null value before "other"; then by value, count and data, descending.
    category = {NULL_LABEL: -1, OTHER_LABEL: -2}

    def order(result: dict[str, Any]) -> tuple[Any, ...]:
        value = result["aggregated_value"] if total_value else sum(result["data"])
        breakdown = result.get("breakdown_value")
        rank = category.get(str(breakdown), 0)
        return (rank, value, result["count"], result["data"] or [], repr(breakdown))

    return sorted(out, key=order, reverse=True)


def _formula_result(
    formula: Formula, series: SeriesResults, key: str | None, total_value: bool
) -> dict[str, Any]:
    matching = [next((r for r in results if r.get("breakdown_value") == key), None) for results in series]
    base = next(result for result in matching if result is not None)
    result = {**base, "label": formula.label, "action": None}
    if total_value:
        values = [[match["aggregated_value"] if match else 0] for match in matching]
        result.update(aggregated_value=_bucketwise(formula, values)[0], data=None, count=0)
    else:
        width = len(base["data"])
        values = [match["data"] if match else [0] * width for match in matching]
        data = _bucketwise(formula, values)
        result.update(data=data, count=float(sum(data)))
    return result


def _bucketwise(formula: Formula, values: list[list[Any]]) -> list[float]:
    return [formula.evaluate([float(value) for value in bucket]) for bucket in zip(*values, strict=True)]
