"""Response schemas shared by several resources."""

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from app.models import User

M = TypeVar("M", bound=BaseModel)

# Per model: its field names in order, the default of each optional field ((True, factory) or (False,
# value)) and the defaults of its private attributes.
_Plan = tuple[tuple[str, ...], dict[str, tuple[bool, Any]], dict[str, Any]]
_PLANS: dict[type[BaseModel], _Plan] = {}


def _plan(cls: type[BaseModel]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        defaults: dict[str, tuple[bool, Any]] = {}
        for name, field in cls.model_fields.items():
            if field.default_factory is not None:
                defaults[name] = (True, field.default_factory)
            elif not field.is_required():
                defaults[name] = (False, field.default)
        private = {name: attr.get_default() for name, attr in cls.__private_attributes__.items()}
        plan = _PLANS[cls] = (tuple(cls.model_fields), defaults, private)
    return plan


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """`cls.model_construct(**values)` for values already of their fields' types, without its per-call
    costs (it inspects every default factory's signature): the fields in declaration order (the order of
    the JSON), the defaults of those not given. Nothing is validated: only for trusted values."""
    names, defaults, private = _plan(cls)
    if tuple(values) == names:
        fields = values  # every field, in order: taken as it is
    else:
        fields = {}
        for name in names:
            if name in values:
                fields[name] = values[name]
            else:
                is_factory, default = defaults[name]  # a KeyError: a required field not given
                fields[name] = default() if is_factory else default
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", dict(private) if private else None)
    return model


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
        return trusted(cls, dict(zip(USER_BASIC_FIELDS, values, strict=True)))


# The columns of a `UserBasic`, in order (what `UserBasic.from_columns` takes).
USER_BASIC_FIELDS = tuple(UserBasic.model_fields)


T = TypeVar("T")


class Paginated(BaseModel, Generic[T]):
    """DRF's limit/offset page: absolute `next`/`previous` links, or null at either end."""

    count: int = Field(examples=[123])
    next: str | None = Field(examples=["http://api.example.org/accounts/?offset=400&limit=100"])
    previous: str | None = Field(examples=["http://api.example.org/accounts/?offset=200&limit=100"])
    results: list[T]
