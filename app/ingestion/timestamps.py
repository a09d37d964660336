"""Event time: parsing client timestamps and PostHog's clock-skew formula (capture-and-trends.md §A.6)."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime

# Event times are computed as integer microseconds since the epoch ("instants"), which have no range: a
# client may send any year, and the formula's range rule decides afterwards what is stored.
Instant = int

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000
FUTURE_CLAMP = 23 * 3600 * 1_000_000
# `_` values before this decode to 2020 or earlier: they were seconds, not milliseconds; PostHog drops them.
_MIN_SENT_AT_MS = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp() * 1000)

_EPOCH_SECONDS = re.compile(r"\d{1,11}(?:\.\d+)?")
_EPOCH_MILLIS = re.compile(r"\d{12,16}")
_SLASHED = re.compile(r"(\d{1,4})/(\d{1,2})/(\d{1,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def instant(value: datetime) -> Instant:
    """Exact microseconds since the epoch of an aware datetime (naive: UTC), even where converting it to UTC
    would leave datetime's range (`0001-01-01T00:00:00+14:00` is in year 0): an aware difference never
    builds that datetime."""
    delta = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - EPOCH
    return delta.days * _DAY_US + delta.seconds * 1_000_000 + delta.microseconds


MIN_INSTANT = instant(datetime.min)
MAX_INSTANT = instant(datetime.max)


def to_datetime(value: Instant) -> datetime | None:
    """The UTC datetime of an instant, or None when it falls before year 1 or after year 9999."""
    if not MIN_INSTANT <= value <= MAX_INSTANT:
        return None
    days, micros = divmod(value, _DAY_US)
    return EPOCH + timedelta(days, 0, micros)


def _slashed(text: str) -> datetime | None:
    match = _SLASHED.fullmatch(text)
    if not match:
        return None
    a, b, c, hour, minute, second = match.groups()
    # `2023/01/31` (year first) or `01/31/2023` (US month/day/year), as the permissive parser reads them.
    year, month, day = (int(a), int(b), int(c)) if len(a) == 4 else (int(c), int(a), int(b))
    if len(str(year)) != 4:
        return None
    try:
        return datetime(year, month, day, int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None


def parse_timestamp(raw: object) -> Instant | None:
    """A client timestamp, or None when PostHog would find it unparseable (then the event time is `now`).

    RFC 3339 (also with a bare `+03` zone), ISO dates and date-times without zone (UTC), `2023/01/31`,
    `01/31/2023`, RFC 2822, and epochs in seconds (up to 11 digits, optional fraction) or milliseconds.
    """
    if type(raw) is str and len(raw) > 18 and raw[4] == "-" and raw[10] == "T" and raw[-1] > " ":
        # The fast path, for what SDKs send (`2024-01-31T12:00:00.123Z`, `…+00:00`): what the rules below
        # would do too (no epoch has a `-`; no leading or trailing space to strip), without their detours.
        try:
            return instant(datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1] in "zZ" else raw))
        except ValueError:
            pass
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    if isinstance(raw, int | float):
        # Not PostHog (its timestamp is a string): a bare number is read as the epoch it most likely is.
        raw = repr(raw) if isinstance(raw, float) else str(raw)
    text = raw.strip()
    if not text:
        return None
    if _EPOCH_SECONDS.fullmatch(text):
        return round(Decimal(text) * 1_000_000)
    if _EPOCH_MILLIS.fullmatch(text):
        return int(text) * 1000
    iso = text[:10] + "T" + text[11:] if len(text) > 10 and text[10] == "t" else text
    if iso[-1] in "zZ":
        iso = iso[:-1] + "+00:00"
    try:
        return instant(datetime.fromisoformat(iso))
    except ValueError:
        pass
    if parsed := _slashed(text):
        return instant(parsed)
    try:
        return instant(parsedate_to_datetime(text))
    except (ValueError, TypeError, IndexError):
        return None


def sent_at_from_query(value: str | None) -> Instant | None:
    """The `_` query parameter: integer milliseconds; seconds-sized values (year <= 2020) are ignored."""
    if not value or not value.isdigit() or len(value) > 16:
        return None
    millis = int(value)
    if millis < _MIN_SENT_AT_MS:
        return None
    return millis * 1000


def event_time(
    timestamp: Instant | None,
    offset_ms: int | None,
    sent_at: Instant | None,
    now: datetime | Instant,
    *,
    ignore_sent_at: bool = False,
    clock_skew_ms: int | None = None,
) -> datetime:
    """PostHog's rule: `now + (timestamp - sent_at)`, or the timestamp as is without `sent_at`; `offset`
    overrides both; `$clock_skew` is added; more than 23 h ahead of now is now; a time out of range (here:
    before year 1, which datetime and the formula's "year below 0" nearly share) is 1970-01-01. `now` may be
    given as an instant already (a batch computes it once)."""
    effective_sent_at = None if ignore_sent_at else sent_at
    now_us = now if isinstance(now, int) else instant(now)
    ts = now_us
    if timestamp is not None:
        ts = now_us + (timestamp - effective_sent_at) if effective_sent_at is not None else timestamp
    if offset_ms is not None:
        ts = now_us - offset_ms * 1000
    if clock_skew_ms is not None:
        ts += clock_skew_ms * 1000
    if ts - now_us > FUTURE_CLAMP:
        ts = now_us
    return to_datetime(ts) or EPOCH


def rfc3339(value: datetime) -> str:
    """UTC with `Z` and as many fractional digits as needed (0, 3 or 6), like PostHog's capture."""
    value = value.astimezone(UTC)
    micros = value.microsecond
    if micros == 0:
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
    elif micros % 1000 == 0:
        text = value.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros // 1000:03d}"
    else:
        text = value.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}"
    return text + "Z"
