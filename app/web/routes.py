"""The routes of `app/web/`: the page's assets and the offline documentation's."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from app.errors import NotFound
from app.web.docs import DOCS_PREFIX, OWN_ASSETS, VENDOR_ASSETS, docs_asset
from app.web.pages import ASSETS, STATIC_PREFIX, asset_bytes

router = APIRouter(include_in_schema=False)

# Versioned URLs (`?v=<digest>`) change with the content; an hour keeps unversioned ones fresh enough.
_CACHE = "public, max-age=3600"


def _asset(content: bytes, media_type: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff"},
    )


@router.get(STATIC_PREFIX + "/{name}")
async def web_asset(name: Annotated[str, Path()]) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound()
    return _asset(asset_bytes(name), media_type)


@router.get(DOCS_PREFIX + "/{name}")
async def docs_asset_route(name: Annotated[str, Path()]) -> Response:
    media_type = VENDOR_ASSETS.get(name) or OWN_ASSETS.get(name)
    if media_type is None:
        raise NotFound()
    return _asset(docs_asset(name), media_type)
