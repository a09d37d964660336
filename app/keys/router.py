"""`/api/personal_api_keys/`: the caller's own personal API keys. Thin handlers over `app.keys.service`."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response, status

from app.auth.dependencies import Principal, PrincipalDep, key_scoped
from app.auth.principal_cache import PrincipalCache
from app.db import SessionDep
from app.keys import service
from app.keys.schemas import PersonalAPIKey, PersonalAPIKeyCreate, PersonalAPIKeyUpdate

router = APIRouter(prefix="/api/personal_api_keys", tags=["personal_api_keys"])

KeyRead = Annotated[Principal, key_scoped("personal_api_key:read")]
KeyWrite = Annotated[Principal, key_scoped("personal_api_key:write")]
KeyId = Annotated[
    str, Path(max_length=50, description="The key's id, or `@current` for the key making the request.")
]


def _principals(request: Request) -> PrincipalCache:
    principals: PrincipalCache = request.app.state.principals
    return principals


PrincipalsDep = Annotated[PrincipalCache, Depends(_principals)]


@router.get("/", name="personal_api_keys_list")
async def list_keys(session: SessionDep, principal: KeyRead) -> list[PersonalAPIKey]:
    """The caller's keys, newest first (their masks; never the keys themselves)."""
    return await service.list_keys(session, principal)


@router.post("/", name="personal_api_keys_create", status_code=status.HTTP_201_CREATED)
async def create_key(session: SessionDep, principal: KeyWrite, data: PersonalAPIKeyCreate) -> PersonalAPIKey:
    """Create a key (at most 10 per user). The answer holds the key itself, `value`, this once."""
    return await service.create_key(session, principal, data)


@router.get("/@current/", name="personal_api_keys_current_retrieve")
async def retrieve_current_key(principal: PrincipalDep) -> PersonalAPIKey:
    """The key making the request: its scopes and limits (any key may read itself)."""
    return service.current_key(principal)


@router.get("/{id}/", name="personal_api_keys_retrieve")
async def retrieve_key(id: KeyId, session: SessionDep, principal: KeyRead) -> PersonalAPIKey:
    """One of the caller's keys."""
    return await service.retrieve_key(session, principal, id)


@router.patch("/{id}/", name="personal_api_keys_partial_update")
async def update_key(
    id: KeyId,
    session: SessionDep,
    principal: KeyWrite,
    principals: PrincipalsDep,
    data: Annotated[PersonalAPIKeyUpdate, Body(default_factory=PersonalAPIKeyUpdate)],
) -> PersonalAPIKey:
    """Change a key's label, scopes or limits (never wider than the key making the request)."""
    return await service.update_key(session, principal, id, data, principals)


@router.delete("/{id}/", name="personal_api_keys_destroy", status_code=status.HTTP_204_NO_CONTENT)
async def delete_key(
    id: KeyId, session: SessionDep, principal: KeyWrite, principals: PrincipalsDep
) -> Response:
    """Delete a key: it stops working at once, and the browser sessions signed in with it end."""
    await service.delete_key(session, principal, id, principals)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{id}/roll/", name="personal_api_keys_roll_create")
async def roll_key(
    id: KeyId, session: SessionDep, principal: KeyWrite, principals: PrincipalsDep
) -> PersonalAPIKey:
    """Give a key a new value (returned this once): the old value stops working at once, and the browser
    sessions signed in with it end."""
    return await service.roll_key(session, principal, id, principals)
