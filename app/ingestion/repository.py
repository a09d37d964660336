"""Writing events: one statement per request finds the team by its project key and inserts every event."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ingestion.definitions import NewDefinitions

# The team lookup and the insert travel together: a request costs one round trip, however many events it
# carries (unnest() over parallel arrays). An unknown key selects no team, so nothing is inserted and the
# statement returns no row. A uuid already stored for the team (a retried request) is skipped, which makes
# retries idempotent.
_INSERT_ROWS = """
        INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties)
        SELECT t.id, rows.u, rows.e, rows.d, rows.ts, CAST(rows.p AS jsonb)
        FROM {source}, unnest(
            CAST(string_to_array($2, ',') AS uuid[]), CAST($3 AS text[]), CAST($4 AS text[]),
            CAST($5 AS timestamptz[]), string_to_array($6, E'\\n')
        ) AS rows(u, e, d, ts, p)
        {condition}
        ON CONFLICT (team_id, uuid) DO NOTHING
"""
# Person properties, in the same statement: each distinct id's `$set_once` under what its person holds,
# and its `$set` over both. Existing persons are locked in distinct id order (concurrent requests for the same
# persons wait rather than deadlock) and updated; the others are inserted. A person that another request
# inserted after this statement began is merged on conflict with this request's properties winning (the one
# case where a `$set_once` can overwrite: two requests seeing a new distinct id at the same moment).
_PERSONS = """,
    source AS (
        SELECT rows.d, CAST(rows.s AS jsonb) AS s, CAST(rows.o AS jsonb) AS o
        FROM unnest(CAST(${d} AS text[]), CAST(${s} AS text[]), CAST(${o} AS text[])) AS rows(d, s, o)
    ),
    locked AS (
        SELECT p.distinct_id, p.properties FROM person p, {team} WHERE p.team_id = {team}.id
          AND p.distinct_id IN (SELECT d FROM source)
        ORDER BY p.distinct_id FOR UPDATE OF p
    ),
    updated AS (
        UPDATE person p SET properties = source.o || locked.properties || source.s, updated_at = now()
        FROM locked, source, {team}
        WHERE p.team_id = {team}.id AND p.distinct_id = locked.distinct_id AND source.d = locked.distinct_id
        RETURNING p.distinct_id
    ),
    created AS (
        INSERT INTO person AS p (team_id, distinct_id, properties)
        SELECT {team}.id, source.d, source.o || source.s FROM {team}, source
        WHERE source.d NOT IN (SELECT distinct_id FROM locked)
        ORDER BY source.d
        ON CONFLICT (team_id, distinct_id) DO UPDATE
        SET properties = p.properties || excluded.properties, updated_at = now()
    )"""
# Definitions, in the same statement: the event names, property keys and (event, property) pairs that this
# process has not stored yet (`app.ingestion.definitions`), most often none, when this part is left out. Rows
# are inserted in a fixed order (names sorted), so concurrent requests adding the same names wait for each
# other rather than deadlock. An event name's `last_seen_at` moves forward only; a property stored without
# a type takes the first type that comes.
_DEFINITIONS = """,
    event_definitions AS (
        INSERT INTO event_definition AS d (team_id, name, created_at, last_seen_at)
        SELECT {team}.id, n.name, ${seen}, ${seen}
        FROM {team}, unnest(CAST(${names} AS text[])) AS n(name)
        ORDER BY n.name
        ON CONFLICT (team_id, name) DO UPDATE SET last_seen_at = excluded.last_seen_at
        WHERE d.last_seen_at IS NULL OR d.last_seen_at < excluded.last_seen_at
    ),
    property_definitions AS (
        INSERT INTO property_definition AS d (team_id, name, type, property_type, is_numerical)
        SELECT {team}.id, p.name, p.kind, p.type, coalesce(p.type = 'Numeric', false)
        FROM {team}, unnest(
            CAST(${properties} AS text[]), CAST(${kinds} AS smallint[]), CAST(${types} AS text[])
        ) AS p(name, kind, type)
        ORDER BY p.kind, p.name
        ON CONFLICT (team_id, type, name) DO UPDATE
        SET property_type = excluded.property_type, is_numerical = excluded.is_numerical
        WHERE d.property_type IS NULL AND excluded.property_type IS NOT NULL
    ),
    event_properties AS (
        INSERT INTO event_property (team_id, event, property)
        SELECT {team}.id, ep.event, ep.property
        FROM {team}, unnest(
            CAST(${pair_events} AS text[]), CAST(${pair_properties} AS text[])
        ) AS ep(event, property)
        ORDER BY ep.event, ep.property
        ON CONFLICT DO NOTHING
    )"""
_CAPTURE_HEAD = f"""
    WITH t AS (SELECT id FROM team WHERE api_token = $1),
    inserted AS ({_INSERT_ROWS.format(source="t", condition="")})"""
# With a rate limit: the team's count for this minute grows by the request's events (a new minute restarts
# it), and the events are inserted only if the count stays within the limit. Over it, the caller rolls the
# transaction back, so refused events are not counted. The counter's row lock is held until the commit that
# follows at once: one team's requests serialise only for that moment.
_CAPTURE_COUNTED_HEAD = f"""
    WITH team_row AS (SELECT id FROM team WHERE api_token = $1),
    counted AS (
        INSERT INTO capture_rate_limit AS r (team_id, window_start, events)
        SELECT id, date_trunc('minute', now()), $7 FROM team_row
        ON CONFLICT (team_id) DO UPDATE SET
            events = CASE WHEN r.window_start = excluded.window_start
                          THEN r.events + excluded.events ELSE excluded.events END,
            window_start = excluded.window_start
        RETURNING r.team_id AS id, r.events
    ),
    inserted AS ({_INSERT_ROWS.format(source="counted t", condition="WHERE t.events <= $8")}),
    admitted AS (SELECT id FROM counted WHERE events <= $8)"""


@functools.cache
def _capture_sql(rate_limited: bool, with_persons: bool, with_definitions: bool) -> str:
    """The capture statement for a request: events, then persons' properties and definitions when it has
    any (numbered parameters follow in that order)."""
    sql, team, n = (_CAPTURE_COUNTED_HEAD, "admitted", 9) if rate_limited else (_CAPTURE_HEAD, "t", 7)
    if with_persons:
        sql += _PERSONS.format(d=n, s=n + 1, o=n + 2, team=team)
        n += 3
    if with_definitions:
        names = ("seen", "names", "properties", "kinds", "types", "pair_events", "pair_properties")
        sql += _DEFINITIONS.format(team=team, **{name: n + i for i, name in enumerate(names)})
    return sql + ("\n    SELECT id, events FROM counted" if rate_limited else "\n    SELECT id, 0 FROM t")


class NewEvent(NamedTuple):
    """One row to store. A tuple: capture builds a hundred per request, and a tuple is the cheapest record
    to build and to turn into the insert's columns (`zip(*events)`)."""

    uuid: UUID
    event: str
    distinct_id: str
    timestamp: datetime
    # Already serialised JSON, cleaned of what jsonb refuses (NUL, lone surrogates).
    properties_json: str


class PersonUpdate(NamedTuple):
    """One distinct id's person properties from a request: its `$set` and `$set_once`, as JSON objects."""

    distinct_id: str
    set_json: str
    set_once_json: str


@dataclass(frozen=True, slots=True)
class Stored:
    team_id: int
    # Events the team sent this minute, this request's included (0 when capture is not rate limited).
    events_this_minute: int


async def insert_events_for_token(
    session: AsyncSession,
    token: str,
    events: Sequence[NewEvent],
    persons: Sequence[PersonUpdate] = (),
    rate_limit: int = 0,
    definitions: NewDefinitions | None = None,
    count: int | None = None,
) -> Stored | None:
    """Store `events` for the team whose project API key is `token`, and its `persons`' properties; None if no
    team has this key (then nothing was stored). With a `rate_limit` (events a minute), nothing is stored
    once the count passes it. `definitions` are what this request adds to the team's definitions. `count`
    is what the rate limit counts when the events go elsewhere (ClickHouse: `events` is then empty)."""
    uuids, names, distinct_ids, timestamps, properties = zip(*events, strict=True) if events else ((),) * 5
    # The uuids and the properties travel as one text each, split by the server: asyncpg checks every
    # element of an array parameter against abstract base classes (a quarter of a microsecond each), which
    # was a tenth of the insert's CPU. A uuid's text has no comma. A raw newline in JSON text can only be
    # whitespace between tokens (in a string it is escaped): where one is found, a space replaces it.
    joined = "\n".join(properties)
    if joined.count("\n") != len(properties) - 1 and properties:
        joined = "\n".join(p.replace("\n", " ") for p in properties)
    args: tuple[Any, ...] = (token, ",".join(map(str, uuids)), names, distinct_ids, timestamps, joined)
    if rate_limit:
        args = (*args, len(events) if count is None else count, rate_limit)
    if persons:
        args = (*args, *(list(column) for column in zip(*persons, strict=True)))
    with_definitions = definitions is not None and definitions.writes
    if definitions is not None and with_definitions:
        seen = datetime.fromtimestamp(definitions.seen_at, UTC)
        args = (*args, seen, *definitions[:6])
    sql = _capture_sql(bool(rate_limit), bool(persons), with_definitions)
    row = await _fetchrow(session, sql, args)
    return None if row is None else Stored(team_id=row[0], events_this_minute=row[1])


async def _fetchrow(session: AsyncSession, sql: str, args: tuple[Any, ...]) -> Any:
    """The statement's first row, run on the session's asyncpg connection, in the session's transaction.

    asyncpg's own `fetchrow` (the statement prepared once a connection, then cached by asyncpg), not
    SQLAlchemy's `execute`: its compiling, cursor and result layers were a fifth of the insert's CPU, for a
    statement whose one row is read here. SQLAlchemy's asyncpg adapter opens its transaction (BEGIN) lazily,
    before its first statement: it is opened here the same way, so the session's commit or rollback ends
    the insert's transaction as it would any other statement's. Errors are SQLAlchemy's as well (see
    `_raise_as_sqlalchemy`), so an invalidated connection leaves the pool and a lost one is a 503."""
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    adapted: Any = pooled.dbapi_connection  # SQLAlchemy's AsyncAdapt_asyncpg_connection
    driver: Any = pooled.driver_connection  # asyncpg's Connection
    try:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()
            return await driver.fetchrow(sql, *args)
    except Exception as error:
        await _raise_as_sqlalchemy(connection, adapted, error, sql, args)
        raise


async def _raise_as_sqlalchemy(
    connection: AsyncConnection, adapted: Any, error: Exception, sql: str, args: tuple[Any, ...]
) -> None:
    """Raise `error` as SQLAlchemy raises a failed statement's: the adapter's DBAPI error, wrapped in a
    `DBAPIError` by the connection, which invalidates the connection when the error is a disconnect."""
    try:
        if not isinstance(error, adapted.dbapi.Error):
            adapted._handle_exception(error)  # raises the DBAPI error for asyncpg's
        raise error
    except adapted.dbapi.Error as dbapi_error:
        failed = dbapi_error

    def handle(sync_connection: Any) -> None:
        sync_connection._handle_dbapi_exception(failed, sql, args, None, None)

    await connection.run_sync(handle)
