"""Response schemas shared by several resources."""

import uuid
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
    def of(cls, user: User | None) -> "UserBasic | None":
        return None if user is None else cls.model_validate(user)


T = TypeVar("T")


class Paginated(BaseModel, Generic[T]):
    """DRF's limit/offset page: absolute `next`/`previous` links, or null at either end."""

    count: int = Field(examples=[123])
    next: str | None = Field(examples=["http://api.example.org/accounts/?offset=400&limit=100"])
    previous: str | None = Field(examples=["http://api.example.org/accounts/?offset=200&limit=100"])
    results: list[T]
