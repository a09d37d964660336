"""Event and property definitions, kept by capture in the same statement (and transaction) as the events.

A steady stream of events writes nothing here: each process remembers, per project key, the event names,
property keys and (event, property) pairs already stored, and a request sends to the database only what is
new to it, plus an event name's `last_seen_at` when this process last wrote it an hour ago or more (when
the keys stored without a type are also looked at again, on that name's events). What a
request sends is learnt only once its transaction commits, so a rolled-back request (a 429, a lost
connection) leaves nothing believed stored that is not.

Property types are inferred as PostHog's ingestion does: numbers are `Numeric` (or `DateTime` when the key
names a time and the value is a Unix time of the last six months or later), booleans and the strings
"true"/"false" are `Boolean`, date-like strings are `DateTime`, other strings `String`; null, objects and
lists have no type until a typed value comes.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from app.models import PROPERTY_EVENT, PROPERTY_PERSON

MAX_NAME = 400  # the columns' length: a longer key is not recorded (a truncated one would be wrong)
# Objects that update persons, not event properties.
NOT_RECORDED = frozenset({"$set", "$set_once", "$unset"})
LAST_SEEN_EVERY_SECONDS = 3600.0
# A process forgets everything past this many remembered names and pairs (a flood of random keys must not
# grow memory for ever); the next requests write their definitions again, which changes nothing stored.
MAX_REMEMBERED = 200_000

_SIX_MONTHS_SECONDS = 15_768_000
_TIME_KEY_HINTS = ("time", "timestamp", "date", "_at", "-at", "createdat", "updatedat")
_ALWAYS_STRING_PREFIXES = ("utm_", "$feature/", "$survey_response")
_DATE = re.compile(
    r"(?:\d{4}[-/]\d{1,2}[-/]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE,
)


def property_type(key: str, value: Any, now_seconds: float) -> str | None:
    """PostHog's inferred `property_type` of `key` from one of its values (None: no type yet)."""
    lower = key.lower()
    if lower.startswith(_ALWAYS_STRING_PREFIXES) or lower == "$feature_flag_response":
        return "String"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        if any(hint in lower for hint in _TIME_KEY_HINTS) and value >= now_seconds - _SIX_MONTHS_SECONDS:
            return "DateTime"
        return "Numeric"
    if isinstance(value, str):
        text = value.strip()
        if text in ("true", "TRUE", "false", "FALSE"):
            return "Boolean"
        if len(text) >= 10 and _DATE.fullmatch(text):
            return "DateTime"
        return "String"
    return None


def _recorded(key: str) -> bool:
    return 0 < len(key) <= MAX_NAME and key not in NOT_RECORDED


class NewDefinitions(NamedTuple):
    """What one request adds, as the parallel arrays the capture statement takes (each sorted, so that
    concurrent requests lock the same rows in the same order and never deadlock)."""

    event_names: list[str]  # new, or their `last_seen_at` is due
    property_names: list[str]
    property_kinds: list[int]  # PROPERTY_EVENT or PROPERTY_PERSON
    property_types: list[str | None]
    pair_events: list[str]
    pair_properties: list[str]
    # Learnt after the commit but never written (keys that are not recorded), so that events carrying them
    # do not look new on every request.
    unrecorded_pairs: list[tuple[str, str]]
    seen_at: float  # the receive time (Unix seconds) the request's `last_seen_at` are

    @property
    def writes(self) -> bool:
        return bool(self.event_names or self.property_names or self.pair_events)


@dataclass
class _Team:
    last_written: dict[str, float] = field(default_factory=dict)  # event name → its last `last_seen_at`
    pairs: dict[str, set[str]] = field(default_factory=dict)  # event name → property keys seen on it
    # (kind, key) → stored with a property type (a key stored untyped is sent again with a typed value).
    properties: dict[tuple[int, str], bool] = field(default_factory=dict)
    untyped: set[str] = field(default_factory=set)  # event property keys stored without a type


class KnownDefinitions:
    """One process's memory of the definitions stored, by project key.

    Read by `new_for` (possibly in a decoding thread: lookups only) and changed by `learn` on the event
    loop after a commit."""

    def __init__(self) -> None:
        self._teams: dict[str, _Team] = {}
        self._size = 0

    def new_for(
        self,
        token: str,
        events: Sequence[tuple[str, dict[str, Any]]],
        person_properties: Iterable[tuple[str, Any]],
        now_seconds: float,
    ) -> NewDefinitions | None:
        """What `events` (name, properties) and `person_properties` (key, value) hold that this process
        has not stored yet; None when nothing."""
        team = self._teams.get(token) or _Team()
        known_pairs = team.pairs
        unknown: dict[str, dict[str, Any]] = {}  # event name → keys not known on it, with a value
        names: set[str] = set()
        for name, properties in events:
            names.add(name)
            known = known_pairs.get(name)
            # `keys() <=` compares without building a set (`issuperset` would make one per event).
            if known is None or not properties.keys() <= known:
                pending = unknown.setdefault(name, {})
                for key, value in properties.items():
                    if (known is None or key not in known) and pending.get(key) is None:
                        pending[key] = value
        last_written = team.last_written
        due = sorted(
            name
            for name in names
            if name not in last_written or now_seconds - last_written[name] >= LAST_SEEN_EVERY_SECONDS
        )
        # Keys stored untyped are looked at again with their event's hourly `last_seen_at` refresh, not on
        # every request: a steady stream pays nothing for them.
        retype: dict[str, Any] = {}
        untyped = team.untyped
        if due and untyped:
            refreshed = set(due)
            for name, properties in events:
                if name in refreshed and not untyped.isdisjoint(properties):
                    for key in untyped.intersection(properties):
                        if retype.get(key) is None:
                            retype[key] = properties[key]
        new_properties: dict[tuple[int, str], str | None] = {}
        pairs: list[tuple[str, str]] = []
        unrecorded: list[tuple[str, str]] = []
        for name, pending in unknown.items():
            for key, value in pending.items():
                if not _recorded(key):
                    unrecorded.append((name, key))
                    continue
                pairs.append((name, key))
                self._add_property(team, new_properties, PROPERTY_EVENT, key, value, now_seconds)
        for key, value in retype.items():
            self._add_property(team, new_properties, PROPERTY_EVENT, key, value, now_seconds)
        for key, value in person_properties:
            if _recorded(key):
                self._add_property(team, new_properties, PROPERTY_PERSON, key, value, now_seconds)
        if not (due or new_properties or pairs or unrecorded):
            return None
        ordered = sorted(new_properties.items())
        pairs.sort()
        return NewDefinitions(
            event_names=due,
            property_names=[key for (_, key), _ in ordered],
            property_kinds=[kind for (kind, _), _ in ordered],
            property_types=[type_ for _, type_ in ordered],
            pair_events=[event for event, _ in pairs],
            pair_properties=[key for _, key in pairs],
            unrecorded_pairs=unrecorded,
            seen_at=now_seconds,
        )

    @staticmethod
    def _add_property(
        team: _Team,
        new: dict[tuple[int, str], str | None],
        kind: int,
        key: str,
        value: Any,
        now_seconds: float,
    ) -> None:
        slot = (kind, key)
        typed = team.properties.get(slot)
        if typed or new.get(slot) is not None:
            return
        type_ = property_type(key, value, now_seconds)
        if typed is None or type_ is not None:  # unknown, or stored untyped and now typed
            new[slot] = type_

    def learn(self, token: str, new: NewDefinitions) -> None:
        """Remember what a committed request stored."""
        if self._size > MAX_REMEMBERED:
            self._teams.clear()
            self._size = 0
        team = self._teams.setdefault(token, _Team())
        for name in new.event_names:
            team.last_written[name] = new.seen_at
            team.pairs.setdefault(name, set())
        for kind, key, type_ in zip(new.property_kinds, new.property_names, new.property_types, strict=True):
            team.properties[(kind, key)] = type_ is not None
            if kind == PROPERTY_EVENT:
                if type_ is None:
                    team.untyped.add(key)
                else:
                    team.untyped.discard(key)
        for event, key in (*zip(new.pair_events, new.pair_properties, strict=True), *new.unrecorded_pairs):
            team.pairs.setdefault(event, set()).add(key)
        self._size += len(new.event_names) + len(new.property_names) + len(new.pair_events)
        self._size += len(new.unrecorded_pairs)


KNOWN = KnownDefinitions()
