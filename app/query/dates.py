"""Date ranges as PostHog resolves them (capture-and-trends.md B.2/B.3): parsing, buckets, labels.

Everything happens in the team timezone. Bucket starts are naive local datetimes: that is what
`date_trunc(unit, timestamp AT TIME ZONE tz)` returns in SQL, so rows and buckets match without conversion.
Date arithmetic on aware datetimes is wall-clock arithmetic (Python's rule for one tzinfo), as in PostHog.
"""

import calendar
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from app.query.base import InvalidQuery

_RELATIVE = re.compile(r"-?(?P<number>\d+)?(?P<kind>[hdwmqyMs])(?P<position>Start|End)?")
DEFAULT_DAYS = 7
EARLIEST_FALLBACK = datetime(2015, 1, 1, tzinfo=UTC)
# More buckets than this is a mistake (hourly for years), not a chart; refuse it instead of timing out.
MAX_BUCKETS = 20_000
EN_DASH = "\u2013"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ParsedDate:
    value: datetime
    relative: bool
    hours: bool  # a relative string with an `h` component: truncated to the hour, not the day


def _add_months(value: datetime, months: int, day: int | None = None) -> datetime:
    """`relativedelta(months=…, day=…)`: move by calendar months, then clamp the day to the month's end."""
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return value.replace(year=year, month=month + 1, day=min(day or value.day, last))


def parse_date(text: str, tz: ZoneInfo, now: datetime, *, truncate: bool) -> ParsedDate:
    """An absolute date/datetime (team timezone when it has no offset) or a relative string (`-7d`,
    `-1mStart`, `yStart`, `-24h` …) counted back from `now`. `truncate` floors relative results to the
    hour (`h` strings) or the day, as PostHog does for `date_from` and `date_to`."""
    try:
        absolute = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        value = absolute.replace(tzinfo=tz) if absolute.tzinfo is None else absolute.astimezone(tz)
        return ParsedDate(value, relative=False, hours=False)
    match = _RELATIVE.fullmatch(text)
    if match is None:
        raise InvalidQuery(f"Invalid date {text!r}: expected a date, a datetime or a relative date like -7d")
    number = int(match["number"] or 0)
    kind, position = match["kind"], match["position"]
    value = now.astimezone(tz)
    try:
        if kind == "h":
            if position == "Start":
                value = value.replace(minute=0, second=0, microsecond=0)
            elif position == "End":
                value = value.replace(minute=59, second=59, microsecond=999999)
            value -= timedelta(hours=number)
        elif kind == "d":
            if position == "Start":
                value = value.replace(hour=0, minute=0, second=0, microsecond=0)
            elif position == "End":
                value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
            value -= timedelta(days=number)
        elif kind == "w":
            value -= timedelta(weeks=number)
        elif kind == "q":
            value -= timedelta(weeks=13 * number)
        elif kind == "m":
            day = 1 if position == "Start" else 31 if position == "End" else None
            value = _add_months(value, -number, day)
        elif kind == "y":
            if position == "Start":
                value = _add_months(value, -12 * number, 1).replace(month=1)
            else:
                value = _add_months(value, -12 * number, 31 if position == "End" else None)
        elif kind == "M":
            value -= timedelta(minutes=number)
        else:  # "s"
            value -= timedelta(seconds=number)
    except (OverflowError, ValueError):
        raise InvalidQuery(f"Invalid date {text!r}: out of range") from None
    if truncate:
        value = (
            value.replace(minute=0, second=0, microsecond=0)
            if kind == "h"
            else value.replace(hour=0, minute=0, second=0, microsecond=0)
        )
    return ParsedDate(value, relative=True, hours=kind == "h")


def _naive(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(tz).replace(tzinfo=None)


def floor_to(interval: str, value: datetime, week_start: int = 0) -> datetime:
    """Start of the interval containing `value` (weeks start on Sunday, or Monday when `week_start` is 1)."""
    day = value.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=(day.weekday() + 1 - week_start) % 7)
    return day.replace(day=1)


def step(interval: str, value: datetime) -> datetime:
    if interval == "hour":
        return value + timedelta(hours=1)
    if interval == "day":
        return value + timedelta(days=1)
    if interval == "week":
        return value + timedelta(weeks=1)
    return _add_months(value, 1)


@dataclass(frozen=True)
class ResolvedRange:
    """One period of a query: its bounds, which events it reads, and its buckets."""

    tz: ZoneInfo
    interval: str  # hour, day, week or month
    date_from: datetime  # aware, team timezone
    date_to: datetime
    start: datetime  # events with start <= timestamp <= date_to are read
    exact: bool  # explicitDate or BoldNumber: bounds used as they are
    hours_relative: bool  # date_from was an `h` relative string
    week_start: int = 0  # the team's: 0 Sunday, 1 Monday

    @cached_property
    def buckets(self) -> list[datetime]:
        """Naive local bucket starts from the interval of `date_from` to that of `date_to`, inclusive."""
        current = floor_to(self.interval, _naive(self.date_from, self.tz), self.week_start)
        last = floor_to(self.interval, _naive(self.date_to, self.tz), self.week_start)
        out: list[datetime] = []
        while current <= last:
            out.append(current)
            if len(out) > MAX_BUCKETS:
                message = f"The date range has more than {MAX_BUCKETS} {self.interval} intervals."
                raise InvalidQuery(message, path=("dateRange",))
            try:
                current = step(self.interval, current)
            except (OverflowError, ValueError):
                break  # the last bucket before year 10000
        return out

    def aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz)


def _start(interval: str, date_from: datetime, *, exact: bool, hours_relative: bool) -> datetime:
    """Where the events of a period start (B.2 "Which events are included")."""
    if exact or interval == "hour" or (interval == "day" and hours_relative):
        return date_from
    if interval == "month":
        return floor_to("month", date_from)
    return floor_to("day", date_from)


def resolve(
    date_from: str | None,
    date_to: str | None,
    *,
    explicit: bool,
    interval: str,
    tz: ZoneInfo,
    now: datetime,
    exact_time_range: bool,
    earliest: datetime | None,
    week_start: int = 0,
) -> ResolvedRange:
    """The current period. `exact_time_range` is BoldNumber's rule (no truncation, `date_to` = now);
    `earliest` is the team's first event, used for `date_from: "all"`."""
    exact = explicit or exact_time_range
    local_now = now.astimezone(tz)
    hours_relative = False
    if date_from == "all":
        start_at = (earliest or EARLIEST_FALLBACK).astimezone(tz)
    elif date_from:
        parsed = parse_date(date_from, tz, now, truncate=not exact)
        start_at, hours_relative = parsed.value, parsed.hours
    else:
        start_at = local_now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DEFAULT_DAYS)

    if date_to:
        parsed_to = parse_date(date_to, tz, now, truncate=not explicit)
        end_at, to_relative = parsed_to.value, parsed_to.relative
    else:
        end_at, to_relative = local_now, True
    if not exact:
        if interval != "hour":
            end_at = end_at.replace(hour=23, minute=59, second=59, microsecond=999999)
        elif to_relative:
            end_at = end_at.replace(minute=59, second=59, microsecond=999999)

    return ResolvedRange(
        tz=tz,
        interval=interval,
        date_from=start_at,
        date_to=end_at,
        start=_start(interval, start_at, exact=exact, hours_relative=hours_relative),
        exact=exact,
        hours_relative=hours_relative,
        week_start=week_start,
    )


def previous_period(current: ResolvedRange, compare_to: str | None, now: datetime) -> ResolvedRange:
    """The period a compare shows next to `current` (B.6): `compare_to` (relative to the current start)
    when given, else the same length immediately before, aligned to the hour or day like the current one."""
    length = current.date_to - current.date_from
    if compare_to:
        date_from = parse_date(compare_to, current.tz, current.date_from, truncate=False).value
    else:
        date_from = current.date_from - length
        if not current.exact:
            date_from = floor_to("hour" if current.interval == "hour" else "day", date_from)
    date_to = date_from + length
    start = _start(current.interval, date_from, exact=current.exact, hours_relative=current.hours_relative)
    return replace(current, date_from=date_from, date_to=date_to, start=start)


def iso(value: datetime) -> str:
    """PostHog's API encoding of a datetime: ISO 8601, milliseconds at most, UTC written as Z."""
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text


def _day_label(value: datetime, *, year: bool = True) -> str:
    text = f"{value.day}-{_MONTHS[value.month - 1]}"
    return f"{text}-{value.year}" if year else text


def _week_label(start: datetime, period: ResolvedRange) -> str:
    """ "4<en dash>10 Jan", "29-Dec <en dash> 4-Jan", "28-Dec-2025 <en dash> 3-Jan-2026" or "5-Jan-2026":
    the week clipped to the period's dates."""
    first = max(start.date(), _naive(period.date_from, period.tz).date())
    last = max(first, min(start.date() + timedelta(days=6), _naive(period.date_to, period.tz).date()))
    a = datetime(first.year, first.month, first.day)
    b = datetime(last.year, last.month, last.day)
    if a == b:
        return _day_label(a)
    if a.year != b.year:
        return f"{_day_label(a)} {EN_DASH} {_day_label(b)}"
    if a.month != b.month:
        return f"{_day_label(a, year=False)} {EN_DASH} {_day_label(b, year=False)}"
    return f"{a.day}{EN_DASH}{b.day} {_MONTHS[b.month - 1]}"


def label(bucket: datetime, period: ResolvedRange) -> str:
    """The display label of a bucket."""
    if period.interval == "hour":
        return f"{_day_label(bucket, year=False)} {bucket:%H:%M}"
    if period.interval == "month":
        return f"{_MONTHS[bucket.month - 1]} {bucket.year}"
    if period.interval == "week":
        return _week_label(bucket, period)
    return _day_label(bucket)


def day_key(bucket: datetime, interval: str) -> str:
    """A bucket in `days`: the date, with the time for hourly buckets."""
    return f"{bucket:%Y-%m-%d %H:%M:%S}" if interval == "hour" else f"{bucket:%Y-%m-%d}"
