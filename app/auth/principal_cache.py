"""A short per-process memory of who a key is on a team: the key, its user, the team and the membership level
that one `get_principal_for_team` statement found, kept `ttl` seconds (TILECAST_AUTH_CACHE_TTL_S, at most 5).

Each worker process keeps its own: a key deleted or rescoped, a user deactivated or a membership changed in
the database is refused (or seen with its new rights) by every process within `ttl` seconds. Only keys that
were found are remembered; an unknown key is looked up every time. The rows are kept as column values, never
as ORM objects: each request gets its own instances, detached, holding the columns as if just loaded (no
statement). Handlers only read them (an object that refers to one, `created_by = access.user`, adds it to
its own session as it is); attaching them up front would cost three times as much as building them.
"""

import time
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.models import PersonalAPIKey, Team, User

MAX_TTL_S = 5.0
# More (key, team) pairs than this in one TTL: the memory starts again empty (bounded, and simple).
MAX_ENTRIES = 10_000

Found = tuple[PersonalAPIKey, Team | None, int | None]


def _columns(obj: Any) -> dict[str, Any]:
    values = {}
    for attr in inspect(type(obj)).column_attrs:
        value = getattr(obj, attr.key)
        values[attr.key] = list(value) if isinstance(value, list) else value
    return values


def _instance(cls: Any, values: dict[str, Any]) -> Any:
    """A detached instance holding `values` as loaded (no change to flush), as the loading of a row makes it:
    the columns straight into its `__dict__` (a fifth of the cost of the constructor and attribute sets)."""
    obj = inspect(cls).class_manager.new_instance()
    obj.__dict__.update({k: list(v) if isinstance(v, list) else v for k, v in values.items()})
    make_transient_to_detached(obj)
    return obj


class PrincipalCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = min(ttl, MAX_TTL_S)
        self._entries: dict[tuple[str, int | None], tuple[float, Any, Any, Any, int | None]] = {}

    def get(self, secure_value: str, team_id: int | None) -> Found | None:
        """The principal remembered for the key on this team, as new detached instances; None when it is not
        remembered (or no longer)."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get((secure_value, team_id))
        if entry is None:
            return None
        expires, key_values, user_values, team_values, level = entry
        if time.monotonic() >= expires:
            del self._entries[(secure_value, team_id)]
            return None
        key, user = _instance(PersonalAPIKey, key_values), _instance(User, user_values)
        set_committed_value(key, "user", user)
        team = None if team_values is None else _instance(Team, team_values)
        return key, team, level

    def put(self, secure_value: str, team_id: int | None, found: Found) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        key, team, level = found
        self._entries[(secure_value, team_id)] = (
            time.monotonic() + self.ttl,
            _columns(key),
            _columns(key.user),
            None if team is None else _columns(team),
            level,
        )

    def used(self, secure_value: str, team_id: int | None, key: PersonalAPIKey) -> None:
        """The key's use was just recorded: remembered, so that the next requests do not record it again."""
        entry = self._entries.get((secure_value, team_id))
        if entry is not None:
            entry[1]["last_used_at"] = key.last_used_at

    def forget(self, secure_value: str) -> None:
        """Drop everything remembered of a key (rolled, deleted or rescoped here): this process stops using
        its old rows at once."""
        for entry in [entry for entry in self._entries if entry[0] == secure_value]:
            del self._entries[entry]

    def clear(self) -> None:
        self._entries.clear()
