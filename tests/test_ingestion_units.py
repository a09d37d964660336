"""The pure parts of capture: the §A.6 time formula with an exact `now`, timestamp parsing, decoding."""

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.ingestion import decoding
from app.ingestion.decoding import RawRequest, decode_payload, gunzip, looks_like_base64, parse_json
from app.ingestion.errors import CaptureError
from app.ingestion.service import uuid7
from app.ingestion.timestamps import (
    EPOCH,
    Instant,
    event_time,
    instant,
    parse_timestamp,
    rfc3339,
    sent_at_from_query,
)

NOON = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def at(text: str) -> Instant:
    parsed = parse_timestamp(text)
    assert parsed is not None
    return parsed


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- the formula, with the reference's own examples ---------------------------------------------------------


def test_example_skew() -> None:
    # now 12:00:00, sent_at 12:00:05, timestamp 11:59:55 → 11:59:50.
    got = event_time(at("2026-01-05T11:59:55Z"), None, at("2026-01-05T12:00:05Z"), NOON)
    assert got == datetime(2026, 1, 5, 11, 59, 50, tzinfo=UTC)


def test_example_milliseconds() -> None:
    # now 12:00:00.100, sent_at …00.200, timestamp …00.750 → 12:00:00.650.
    now = NOON + timedelta(milliseconds=100)
    got = event_time(at("2026-01-05T12:00:00.750Z"), None, at("2026-01-05T12:00:00.200Z"), now)
    assert got == NOON + timedelta(milliseconds=650)


def test_example_offset() -> None:
    assert event_time(None, 5000, None, NOON) == NOON - timedelta(seconds=5)
    # offset overrides the timestamp and sent_at.
    assert event_time(at("2020-01-01"), 5000, at("2026-01-05T12:00:05Z"), NOON) == NOON - timedelta(seconds=5)


def test_example_future_clamp() -> None:
    assert event_time(instant(NOON + timedelta(hours=24)), None, None, NOON) == NOON
    later = NOON + timedelta(hours=23)
    assert event_time(instant(later), None, None, NOON) == later
    assert event_time(None, -(25 * 3600 * 1000), None, NOON) == NOON  # a negative offset into the future


def test_no_timestamp_is_now_and_no_sent_at_is_the_timestamp() -> None:
    assert event_time(None, None, at("2026-01-05T12:00:05Z"), NOON) == NOON
    assert event_time(at("2026-01-01T08:00:00Z"), None, None, NOON) == utc("2026-01-01T08:00:00Z")


def test_ignore_sent_at() -> None:
    got = event_time(at("2026-01-05T11:59:55Z"), None, at("2026-01-05T12:00:05Z"), NOON, ignore_sent_at=True)
    assert got == utc("2026-01-05T11:59:55Z")


def test_clock_skew_is_added() -> None:
    got = event_time(at("2026-01-05T11:00:00Z"), None, None, NOON, clock_skew_ms=1500)
    assert got == utc("2026-01-05T11:00:01.500Z")


def test_out_of_range_results() -> None:
    # Before year 1 (PostHog: a year below 0) is 1970; far future saturates and is clamped to now.
    past = event_time(at("0001-01-01T00:00:00Z"), None, at("9999-01-01T00:00:00Z"), NOON)
    assert past == EPOCH
    future = event_time(at("9999-01-01T00:00:00Z"), None, at("0001-01-01T00:00:00Z"), NOON)
    assert future == NOON
    assert event_time(None, 10**30, None, NOON) == EPOCH
    assert event_time(None, -(10**30), None, NOON) == NOON


def test_times_beyond_datetimes_range_are_parsed_exactly() -> None:
    # Year 0 and year 10000 in UTC: no datetime holds them, the formula still can.
    assert at("0001-01-01T00:00:00+14:00") == instant(datetime(1, 1, 1, tzinfo=UTC)) - 14 * 3600 * 10**6
    assert at("Fri, 31 Dec 9999 23:59:59 -1400") == at("9999-12-31T23:59:59Z") + 14 * 3600 * 10**6
    # Sent a little after it was made: the skew formula brings it back to a real time.
    made, sent = at("9999-12-31T23:59:59-14:00"), at("9999-12-31T23:59:58-14:00")
    assert event_time(made, None, sent, NOON) == NOON + timedelta(seconds=1)


# --- parsing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-01-01T12:00:00+03", datetime(2023, 1, 1, 9, tzinfo=UTC)),
        ("2023-01-01T12:00:00.123456789Z", datetime(2023, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2023-01-01", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023-01-01 12:00:00", datetime(2023, 1, 1, 12, tzinfo=UTC)),
        ("2023-01-01T12:00:00", datetime(2023, 1, 1, 12, tzinfo=UTC)),
        ("01/01/2023", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023/01/01", datetime(2023, 1, 1, tzinfo=UTC)),
        ("Sun, 01 Jan 2023 12:00:00 +0000", datetime(2023, 1, 1, 12, tzinfo=UTC)),
        ("1672574400", datetime(2023, 1, 1, 12, tzinfo=UTC)),
        ("1672574400000", datetime(2023, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_accepts(raw: str, expected: datetime) -> None:
    assert parse_timestamp(raw) == instant(expected)


@pytest.mark.parametrize(
    "raw",
    [
        "2024-01-31T12:00:00.123Z",
        "2024-01-31T12:00:00.123456z",
        "2024-01-31T12:00:00+03",
        "2024-01-31T12:00:00.5-05:30",
        "2024-01-31T12:00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59.999999-14:00",
        "2024-02-30T00:00:00Z",
        "2024-01-31T25:00:00Z",
        "2024-01-31T12:00:00ZZ",
        "2024-01-31T12:00:00\u3000",
    ],
)
def test_parse_timestamp_fast_path_agrees_with_the_rules(raw: str) -> None:
    # A leading space takes the string past the fast path (the rules strip it): the answers must agree.
    assert parse_timestamp(raw) == parse_timestamp(" " + raw)


@pytest.mark.parametrize("raw", ["99999-01-01T00:00:00Z", "13/32/2023", "", "  ", "soon", None, True, [], {}])
def test_parse_timestamp_refuses(raw: object) -> None:
    assert parse_timestamp(raw) is None


def test_sent_at_from_query_is_milliseconds_after_2020() -> None:
    assert sent_at_from_query("1767614400000") == instant(datetime(2026, 1, 5, 12, tzinfo=UTC))
    assert sent_at_from_query("1767614400") is None  # seconds: year 1970 as milliseconds
    assert sent_at_from_query("abc") is None
    assert sent_at_from_query(None) is None


def test_rfc3339_uses_only_needed_digits() -> None:
    assert rfc3339(NOON) == "2026-01-05T12:00:00Z"
    assert rfc3339(NOON + timedelta(milliseconds=5)) == "2026-01-05T12:00:00.005Z"
    assert rfc3339(NOON + timedelta(microseconds=7)) == "2026-01-05T12:00:00.000007Z"


# --- decoding -----------------------------------------------------------------------------------------------


def _request(body: bytes, **kw: object) -> RawRequest:
    fields: dict[str, object] = {
        "path": "/batch/",
        "query": {},
        "content_type": None,
        "content_encoding": None,
        "body": body,
    }
    fields.update(kw)
    return RawRequest(**fields)  # type: ignore[arg-type]


def test_gunzip_stops_at_the_limit() -> None:
    data = gzip.compress(b"a" * 10_000)
    assert gunzip(data, 10_000) == b"a" * 10_000
    with pytest.raises(CaptureError) as refused:
        gunzip(data, 9_999)
    assert refused.value.status_code == 413


def test_looks_like_base64() -> None:
    assert looks_like_base64(b"eyJhIjoxfQ==")
    assert not looks_like_base64(b'{"a":1}')
    assert not looks_like_base64(b"abc")  # length not a multiple of 4
    assert not looks_like_base64(b"")


def test_json_is_never_mistaken_for_base64() -> None:
    assert decode_payload(_request(b"[1234]"), 1000) == b"[1234]"


def test_plain_base64_body_decoded_once_on_batch() -> None:
    twice = base64.b64encode(base64.b64encode(b'{"a": 1}'))
    # /batch/ decodes once; the legacy /e/ decodes the remaining base64 too.
    assert decode_payload(_request(twice), 1000) == base64.b64encode(b'{"a": 1}')
    assert decode_payload(_request(twice, path="/e/"), 1000) == b'{"a": 1}'


def test_uuid7_is_time_ordered_and_versioned() -> None:
    first, second = uuid7(), uuid7()
    assert first.version == 7 and second.version == 7
    assert first.variant == second.variant == "specified in RFC 4122"
    assert abs((first.int >> 80) - int(datetime.now(UTC).timestamp() * 1000)) < 5000
    assert first != second


# --- parsing: event by event, exactly as json.loads --------------------------------------------------------

SAME_AS_JSON_LOADS = [
    '[{"event": "a"}, {"event": "b", "properties": {"x": [1, 2, {"y": null}]}}]',
    " \n\t[ ]\r ",
    "[]",
    "{}",
    '{"batch": [], "api_key": "k"}',
    '{"api_key": "k", "batch": [{"event": "a"}], "sent_at": "2026-01-05T12:00:00Z"}',
    '{ "batch" : [ {"event":"a"} , {"event":"b"} ] , "x" : { "batch": [1, 2, 3, 4, 5, 6] } }',
    '{"batch": {"not": "a list"}}',
    '{"batch": [1], "batch": [2, 3]}',  # duplicate keys: the last wins
    '{"event": "one", "properties": {"\\u00e9t\\u00e9": "\\ud83d\\ude00", "n": 1.5e3}}',
    '{"event": "big", "properties": {"n": 123456789012345678901234, "f": -0.0}}',
    '"just a string"',
    "42",
    "null",
]


@pytest.fixture(params=["whole", "event by event"])
def walk_all(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of parsing: whole (small payloads) and event by event (what larger ones get)."""
    if request.param == "event by event":
        monkeypatch.setattr(decoding, "WALK_ABOVE_BYTES", 0)


@pytest.mark.parametrize("text", SAME_AS_JSON_LOADS)
def test_parse_json_is_json_loads(text: str, walk_all: None) -> None:
    assert parse_json(text.encode(), 5)[0] == json.loads(text)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")  # capture refuses NaN and Infinity


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[",
        "[1,]",
        "[1 2]",
        '{"batch": [1, 2}',
        '{"batch" [1]}',
        "{batch: []}",
        '{"a": 1,}',
        "[1] [2]",
        '{"a": NaN}',
        "[Infinity]",
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_parse_json_refuses_what_json_loads_refuses(text: str, walk_all: None) -> None:
    with pytest.raises((ValueError, RecursionError)):
        json.loads(text, parse_constant=_no_constants)
    with pytest.raises(CaptureError) as refused:
        parse_json(text.encode(), 5)
    assert refused.value.status_code == 400


def test_parse_json_refuses_past_the_event_limit(walk_all: None) -> None:
    five = "[" + ",".join(['{"event": "e"}'] * 5) + "]"
    assert len(parse_json(five.encode(), 5)[0]) == 5
    with pytest.raises(CaptureError) as refused:
        parse_json(five[:-1].encode() + b", {}]", 5)
    assert refused.value.status_code == 413
    envelope = '{"api_key": "k", "batch": ' + five[:-1] + ', {"event": "f"}]}'
    with pytest.raises(CaptureError) as refused:
        parse_json(envelope.encode(), 5)
    assert refused.value.status_code == 413


def test_a_large_payload_stops_being_parsed_past_the_event_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "WALK_ABOVE_BYTES", 0)
    five = "[" + ",".join(['{"event": "e"}'] * 5)
    # The sixth event is never parsed: what follows it may be anything.
    with pytest.raises(CaptureError) as refused:
        parse_json(five.encode() + b", {}, this is not json", 5)
    assert refused.value.status_code == 413


# --- decode_events: orjson where it gives json's answer, the standard library elsewhere -------------------


def _decoded_properties(body: bytes) -> list[object]:
    from app.config import get_settings
    from app.ingestion.service import decode_events

    request = RawRequest("/batch/", {}, "application/json", None, body)
    events = decode_events(request, get_settings(), NOON, None).events
    return [json.loads(e.properties_json) for e in events]


def _batch(*properties: str) -> bytes:
    events = ",".join(f'{{"event": "e", "distinct_id": "d", "properties": {p}}}' for p in properties)
    return f'{{"api_key": "phc_k", "batch": [{events}]}}'.encode()


@pytest.mark.parametrize(
    "properties",
    [
        '{"n": 123456789012345678901234, "m": -9223372036854775809, "u": 18446744073709551615}',
        '{"f": 1.5e300, "g": -0.0, "h": 0.1, "i": 5e-324, "b": true, "z": null}',
        '{"s": "\\u00e9\\ud83d\\ude00", "t": "\u00e9t\u00e9 \U0001f600", "e": "\\n\\"\\\\"}',
        '{"a": {"b": [1, {"c": 2}], "d": "x"}, "a2": 1, "a2": 2}',
        json.dumps({"deep": json.loads("[" * 300 + "]" * 300)}),  # past orjson's depth for writing
    ],
)
def test_decoded_properties_are_what_json_loads_gives(properties: str) -> None:
    assert _decoded_properties(_batch(properties, properties)) == [json.loads(properties)] * 2


def test_a_number_too_large_for_a_double_is_refused_not_stored_as_null() -> None:
    with pytest.raises(CaptureError) as refused:
        _decoded_properties(_batch('{"ok": 1}', '{"x": 1e400}'))
    assert refused.value.status_code == 400


def test_nul_and_lone_surrogates_are_replaced_in_a_batch_orjson_would_refuse() -> None:
    got = _decoded_properties(_batch('{"k\\u0000": "\\ud800", "n": [{"x": "a\\u0000"}]}'))
    assert got == [{"k\ufffd": "\ufffd", "n": [{"x": "a\ufffd"}]}]


@pytest.mark.parametrize(
    "raw",
    [
        "0190a0b4-1c2d-7e3f-8a4b-5c6d7e8f9012",
        "0190A0B4-1C2D-7E3F-8A4B-5C6D7E8F9012",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "{0190a0b4-1c2d-7e3f-8a4b-5c6d7e8f9012}",
        "urn:uuid:0190a0b4-1c2d-7e3f-8a4b-5c6d7e8f9012",
        "0190a0b41c2d7e3f8a4b5c6d7e8f9012",
    ],
)
def test_event_uuids_read_as_uuid_reads_them(raw: str) -> None:
    from app.ingestion.service import _event_uuid

    parsed = _event_uuid(raw)
    assert isinstance(parsed, uuid.UUID)
    expected = uuid.UUID(raw)
    assert parsed == expected and parsed.bytes == expected.bytes and str(parsed) == str(expected)
