"""Response schemas shared by several resources."""

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from app.models import User


class UserBasic(BaseModel):
    """PostHog's `UserBasic`: how a user appears inside other objects (`created_by`, collaborators)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    uuid: uuid.UUID
    distinct_id: str | None
    first_name: str
    last_name: str
    email: str
    is_email_verified: bool | None
    hedgehog_config: dict[str, Any] | None
    role_at_organization: str | None

    @classmethod
    def of(cls, user: "User | UserBasic | None") -> "UserBasic | None":
        if user is None or isinstance(user, UserBasic):
            return user
        return cls.model_validate(user)

    @classmethod
    def from_columns(cls, values: Sequence[Any]) -> "UserBasic | None":
        """From the values of `USER_BASIC_FIELDS` as the database returned them (trusted: not validated
        again); None when the user is absent (an outer join's NULL id)."""
        if values[0] is None:
            return None
        return cls.model_construct(**dict(zip(USER_BASIC_FIELDS, values, strict=True)))


# The columns of a `UserBasic`, in order (what `UserBasic.from_columns` takes).
USER_BASIC_FIELDS = tuple(UserBasic.model_fields)


T = TypeVar("T")


class Paginated(BaseModel, Generic[T]):
    """DRF's limit/offset page: absolute `next`/`previous` links, or null at either end."""

    count: int = Field(examples=[123])
    next: str | None = Field(examples=["http://api.example.org/accounts/?offset=400&limit=100"])
    previous: str | None = Field(examples=["http://api.example.org/accounts/?offset=200&limit=100"])
    results: list[T]
