"""Personal API keys as PostHog's `PersonalAPIKeySerializer` shows and takes them."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.auth.keys import is_valid_scope
from app.validation import IdList, SafeStr, reject_nul

MAX_LABEL_CHARS = 40
MAX_SCOPES = 200


def _label(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "This field may not be blank.")
    return value


def _scopes(value: list[str]) -> list[str]:
    if not value:
        raise PydanticCustomError("empty", "This list may not be empty.")
    for scope in value:
        if not is_valid_scope(scope):
            raise PydanticCustomError("invalid", "Invalid scope: {scope}", {"scope": scope})
    return list(dict.fromkeys(value))


Label = Annotated[
    str, StringConstraints(max_length=MAX_LABEL_CHARS), AfterValidator(reject_nul), AfterValidator(_label)
]
Scopes = Annotated[list[SafeStr], Field(max_length=MAX_SCOPES), AfterValidator(_scopes)]
OrganizationIds = Annotated[list[SafeStr], Field(max_length=MAX_SCOPES)]


class PersonalAPIKey(BaseModel):
    """A key: `value` (the key itself) only in the answers to create and roll, null everywhere else."""

    id: str
    label: str
    value: str | None = None
    mask_value: str
    created_at: datetime
    last_used_at: datetime | None
    user_id: int
    scopes: list[str] = Field(description='The key\'s scopes; `["*"]` for a key that may do anything.')
    scoped_teams: list[int] = Field(description="The projects the key is limited to; empty: no limit.")
    scoped_organizations: list[str] = Field(
        description="The organizations the key is limited to; empty: no limit."
    )
    last_rolled_at: datetime | None


class PersonalAPIKeyCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    label: Label
    scopes: Scopes
    scoped_teams: IdList | None = None
    scoped_organizations: OrganizationIds | None = None


class PersonalAPIKeyUpdate(BaseModel):
    """`PATCH`: the fields given change; a key can never be made wider than the key that changes it."""

    model_config = ConfigDict(extra="ignore")

    label: Label | None = None
    scopes: Scopes | None = None
    scoped_teams: IdList | None = None
    scoped_organizations: OrganizationIds | None = None
