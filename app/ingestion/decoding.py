"""From request bytes to a JSON payload, in the order PostHog's capture decodes (capture-and-trends.md §A.3):
query `data` or body, form field, base64, gzip (by hint or magic bytes), UTF-8, JSON."""

import base64
import binascii
import json
import re
import zlib
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from app.ingestion.errors import CaptureError

GZIP_MAGIC = b"\x1f\x8b\x08"
_GZIP_HINTS = frozenset({"gzip", "gzip-js"})
_LZ_HINTS = frozenset({"lz64", "lz-string"})
_BASE64_HINTS = frozenset({"base64", "b64"})
_FORM_PREFIXES = (b"data=", b"ver=", b"_=", b"ip=", b"compression=")
_BASE64_ALPHABET = re.compile(rb"[A-Za-z0-9+/=]*")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A posthog-js form carries a handful of fields; anything beyond this is not a capture form.
_MAX_FORM_FIELDS = 32


@dataclass(frozen=True)
class RawRequest:
    """What capture needs from an HTTP request, independent of the web framework."""

    path: str
    query: Mapping[str, str]
    content_type: str | None
    content_encoding: str | None
    body: bytes


class PayloadTooLarge(CaptureError):
    def __init__(self, what: str, limit: int) -> None:
        super().__init__(413, f"maximum event size exceeded: {what} is larger than {limit} bytes")


async def read_body(chunks: AsyncIterable[bytes], declared_length: str | None, limit: int) -> bytes:
    """The whole body, refusing as soon as it is known to exceed `limit` (never buffering more)."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise PayloadTooLarge("request body", limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge("request body", limit)
    return bytes(body)


def looks_like_base64(data: bytes) -> bool:
    """PostHog's test: the first 128 bytes are in the base64 alphabet and the length is a multiple of 4."""
    return bool(data) and len(data) % 4 == 0 and _BASE64_ALPHABET.fullmatch(data[:128]) is not None


def _b64decode_or_keep(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        return data


def _hint(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _repair_form_data(value: str) -> bytes:
    # Older posthog-js put base64 in the form without escaping '+', which url-decoding turned into ' '.
    data = value.encode("utf-8", "surrogatepass")
    repaired = data.replace(b" ", b"+")
    return repaired if looks_like_base64(repaired) else data


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=_MAX_FORM_FIELDS,
            encoding="utf-8",
            errors="strict",
        )
    except ValueError as exc:  # UnicodeDecodeError included
        raise CaptureError(400, "expected form data with a data field") from exc
    return dict(fields)


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate one or more gzip members, stopping with 413 as soon as the output passes `limit`."""
    out = bytearray()
    remaining = data
    try:
        while remaining:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += inflater.decompress(remaining, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise PayloadTooLarge("decompressed payload", limit)
            if not inflater.eof:
                raise CaptureError(400, "failed to decompress request body: truncated gzip data")
            remaining = inflater.unused_data
    except zlib.error as exc:
        raise CaptureError(400, f"failed to decompress request body: {exc}") from exc
    return bytes(out)


def decode_payload(request: RawRequest, limit: int) -> bytes:
    """The JSON bytes a request carries, however it was wrapped."""
    query_data = request.query.get("data")
    hint = _hint(request.query.get("compression"))
    from_form = False
    if query_data:
        raw = _repair_form_data(query_data)
        from_form = True
    else:
        raw = request.body
        if not raw:
            raise CaptureError(400, "request missing data payload")
        if _media_type(request.content_type) == FORM_CONTENT_TYPE or raw.startswith(b"data="):
            fields = _parse_form(raw)
            data = fields.get("data")
            if not data:
                raise CaptureError(400, "expected form data with a data field")
            hint = hint or _hint(fields.get("compression"))
            raw = _repair_form_data(data)
            from_form = True
    hint = hint or _hint(request.content_encoding)

    if hint not in _LZ_HINTS and (from_form or not raw.startswith(_FORM_PREFIXES)) and looks_like_base64(raw):
        raw = _b64decode_or_keep(raw)
    elif hint in _BASE64_HINTS:
        raw = _b64decode_or_keep(raw)

    if hint in _GZIP_HINTS or raw.startswith(GZIP_MAGIC):
        raw = gunzip(raw, limit)
    elif hint in _LZ_HINTS:
        raise CaptureError(400, "lz-string compression is not supported: send gzip or plain JSON")
    elif len(raw) > limit:
        raise PayloadTooLarge("decoded payload", limit)

    # The legacy endpoints (not /i/v0/e/ nor /batch/) accept base64 once more after decompression.
    if request.path.rstrip("/") in ("/e", "/capture") and looks_like_base64(raw):
        raw = _b64decode_or_keep(raw)
    return raw


class _NonFiniteNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise _NonFiniteNumber(f"{name} is not a valid JSON value")


_decoder = json.JSONDecoder(parse_constant=_refuse_constant)
_scanstring: Any = json.decoder.scanstring  # type: ignore[attr-defined]  # public since 2.6, untyped
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BLANKS = frozenset(" \t\n\r")
_scan: Any = _decoder.scan_once  # type: ignore[attr-defined]  # set in __init__, untyped


# Payloads up to this size are parsed whole; larger ones event by event.
WALK_ABOVE_BYTES = 1024 * 1024


class TooManyEvents(CaptureError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"maximum event count exceeded: more than {limit} events in one request")


# jsonb refuses NUL and lone surrogates, which JSON can only carry as `\u` escapes: a payload with none of
# these escapes needs no cleaning (the common case, checked in one scan of its bytes).
_SUSPICIOUS_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# orjson reads an integer past 64 bits as a float (the standard library keeps it exact): a payload with a
# run of 19 digits (in a number, or just in a string) is left to the standard library. Found by mapping every
# digit to 0 and looking for 19 zeros: twenty times faster than a regex over digits.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


def _has_long_digit_run(raw: bytes) -> bool:
    return _LONG_DIGITS in raw.translate(_DIGITS_TO_ZERO)


def may_hold_refused_characters(raw: bytes) -> bool:
    """Whether the JSON text may carry NUL or lone surrogates (as escapes), which jsonb refuses."""
    return b"\\u" in raw and _SUSPICIOUS_ESCAPE.search(raw) is not None


def parse_json(raw: bytes, max_events: int) -> tuple[Any, bool]:
    """The parsed payload, and whether it was parsed by orjson with nothing to clean (else it may hold NUL
    or lone surrogates, which jsonb refuses, and floats too large for a double, which orjson would write as
    null: the caller cleans it and encodes it with the standard library).

    A payload up to `WALK_ABOVE_BYTES` without suspicious escapes or long digit runs is parsed by orjson,
    whose result is then exactly `json.loads`'s; anything orjson refuses is parsed again by the standard
    library, which gives the answer (it also refuses, with its own message, or, for 1e400, returns inf).
    Past `WALK_ABOVE_BYTES`, a list of events (the payload itself, or an envelope's `batch`) is read one
    event at a time and refused as soon as it holds more than `max_events`: a 40 KB gzip body can carry
    400,000 tiny events, which would take hundreds of megabytes and a long, uninterruptible parse. Every
    value is parsed by the standard library's decoder, so the result is exactly `json.loads`'s."""
    payload: Any
    small = len(raw) <= WALK_ABOVE_BYTES
    if small and not may_hold_refused_characters(raw) and not _has_long_digit_run(raw):
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            _check_count(payload, max_events)
            return payload, True
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptureError(400, "failed to parse request: payload is not valid UTF-8") from exc
    if small:
        # Small enough to parse whole in a few milliseconds (and faster so: the decoder shares key strings
        # across the document), then count.
        try:
            payload = _decoder.decode(text)
        except (ValueError, RecursionError) as exc:
            raise CaptureError(400, f"failed to parse request: {exc}") from exc
        _check_count(payload, max_events)
        return payload, False
    try:
        i = _skip(text, 0)
        if text.startswith("[", i):
            payload, i = _events(text, i, max_events)
        elif text.startswith("{", i):
            payload, i = _envelope(text, i, max_events)
        else:
            payload, i = _value(text, i)
        if _skip(text, i) != len(text):
            raise json.JSONDecodeError("Extra data", text, i)
    except (ValueError, RecursionError) as exc:
        raise CaptureError(400, f"failed to parse request: {exc}") from exc
    return payload, False


def _check_count(payload: Any, max_events: int) -> None:
    events = payload.get("batch") if isinstance(payload, dict) else payload
    if isinstance(events, list) and len(events) > max_events:
        raise TooManyEvents(max_events)


def _skip(text: str, i: int) -> int:
    if text[i : i + 1] in _BLANKS:  # mostly nothing, or one space: no regex call for those
        match = _WHITESPACE.match(text, i)
        return match.end() if match else i
    return i


def _expect(text: str, i: int, char: str, what: str) -> int:
    if not text.startswith(char, i):
        raise json.JSONDecodeError(f"Expecting {what}", text, i)
    return _skip(text, i + 1)


def _value(text: str, i: int) -> tuple[Any, int]:
    try:
        return _scan(text, i)  # type: ignore[no-any-return]
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None


def _events(text: str, i: int, max_events: int) -> tuple[list[Any], int]:
    """The array at `text[i]`, one element at a time, refused past `max_events` elements."""
    events: list[Any] = []
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return events, i + 1
    while True:
        if len(events) == max_events:
            raise TooManyEvents(max_events)
        event, i = _value(text, i)
        events.append(event)
        i = _skip(text, i)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
        elif text.startswith("]", i):
            return events, i + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)


def _envelope(text: str, i: int, max_events: int) -> tuple[dict[str, Any], int]:
    """The object at `text[i]`: a batch envelope's `batch` read by `_events`, every other value whole."""
    obj: dict[str, Any] = {}
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        return obj, i + 1
    while True:
        if not text.startswith('"', i):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = _scanstring(text, i + 1)
        i = _expect(text, _skip(text, i), ":", "':' delimiter")
        if key == "batch" and text.startswith("[", i):
            obj[key], i = _events(text, i, max_events)
        else:
            obj[key], i = _value(text, i)
        i = _skip(text, i)
        if text.startswith("}", i):
            return obj, i + 1
        i = _expect(text, i, ",", "',' delimiter")
