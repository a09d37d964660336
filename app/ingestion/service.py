"""Decoding capture payloads and turning raw events into rows (capture-and-trends.md §A)."""

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.ingestion import repository
from app.ingestion.repository import NewEvent


class CaptureError(Exception):
    """A request capture refuses: status and a plain-text message, as PostHog's capture answers."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


FUTURE_CLAMP = timedelta(hours=23)
MAX_DISTINCT_ID = 200


def decode_body(body: bytes, compression: str | None) -> Any:
    if compression in ("gzip", "gzip-js") or body[:3] == b"\x1f\x8b\x08":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise CaptureError(400, "failed to decompress request body") from exc
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise CaptureError(400, f"failed to parse request: {exc}") from exc


def _parse_timestamp(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_timestamp(raw: dict[str, Any], now: datetime) -> datetime:
    ts = _parse_timestamp(raw.get("timestamp")) or now
    if ts - now > FUTURE_CLAMP:
        ts = now
    return ts


def _distinct_id(raw: dict[str, Any]) -> str:
    value = raw.get("distinct_id", raw.get("$distinct_id"))
    if value is None:
        value = (raw.get("properties") or {}).get("distinct_id")
    if value is None or value == "":
        raise CaptureError(400, "event submitted without a distinct_id")
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text[:MAX_DISTINCT_ID]


def to_event(raw: Any, now: datetime) -> NewEvent:
    if not isinstance(raw, dict):
        raise CaptureError(400, "failed to parse request: an event must be an object")
    name = raw.get("event")
    if not isinstance(name, str) or not name:
        raise CaptureError(400, "event submitted with an empty event name")
    properties = raw.get("properties") or {}
    if not isinstance(properties, dict):
        raise CaptureError(400, "failed to parse request: properties must be an object")
    raw_uuid = raw.get("uuid")
    try:
        event_uuid = uuid.UUID(raw_uuid) if raw_uuid else uuid.uuid4()
    except (ValueError, TypeError, AttributeError) as exc:
        raise CaptureError(400, "failed to parse request: invalid uuid") from exc
    return NewEvent(
        uuid=event_uuid,
        event=name[:400],
        distinct_id=_distinct_id(raw),
        timestamp=event_timestamp(raw, now),
        properties=properties,
    )


def split_payload(payload: Any) -> tuple[str | None, list[Any]]:
    """The envelope's token (if any) and the raw events: an array, a `batch` envelope, or one event."""
    if isinstance(payload, list):
        return None, payload
    if isinstance(payload, dict):
        if isinstance(payload.get("batch"), list):
            token = payload.get("api_key") or payload.get("token")
            return (token if isinstance(token, str) else None), payload["batch"]
        return None, [payload]
    raise CaptureError(400, "failed to parse request: expected an event, an array or a batch")


def _event_token(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    for value in (raw.get("api_key"), raw.get("token"), raw.get("$token")):
        if isinstance(value, str) and value:
            return value
    properties = raw.get("properties")
    token = properties.get("token") if isinstance(properties, dict) else None
    return token if isinstance(token, str) and token else None


async def capture(session: AsyncSession, payload: Any, now: datetime) -> int:
    """Store the payload's events for the team its project key names; returns how many were given."""
    token, raws = split_payload(payload)
    if not raws:
        raise CaptureError(400, "request holds no event")
    if token is None:
        tokens = {t for t in (_event_token(r) for r in raws) if t}
        if not tokens:
            raise CaptureError(401, "event submitted without an api_key")
        if len(tokens) > 1:
            raise CaptureError(401, "batch submitted with inconsistent api_key values")
        token = tokens.pop()
    team = await repository.get_team_by_token(session, token)
    if team is None:
        raise CaptureError(401, "API key is not valid: unknown project API key")
    events = [to_event(raw, now) for raw in raws]
    await repository.insert_events(session, team.id, events)
    return len(events)
