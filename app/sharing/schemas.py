"""Sharing payloads, field for field as PostHog's (§ sharing in docs/compatibility.md for the differences)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from app.errors import ErrorBody
from app.validation import SafeStr

INVALID_SETTINGS = "Invalid settings format"


class SharingSettings(BaseModel):
    """The known display flags of a share; unknown keys are dropped, as PostHog's model does."""

    model_config = ConfigDict(extra="ignore")

    whitelabel: StrictBool | None = None
    noHeader: StrictBool | None = None
    showInspector: StrictBool | None = None
    legend: StrictBool | None = None
    detailed: StrictBool | None = None
    hideExtraDetails: StrictBool | None = None


FLAGS = tuple(SharingSettings.model_fields)


def clean_settings(value: Any) -> dict[str, Any] | None:
    """The settings to store: the known flags that were given; a wrong type anywhere is 400."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ErrorBody(400, INVALID_SETTINGS)
    try:
        parsed = SharingSettings.model_validate(value)
    except ValidationError:
        raise ErrorBody(400, INVALID_SETTINGS) from None
    return parsed.model_dump(exclude_unset=True)


class SharingUpdate(BaseModel):
    """`PATCH …/sharing/`: any of the three."""

    enabled: bool | None = None
    # Validated by `clean_settings` (PostHog's exact 400), so any JSON is let through here.
    settings: Any = None
    password_required: bool | None = None


class SharePasswordOut(BaseModel):
    id: int
    created_at: datetime
    note: str
    created_by_email: str
    is_active: bool


class SharingConfiguration(BaseModel):
    created_at: datetime | None
    enabled: bool
    access_token: str
    settings: dict[str, Any] | None
    password_required: bool
    share_passwords: list[SharePasswordOut]


class SharePasswordCreate(BaseModel):
    """`POST …/sharing/passwords/`: a blank or missing password is generated."""

    raw_password: SafeStr | None = Field(default=None, max_length=1024)
    note: SafeStr | None = Field(default=None, max_length=100)


class SharePasswordCreated(BaseModel):
    """201: the password in plain text, shown this once."""

    id: int
    password: str
    note: str
    created_at: datetime
    created_by_email: str


class Unlock(BaseModel):
    password: str
