"""Plain-text lines of a retention, lifecycle or stickiness result (`format=txt`): one readable line per
cohort row or series; of a SQL insight, its columns and rows as a table. Trends and other results are left
to their own rendering (None)."""

from typing import Any


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _retention_row(row: dict[str, Any]) -> str:
    values = [item.get("count", 0) if isinstance(item, dict) else item for item in row.get("values") or []]
    size = values[0] if values else 0
    cells = [str(size)] + [
        f"{value} ({value / size * 100:.0f}%)" if isinstance(value, int | float) and size else str(value)
        for value in values[1:]
    ]
    date = str(row.get("date") or "")[:10]
    line = f"{row.get('label', '')} ({date}): {', '.join(cells)}"
    breakdown = row.get("breakdown_value")
    if breakdown is not None:
        shown = "Other" if breakdown == "$$_posthog_breakdown_other_$$" else breakdown or "(empty)"
        line = f"{shown}: {line}"
    return line


def _lifecycle_series(series: dict[str, Any]) -> str:
    data = series.get("data") or []
    labels = series.get("labels") or []
    latest = f", {_number(data[-1])} in {labels[-1]}" if data and labels else ""
    return f"{series.get('label', '')}: {_number(series.get('count', 0))} in total{latest}"


def _stickiness_series(series: dict[str, Any]) -> str:
    label = str(series.get("label", ""))
    if series.get("compare_label"):
        label = f"{label} ({series['compare_label']})"
    pairs = [
        f"{name} {value}"
        for name, value in zip(series.get("labels") or [], series.get("data") or [], strict=False)
    ]
    return f"{label}: {series.get('count', 0)} actors; {', '.join(pairs)}"


def result_lines(result: Any) -> list[str] | None:
    """The lines of a retention, lifecycle or stickiness result, None for any other result."""
    if not isinstance(result, list) or not result or not all(isinstance(item, dict) for item in result):
        return None
    first = result[0]
    if "values" in first and "date" in first:
        return [_retention_row(row) for row in result]
    if "status" in first and "data" in first:
        return [_lifecycle_series(series) for series in result]
    days = first.get("days")
    if isinstance(days, list) and days and all(isinstance(day, int) for day in days):
        return [_stickiness_series(series) for series in result]
    return None


TABLE_ROWS = 20


def table_lines(columns: list[Any], rows: Any) -> list[str]:
    """A SQL insight's result: a header of its columns, then its first rows, values separated by ` | `."""
    shown = rows[:TABLE_ROWS] if isinstance(rows, list) else []
    lines = [" | ".join(str(name) for name in columns)]
    lines += [
        " | ".join("null" if v is None else _number(v) for v in row) for row in shown if isinstance(row, list)
    ]
    if isinstance(rows, list) and len(rows) > TABLE_ROWS:
        lines.append(f"… {len(rows) - TABLE_ROWS} more rows")
    return lines
