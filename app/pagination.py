"""Limit/offset pagination as DRF's LimitOffsetPagination does it, with absolute links."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.datastructures import URL

from app.config import get_settings
from app.validation import MAX_INT32


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    url: str

    def links(self, count: int) -> tuple[str | None, str | None]:
        # The caller's key never travels into a link (links get logged, shared and pasted).
        url = URL(self.url).remove_query_params("personal_api_key")
        nxt = None
        if self.offset + self.limit < count:
            nxt = str(url.include_query_params(limit=self.limit, offset=self.offset + self.limit))
        prev = None
        if self.offset > 0:
            if self.offset - self.limit <= 0:
                prev = str(url.include_query_params(limit=self.limit).remove_query_params("offset"))
            else:
                prev = str(url.include_query_params(limit=self.limit, offset=self.offset - self.limit))
        return nxt, prev


async def get_page(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_INT32, description="Number of results to return per page.")
    ] = None,
    offset: Annotated[
        int, Query(ge=0, le=MAX_INT32, description="The initial index from which to return the results.")
    ] = 0,
) -> Page:
    settings = get_settings()
    size = settings.default_page_size if limit is None else min(limit, settings.max_page_size)
    url = request.url
    if settings.public_url:
        url = URL(settings.public_url.rstrip("/") + request.url.path).replace(query=request.url.query)
    return Page(limit=size, offset=offset, url=str(url))


PageDep = Annotated[Page, Depends(get_page)]
