"""Personal API keys: `phx_` + 35 random bytes, stored only as an unsalted sha256 (PostHog's scheme)."""

import hashlib
import re
import secrets

PERSONAL_API_KEY_PREFIX = "phx_"
PROJECT_API_KEY_PREFIX = "phc_"

# PostHog's scope objects; a scope is "<object>:read", "<object>:write" or "*".
SCOPE_OBJECTS = frozenset(
    {
        "action",
        "activity_log",
        "annotation",
        "cohort",
        "dashboard",
        "dashboard_template",
        "event_definition",
        "experiment",
        "export",
        "feature_flag",
        "insight",
        "notebook",
        "organization",
        "organization_member",
        "person",
        "personal_api_key",
        "project",
        "property_definition",
        "query",
        "sharing_configuration",
        "user",
    }
)
_SCOPE_RE = re.compile(r"^(?P<object>[a-z_]+):(?P<action>read|write)$")


def generate_personal_api_key() -> str:
    # token_urlsafe(35) carries 35 bytes of randomness, like PostHog's current keys.
    return PERSONAL_API_KEY_PREFIX + secrets.token_urlsafe(35)


def generate_project_api_key() -> str:
    return PROJECT_API_KEY_PREFIX + secrets.token_urlsafe(32)


def generate_key_id() -> str:
    return secrets.token_urlsafe(24)


def hash_key_value(value: str) -> str:
    return "sha256$" + hashlib.sha256(value.encode()).hexdigest()


def mask_key_value(value: str) -> str:
    return f"{value[:4]}...{value[-4:]}"


def is_valid_scope(scope: str) -> bool:
    """`*`, or `<object>:<read|write>` with one of PostHog's scope objects."""
    match = _SCOPE_RE.match(scope)
    return scope == "*" or (match is not None and match.group("object") in SCOPE_OBJECTS)


def parse_scopes(raw: str) -> list[str]:
    """`*` or a comma-separated list of `<object>:<read|write>`; raises ValueError naming a bad entry."""
    scopes = [part.strip() for part in raw.split(",") if part.strip()]
    if not scopes:
        raise ValueError("at least one scope is required ('*' for all)")
    for scope in scopes:
        if not is_valid_scope(scope):
            raise ValueError(f"invalid scope {scope!r}")
    return ["*"] if "*" in scopes else sorted(set(scopes))


def scope_allows(scopes: list[str] | None, required: str) -> bool:
    """Whether a key's scopes grant `required`; `:write` implies `:read`; no scopes is a legacy full key."""
    if not scopes or "*" in scopes or required in scopes:
        return True
    obj, _, action = required.partition(":")
    return action == "read" and f"{obj}:write" in scopes
