"""What changed between two states of a dashboard's tiles: the comparison behind `analyze_refresh_result`.

Pure functions, no database. A state maps tile ids to `{"insight_name": str, "data": <the tile's result>}`.
Each result is reduced to its headline numbers, one per series (`headlines`):

- trends and stickiness: each series' total (`aggregated_value` for total-value displays, else `count`, which
  is the sum of `data`, or its last value for a cumulative display; the sum of `data` when `count` is absent),
  labelled with the series' label (a breakdown's value for a breakdown series);
- lifecycle: each status' total (dormant is negative), labelled `"<event> - <status>"`;
- funnels: the overall conversion, last step over first step in %, one per breakdown value; a conversion
  trend (`funnelVizType: "trends"`): the mean of its rates; time to convert: the average time in seconds;
- retention: the period-1 rate in % (returning in period 1 / the cohort's size), the simple mean over the
  cohorts of someone whose period 1 lies inside the range (all but the last cohort), as PostHog's default
  "mean" row; one per breakdown value.

Results of any other shape (SQL tables, paths) have no headline numbers: such a tile is only ever reported
as new or removed. Values are rounded to 2 decimals; a series counts as changed when its rounded value does.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

NO_CHANGES = "No significant changes detected in the dashboard data."
MAX_BULLETS = 5
OTHER = "$$_posthog_breakdown_other_$$"

Number = int | float


@dataclass(frozen=True)
class Headline:
    """One headline number of a result: `unit` is "" (a count or a sum), "%" (a rate) or "s" (seconds)."""

    label: str
    value: Number
    unit: str = ""


@dataclass(frozen=True)
class SeriesChange:
    label: str
    before: Number | None
    after: Number | None
    delta: Number | None
    pct_change: Number | None
    unit: str = ""


@dataclass(frozen=True)
class TileChange:
    tile_id: int
    insight_name: str
    kind: Literal["changed", "new", "removed"]
    series: list[SeriesChange] = field(default_factory=list)


# --- numbers ------------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def rounded(value: float) -> Number:
    """2 decimals; a whole number as an int (`120.0` → `120`)."""
    value = round(value, 2) + 0.0  # + 0.0: no "-0"
    return int(value) if value.is_integer() else value


def _total(values: Any) -> float:
    return sum(n for n in (_number(v) for v in values) if n is not None) if isinstance(values, list) else 0.0


# --- headline numbers per result shape ----------------------------------------------------------------------


def _breakdown_label(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_breakdown_label(v) for v in value) or "(empty)"
    if value is None:
        return "(none)"
    if value == OTHER:
        return "Other"
    return str(value) if value != "" else "(empty)"


def _conversion(steps: list[Any]) -> float | None:
    counts = [_number(s.get("count")) if isinstance(s, dict) else None for s in steps]
    if len(counts) < 2 or counts[0] is None or counts[-1] is None or counts[0] <= 0:
        return None
    return counts[-1] / counts[0] * 100


def _funnel_steps(results: list[Any]) -> list[Headline]:
    if all(isinstance(item, list) for item in results):  # one list of steps per breakdown value
        found = []
        for steps in results:
            rate = _conversion(steps)
            if rate is not None and steps and isinstance(steps[0], dict):
                found.append(Headline(_breakdown_label(steps[0].get("breakdown_value")), rate, "%"))
        return found
    rate = _conversion(results)
    return [] if rate is None else [Headline("Overall conversion", rate, "%")]


def _retention(rows: list[dict[str, Any]]) -> list[Headline]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(repr(row.get("breakdown_value")), []).append(row)
    found = []
    for group in groups.values():
        rates, period = [], "Period 1"
        # A cohort's period 1 is inside the range when a later cohort starts there: the last has none yet.
        dates = [str(row["date"]) for row in group if row.get("date") is not None]
        last = max(dates) if len(dates) == len(group) else None
        for row in group:
            if last is not None and str(row["date"]) >= last:
                continue
            values = row.get("values")
            if not isinstance(values, list) or len(values) < 2:
                continue
            cells = [v if isinstance(v, dict) else {"count": v} for v in values[:2]]
            size, returned = _number(cells[0].get("count")), _number(cells[1].get("count"))
            if size is None or returned is None or size <= 0:
                continue
            rates.append(returned / size * 100)
            period = str(cells[1].get("label") or period)
        if rates:
            label = f"{period} retention"
            breakdown = group[0].get("breakdown_value")
            if breakdown is not None:
                label = f"{label} ({_breakdown_label(breakdown)})"
            found.append(Headline(label, sum(rates) / len(rates), "%"))
    return found


def _series(results: list[dict[str, Any]]) -> list[Headline]:
    found = []
    for i, series in enumerate(results):
        data = series.get("data")
        if "label" not in series and "action" not in series:
            # A funnel's conversion trend: rates in % per period, labelled by breakdown only.
            rates = [n for n in (_number(v) for v in data or []) if n is not None]
            if not rates:
                continue
            label = "Conversion rate"
            if "breakdown_value" in series:
                label = f"{label} ({_breakdown_label(series['breakdown_value'])})"
            found.append(Headline(label, sum(rates) / len(rates), "%"))
            continue
        value = _number(series.get("aggregated_value"))
        if value is None:
            value = _number(series.get("count"))
        if value is None:
            value = _total(data)
        raw = series.get("label")
        if raw is None:
            action = series.get("action")
            raw = action.get("name") if isinstance(action, dict) else None
        label = _breakdown_label(raw) if raw is not None else f"Series {i + 1}"
        if series.get("compare_label") == "previous":
            label = f"{label} (previous)"
        found.append(Headline(label, value))
    return found


def _headlines(result: Any) -> list[Headline]:
    if isinstance(result, dict):
        seconds = _number(result.get("average_conversion_time"))
        return [Headline("Average conversion time", seconds, "s")] if seconds is not None else []
    if not isinstance(result, list) or not result:
        return []
    if all(isinstance(item, list) for item in result):
        return _funnel_steps(result)
    if not all(isinstance(item, dict) for item in result):
        return []
    first = result[0]
    if isinstance(first.get("values"), list):
        return _retention(result)
    if "data" in first:
        return _series(result)
    if "count" in first and "order" in first:
        return _funnel_steps(result)
    return []


def headlines(result: Any) -> list[Headline]:
    """The headline numbers of one tile's result (see the module's docstring), rounded, labels made unique
    (a repeated label gets " (2)", " (3)", ...)."""
    seen: dict[str, int] = {}
    unique = []
    for h in _headlines(result):
        seen[h.label] = seen.get(h.label, 0) + 1
        label = h.label if seen[h.label] == 1 else f"{h.label} ({seen[h.label]})"
        unique.append(Headline(label, rounded(h.value), h.unit))
    return unique


# --- comparing two states ---------------------------------------------------------------------------------


def _change(label: str, unit: str, before: Number | None, after: Number | None) -> SeriesChange:
    if before is None or after is None:
        return SeriesChange(label, before, after, None, None, unit)
    delta = rounded(after - before)
    pct = rounded(delta / before * 100) if before != 0 else None
    return SeriesChange(label, before, after, delta, pct, unit)


def _name(state: Mapping[str, Any]) -> str:
    name = state.get("insight_name")
    return str(name) if name else "Untitled insight"


def compare(before: Mapping[str, Any], after: Iterable[tuple[str, Mapping[str, Any]]]) -> list[TileChange]:
    """The tiles that changed, in `after`'s order (the dashboard's), then those only in `before` (removed),
    by id. Only changed series are listed: a value that differs, or a series only on one side."""
    changes: list[TileChange] = []
    seen = set()
    for tile_id, now in after:
        seen.add(tile_id)
        now_series = headlines(now.get("data"))
        if tile_id not in before:
            series = [_change(h.label, h.unit, None, h.value) for h in now_series]
            changes.append(TileChange(int(tile_id), _name(now), "new", series))
            continue
        then = {h.label: h for h in headlines(before[tile_id].get("data"))}
        listed = []
        for h in now_series:
            old = then.pop(h.label, None)
            if old is None or old.value != h.value:
                listed.append(_change(h.label, h.unit, old.value if old else None, h.value))
        listed += [_change(h.label, h.unit, h.value, None) for h in then.values()]
        if listed:
            changes.append(TileChange(int(tile_id), _name(now), "changed", listed))
    for tile_id in sorted((t for t in before if t not in seen), key=int):
        series = [_change(h.label, h.unit, h.value, None) for h in headlines(before[tile_id].get("data"))]
        changes.append(TileChange(int(tile_id), _name(before[tile_id]), "removed", series))
    return changes


# --- the summary ------------------------------------------------------------------------------------------


def format_number(value: Number, unit: str = "") -> str:
    """`1234.5` → "1,234.5"; at most 2 decimals; with its unit ("40%", "95s")."""
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit}"


def _signed(value: Number, unit: str) -> str:
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    return f"{sign}{format_number(abs(value))}{' pp' if unit == '%' else unit}"


def _bullet(tile: TileChange, series: SeriesChange | None) -> str:
    if series is None:
        return f"- {tile.insight_name}: {tile.kind} tile"
    head = f"- {tile.insight_name} · {series.label}: "
    unit = series.unit
    if series.before is None and series.after is not None:
        return f"{head}new, {format_number(series.after, unit)}"
    if series.after is None and series.before is not None:
        return f"{head}removed, was {format_number(series.before, unit)}"
    assert series.before is not None and series.after is not None and series.delta is not None
    moved = f"{format_number(series.before, unit)} → {format_number(series.after, unit)}"
    detail = _signed(series.delta, unit)
    if series.pct_change is not None:
        detail += f", {series.pct_change:+.1f}%"
    return f"{head}{moved} ({detail})"


def summary(changes: list[TileChange]) -> str:
    """At most five bullets, the largest changes first: by absolute % change (a change from 0, or a series
    that appeared or went, counts as infinite), then absolute change, then the dashboard's order."""
    ranked: list[tuple[tuple[float, float, int, int], str]] = []
    for t, tile in enumerate(changes):
        if not tile.series:
            ranked.append(((-math.inf, 0.0, t, 0), _bullet(tile, None)))
        for s, series in enumerate(tile.series):
            pct = math.inf if series.pct_change is None else abs(series.pct_change)
            delta = abs(series.delta) if series.delta is not None else 0.0
            ranked.append(((-pct, -delta, t, s), _bullet(tile, series)))
    if not ranked:
        return NO_CHANGES
    ranked.sort(key=lambda item: item[0])
    return "\n".join(line for _, line in ranked[:MAX_BULLETS])
