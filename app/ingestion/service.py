"""Capture: from a request to stored events, following PostHog's capture (capture-and-trends.md §A), except
that the project key is checked at once (DESIGN.md): an unknown key is a 401, not a silent drop."""

import asyncio
import functools
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from asyncpg.pgproto.pgproto import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import after_commit
from app.ingestion import repository
from app.ingestion.decoding import (
    RawRequest,
    decode_payload,
    may_hold_refused_characters,
    parse_json,
    read_body,
)
from app.ingestion.definitions import KNOWN, NewDefinitions
from app.ingestion.errors import CaptureError
from app.ingestion.repository import NewEvent, PersonUpdate
from app.ingestion.timestamps import (
    Instant,
    event_time,
    instant,
    parse_timestamp,
    rfc3339,
    sent_at_from_query,
    to_datetime,
)

if TYPE_CHECKING:
    from app.clickhouse.client import ClickHouse

__all__ = ["CaptureError", "CaptureInput", "CaptureOutcome", "capture"]

MAX_EVENT_NAME = 400  # the column's length
MAX_DISTINCT_ID = 200
MAX_TOKEN = 64
DROPPED_EVENTS = frozenset({"$performance_event"})

# jsonb refuses NUL and lone surrogates, which JSON can only carry as `\u` escapes (see `parse_json`).
_REFUSED_CHARS = re.compile("[\x00\ud800-\udfff]")
_encode_properties = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
Encoder = Callable[[dict[str, Any]], str]


def _encode_properties_fast(properties: dict[str, Any]) -> str:
    """orjson, for payloads orjson parsed (they hold no inf or NaN, which it would write as null); what it
    cannot write (nested past its depth limit) goes to the standard library, which decides."""
    try:
        return orjson.dumps(properties).decode()
    except orjson.JSONEncodeError:
        return _encode_properties(properties)


_MILLIS_MASK = (1 << 48) - 1
# The canonical spelling, the one SDKs send; `uuid.UUID` reads others too (braces, `urn:uuid:`, no hyphens).
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

_encode_distinct_id = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


@dataclass(frozen=True)
class CaptureInput:
    """One capture request as received: the body is read (within the limit) by `capture`."""

    path: str
    query: Mapping[str, str]
    content_type: str | None
    content_encoding: str | None
    content_length: str | None
    body: AsyncIterable[bytes]
    client_ip: str | None = None


@dataclass(frozen=True)
class CaptureOutcome:
    team_id: int
    stored: int  # events sent to the database (duplicates of stored uuids are then skipped)
    beacon: bool


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _REFUSED_CHARS.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_REFUSED_CHARS.sub("\ufffd", k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def uuid7() -> uuid.UUID:
    """A time-ordered UUIDv7, as PostHog's capture generates for events sent without a uuid: 48 bits of
    milliseconds, the version (7), 12 random bits, the variant (0b10), 62 random bits. Built as asyncpg's
    UUID (a `uuid.UUID`) from its bytes, which costs a fraction of `uuid.UUID(int=...)`."""
    millis = (time.time_ns() // 1_000_000) & _MILLIS_MASK
    rand = os.urandom(10)
    return PgUUID(  # type: ignore[no-any-return]
        millis.to_bytes(6, "big") + bytes((0x70 | rand[0] & 0x0F, rand[1], 0x80 | rand[2] & 0x3F)) + rand[3:]
    )


def split_payload(payload: Any) -> tuple[bool, Any, list[Any]]:
    """(is an envelope, the envelope's token, the raw events): an array, a `batch` envelope, or one event."""
    if isinstance(payload, list):
        return False, None, payload
    if isinstance(payload, dict):
        if "batch" in payload:
            batch = payload["batch"]
            if not isinstance(batch, list):
                raise CaptureError(400, "failed to parse request: batch must be an array of events")
            token = payload.get("token")
            if token is None:
                token = payload.get("api_key")
            return True, token, batch
        return False, None, [payload]
    raise CaptureError(400, "failed to parse request: expected an event, an array of events or a batch")


def _event_token(raw: dict[str, Any]) -> str | None:
    for key in ("token", "$token", "api_key"):
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise CaptureError(400, f"failed to parse request: {key} must be a string")
            return value
    properties = raw.get("properties")
    token = properties.get("token") if isinstance(properties, dict) else None
    return token if isinstance(token, str) else None


def resolve_token(envelope_token: Any, raws: list[dict[str, Any]]) -> str:
    """The envelope's token wins; otherwise the events must name exactly one token between them."""
    if envelope_token is not None:
        if not isinstance(envelope_token, str):
            raise CaptureError(400, "failed to parse request: api_key must be a string")
        token = envelope_token
    else:
        tokens = {t for t in map(_event_token, raws) if t is not None}
        if not tokens:
            raise CaptureError(401, "event submitted without an api_key")
        if len(tokens) > 1:
            raise CaptureError(401, "batch submitted with inconsistent api_key values")
        (token,) = tokens
    reason = _token_problem(token)
    if reason:
        raise CaptureError(401, f"API key is not valid: {reason}")
    return token


def _token_problem(token: str) -> str | None:
    if not token:
        return "empty"
    if len(token) > MAX_TOKEN:
        return "too_long"
    if not token.isascii():
        return "not_ascii"
    if "\x00" in token:
        return "null_byte"
    if token.startswith("phx_"):
        return "personal_api_key"
    return None


def _distinct_id(raw: dict[str, Any], properties: dict[str, Any]) -> str:
    value = raw.get("distinct_id")
    if value is None:
        value = raw.get("$distinct_id")
    if value is None:
        value = properties.get("distinct_id")
    if value is None:
        raise CaptureError(400, "event submitted without a distinct_id")
    text = value if isinstance(value, str) else _encode_distinct_id(value)
    if not text:
        raise CaptureError(400, "event submitted without a distinct_id")
    # Cleaned already when the payload carried a NUL escape; the check keeps the rule local and explicit.
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text[:MAX_DISTINCT_ID]


def _event_uuid(value: Any) -> uuid.UUID:
    """The event's `uuid` field as a UUID (a new UUIDv7 when absent or empty)."""
    if value is None or value == "":
        return uuid7()
    if not isinstance(value, str):
        raise CaptureError(400, "failed to parse request: uuid must be a string")
    if len(value) == 36 and _CANONICAL_UUID.fullmatch(value):
        # asyncpg's UUID (a `uuid.UUID`) parses the canonical form ten times faster, to the same value.
        return PgUUID(value)  # type: ignore[no-any-return]
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise CaptureError(400, f"failed to parse request: invalid uuid {value[:64]!r}") from exc


def _integer(raw: Any, name: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise CaptureError(400, f"failed to parse request: {name} must be an integer number of milliseconds")
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise CaptureError(400, f"failed to parse request: {name} must be a finite number")
        return int(raw)
    return raw


class Decoded(NamedTuple):
    token: str
    events: list[NewEvent]
    persons: list[PersonUpdate]
    definitions: NewDefinitions | None


class PersonUpdates:
    """What a request's events set on their distinct ids' person properties, in the events' order, as one
    `$set` and one `$set_once` per distinct id: a later `$set` overwrites an earlier one; a `$set_once`
    counts only for keys no earlier event of the request set (once or not). The store then applies
    `$set_once` to keys the person does not have yet and `$set` over everything."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def add(self, distinct_id: str, set_: Any, set_once: Any) -> None:
        sets, once = self._by_id.setdefault(distinct_id, ({}, {}))
        if isinstance(set_once, dict):
            for key, value in set_once.items():
                if key not in sets and key not in once:
                    once[key] = value
        if isinstance(set_, dict):
            sets.update(set_)

    def properties(self) -> Iterator[tuple[str, Any]]:
        """Every key set (or set once) and one of its values, for the person property definitions."""
        for sets, once in self._by_id.values():
            yield from once.items()
            yield from sets.items()

    def rows(self, encode: Encoder) -> list[PersonUpdate]:
        return [
            PersonUpdate(distinct_id, encode(sets), encode(once))
            for distinct_id, (sets, once) in sorted(self._by_id.items())
            if sets or once
        ]


def to_event(
    raw: Any,
    sent_at: Instant | None,
    sent_at_text: str | None,
    now: Instant,
    client_ip: str | None,
    encode: Encoder = _encode_properties,
    persons: PersonUpdates | None = None,
    seen: list[tuple[str, dict[str, Any]]] | None = None,
) -> NewEvent | None:
    """One stored row from one raw event, or None for events capture drops (`$performance_event`).

    Written for speed (it runs for every event; a hundred per request): each key is looked up once, and the
    common case (string distinct_id, no uuid or a canonical one, no offset or clock skew) takes no detour.
    The checks, and the order they fail in, are those of the rules in the helpers it calls."""
    if type(raw) is not dict:
        if not isinstance(raw, dict):
            raise CaptureError(400, "failed to parse request: an event must be an object")
    get = raw.get
    name = get("event")
    if type(name) is not str or not name:
        if name is None or name == "":
            raise CaptureError(400, "event submitted with an empty event name")
        if not isinstance(name, str):
            raise CaptureError(400, "failed to parse request: event must be a string")
    if name in DROPPED_EVENTS:
        return None
    properties = get("properties")
    if properties is None:
        properties = {}
    elif type(properties) is not dict and not isinstance(properties, dict):
        raise CaptureError(400, "failed to parse request: properties must be an object")

    distinct_id = get("distinct_id")
    if type(distinct_id) is str and distinct_id and "\x00" not in distinct_id:
        distinct_id = distinct_id[:MAX_DISTINCT_ID]
    else:
        distinct_id = _distinct_id(raw, properties)
    event_uuid = _event_uuid(get("uuid"))

    cookieless = properties.get("$cookieless_mode")
    if cookieless is not None and not isinstance(cookieless, bool):
        raise CaptureError(400, "event submitted with invalid cookieless mode")

    # Top-level `$set`/`$set_once` are merged into the properties' own, their keys winning (PostHog's
    # ingestion does the same before storing).
    if "$set" in raw or "$set_once" in raw:
        _merge_set(raw, properties)
    if persons is not None and ("$set" in properties or "$set_once" in properties):
        persons.add(distinct_id, properties.get("$set"), properties.get("$set_once"))

    clock_skew = get("$clock_skew")
    if "$clock_skew" in properties:
        skew_in_properties = properties.pop("$clock_skew")
        clock_skew = skew_in_properties if clock_skew is None else clock_skew
    offset = get("offset")
    timestamp = event_time(
        parse_timestamp(get("timestamp")),
        None if offset is None else _integer(offset, "offset"),
        sent_at,
        now,
        ignore_sent_at=properties.get("$ignore_sent_at") is True,
        clock_skew_ms=None if clock_skew is None else _integer(clock_skew, "$clock_skew"),
    )

    if sent_at_text is not None:
        properties["$sent_at"] = sent_at_text
    if client_ip is not None and "$ip" not in properties:
        properties["$ip"] = "127.0.0.1" if "capture_internal" in properties else client_ip
    try:
        properties_json = encode(properties)
    except ValueError as exc:  # a number too large for a double became infinity
        raise CaptureError(400, f"failed to parse request: {exc}") from exc
    name = name[:MAX_EVENT_NAME]
    if seen is not None:
        seen.append((name, properties))
    return NewEvent(event_uuid, name, distinct_id, timestamp, properties_json)


def _merge_set(raw: dict[str, Any], properties: dict[str, Any]) -> None:
    for key in ("$set", "$set_once"):
        top = raw.get(key)
        if top is None:
            continue
        if not isinstance(top, dict):
            raise CaptureError(400, f"failed to parse request: {key} must be an object")
        existing = properties.get(key)
        properties[key] = {**existing, **top} if isinstance(existing, dict) else top


def build_events(
    payload: Any,
    query: Mapping[str, str],
    now: datetime,
    client_ip: str | None,
    encode: Encoder = _encode_properties,
) -> Decoded:
    """The request's project key, its rows, its person updates and the definitions new to this process, or a
    CaptureError (400/401) for the whole request."""
    is_envelope, envelope_token, raws = split_payload(payload)
    if not raws:
        raise CaptureError(400, "request holds no event")
    # A malformed event fails the parse (400) before any question of keys, as in PostHog.
    if not all(isinstance(raw, dict) for raw in raws):
        raise CaptureError(400, "failed to parse request: an event must be an object")
    token = resolve_token(envelope_token, raws)
    if is_envelope:
        sent_at = parse_timestamp(payload.get("sent_at"))
    else:
        sent_at = sent_at_from_query(query.get("_") or query.get("sent_at"))
    # A send time past what a datetime holds still counts in the formula; it is just not shown as `$sent_at`.
    sent_at_time = to_datetime(sent_at) if sent_at is not None else None
    sent_at_text = rfc3339(sent_at_time) if sent_at_time is not None else None
    now_us = instant(now)
    persons = PersonUpdates()
    seen: list[tuple[str, dict[str, Any]]] = []
    events = [to_event(raw, sent_at, sent_at_text, now_us, client_ip, encode, persons, seen) for raw in raws]
    try:
        updates = persons.rows(encode)
    except ValueError as exc:  # a number too large for a double became infinity
        raise CaptureError(400, f"failed to parse request: {exc}") from exc
    definitions = KNOWN.new_for(token, seen, persons.properties(), now.timestamp())
    return Decoded(token, [e for e in events if e is not None], updates, definitions)


# A body this small (a hundred or so events, as SDKs send them: posthog-python's batches of 100 are ~45 KB)
# is decoded inline, in about a millisecond: handing it to a thread and back would cost more (a tenth of a
# capture worker's CPU under load, measured with py-spy) than the event loop waits for it.
INLINE_BODY_BYTES = 64 * 1024


def decode_events(request: RawRequest, settings: Settings, now: datetime, client_ip: str | None) -> Decoded:
    """The request's project key, rows, person updates and new definitions, from its bytes however they
    were wrapped (CaptureError: 4xx)."""
    raw = decode_payload(request, settings.capture_max_payload_bytes)
    payload, by_orjson = parse_json(raw, settings.capture_max_events)
    if not by_orjson and may_hold_refused_characters(raw):
        try:
            payload = _clean(payload)
        except RecursionError as exc:
            raise CaptureError(400, "failed to parse request: payload nested too deeply") from exc
    del raw
    encode = _encode_properties_fast if by_orjson else _encode_properties
    try:
        return build_events(payload, request.query, now, client_ip, encode)
    except (CaptureError, RecursionError) as exc:
        # Free a refused payload (maybe hundreds of thousands of objects) here, in the decoding thread:
        # the error's traceback would otherwise keep it alive until the event loop handles the error.
        del payload
        if isinstance(exc, RecursionError):
            raise CaptureError(400, "failed to parse request: payload nested too deeply") from None
        raise exc.with_traceback(None) from None


async def capture(
    session: AsyncSession,
    request: CaptureInput,
    settings: Settings,
    now: datetime | None = None,
    clickhouse: "ClickHouse | None" = None,
) -> CaptureOutcome:
    """Decode the request, check its project key and store its events in one statement (in ClickHouse, when
    it is the events store: `app.ingestion.clickhouse`).

    `now` is the receive time every event time is computed from (injectable for tests)."""
    now = now or datetime.now(UTC)
    body = await read_body(request.body, request.content_length, settings.capture_max_body_bytes)
    raw_request = RawRequest(
        request.path, request.query, request.content_type, request.content_encoding, body
    )
    if len(body) < INLINE_BODY_BYTES:
        token, events, persons, definitions = decode_events(raw_request, settings, now, request.client_ip)
    else:
        # Inflating, parsing and building thousands of events takes a large batch tens to hundreds of
        # milliseconds: in a thread, the event loop keeps serving (zlib lets go of the GIL while inflating,
        # and the Python parts yield it every few milliseconds).
        token, events, persons, definitions = await asyncio.to_thread(
            decode_events, raw_request, settings, now, request.client_ip
        )
    del body, raw_request
    rate_limit = settings.capture_rate_limit_per_minute
    if clickhouse is not None:
        from app.ingestion import clickhouse as to_clickhouse

        stored = await to_clickhouse.capture(
            session, clickhouse, token, events, persons, rate_limit, definitions
        )
    else:
        stored = await repository.insert_events_for_token(
            session, token, events, persons, rate_limit, definitions
        )
    if stored is None:
        raise CaptureError(401, "API key is not valid: no project has this API key")
    if rate_limit and stored.events_this_minute > rate_limit:
        # Nothing was inserted; the caller's rollback un-counts these events.
        retry_after = str(60 - datetime.now(UTC).second)
        raise CaptureError(429, "rate limited", headers={"Retry-After": retry_after})
    if definitions is not None:
        after_commit(session, functools.partial(KNOWN.learn, token, definitions))
    return CaptureOutcome(
        team_id=stored.team_id, stored=len(events), beacon=request.query.get("beacon") == "1"
    )
