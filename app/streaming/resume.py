"""The SSE `id:` of `stream_tiles` messages: which tiles a client already has, so that a reconnection
(`Last-Event-ID`) sends only the missing ones.

Tiles arrive in the order they finish, so a position in the stream says nothing: each message's id carries
the whole set of tile ids delivered so far, and the dashboard's version. The format (documented for users in
docs/compatibility.md):

    1.<version>.<tiles>

- `1`: this format.
- `<version>`: 8 hexadecimal digits, a hash of what every delivered tile depends on: the dashboard, its
  effective filters and variables (stored ones with the request's overrides merged over them) and the
  layout the tiles are ordered by. A reconnection whose version differs gets every tile again.
- `<tiles>`: the delivered tile ids, as unpadded base64url of unsigned LEB128 varints. The ids, sorted, form
  runs of consecutive ids; each run is two varints: its first id less the previous run's last id less one
  (the first run: its first id less one), then its length less one. A dashboard's tiles are mostly created
  together, with consecutive ids: 500 of them take a few bytes; 500 scattered ids at most about 3 KB.

Ids are read defensively: anything malformed, too long or out of range is no id at all (a fresh stream).
Decoded runs are kept as runs (never expanded), so an id cannot make the server build a large set.
"""

import base64
import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.query.cache import canonical_json

FORMAT = "1"
MAX_ID_LENGTH = 16_384  # characters; longer is not an id this server wrote
MAX_TILE_ID = 2**31 - 1  # tile ids are PostgreSQL integers


def dashboard_version(dashboard_id: int, filters: Any, variables: Any, layout_size: str) -> str:
    text = canonical_json([dashboard_id, filters, variables, layout_size])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _varint(value: int, out: bytearray) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def encode(version: str, tile_ids: Iterable[int]) -> str:
    """The id of a message sent once `tile_ids` are delivered."""
    out = bytearray()
    previous_end = 0
    run_start: int | None = None
    run_end = 0
    for tile_id in sorted(set(tile_ids)):
        if run_start is not None and tile_id == run_end + 1:
            run_end = tile_id
            continue
        if run_start is not None:
            _varint(run_start - previous_end - 1, out)
            _varint(run_end - run_start, out)
            previous_end = run_end
        run_start = run_end = tile_id
    if run_start is not None:
        _varint(run_start - previous_end - 1, out)
        _varint(run_end - run_start, out)
    tiles = base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode("ascii")
    return f"{FORMAT}.{version}.{tiles}"


@dataclass(frozen=True)
class Delivered:
    """The tiles a client has (as runs of ids), at a dashboard version."""

    version: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def __contains__(self, tile_id: object) -> bool:
        if not isinstance(tile_id, int):
            return False
        at = bisect.bisect_right(self.starts, tile_id) - 1
        return at >= 0 and tile_id <= self.ends[at]


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    for _ in range(5):  # 35 bits: enough for any tile id
        if at >= len(data):
            raise ValueError("truncated")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
    raise ValueError("varint too long")


def decode(last_event_id: str | None) -> Delivered | None:
    """The tiles and version an id says a client has, or None when it is not an id of this format."""
    if not last_event_id or len(last_event_id) > MAX_ID_LENGTH or not last_event_id.isascii():
        return None
    parts = last_event_id.split(".")
    if len(parts) != 3 or parts[0] != FORMAT:
        return None
    version, tiles = parts[1], parts[2]
    if len(version) != 8 or any(c not in "0123456789abcdef" for c in version):
        return None
    try:
        data = base64.urlsafe_b64decode(tiles + "=" * (-len(tiles) % 4))
    except ValueError:
        return None
    starts: list[int] = []
    ends: list[int] = []
    previous_end, at = 0, 0
    try:
        while at < len(data):
            gap, at = _read_varint(data, at)
            length, at = _read_varint(data, at)
            start = previous_end + 1 + gap
            end = start + length
            if end > MAX_TILE_ID:
                return None
            starts.append(start)
            ends.append(end)
            previous_end = end
    except ValueError:
        return None
    return Delivered(version=version, starts=tuple(starts), ends=tuple(ends))
